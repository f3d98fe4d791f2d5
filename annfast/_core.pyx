"""The only bridge between Python and the C kernels of csrc/.

Checks shapes and lengths once per call (the invariants memory safety depends on), then runs whole
epochs and predictions in chunks of rows with the GIL released; between chunks it takes the GIL back to
let Ctrl-C raise KeyboardInterrupt and to report progress. Every buffer is a NumPy array owned by the
caller; C borrows it for the call. Private: the public API is in annfast.network.
"""
from cpython.buffer cimport PyBUF_RECORDS_RO, PyBuffer_IsContiguous, PyBuffer_Release, PyObject_GetBuffer
from cpython.exc cimport PyErr_CheckSignals
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.list cimport PyList_CheckExact
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.tuple cimport PyTuple_CheckExact
from libc.float cimport DBL_EPSILON, FLT_EPSILON
from libc.math cimport fabs
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset


cdef extern from "af_fpenv.h" nogil:
    # the floating-point control state that every C entry point saves and restores (test hooks only)
    uint64_t af_fp_control_get()
    void af_fp_control_set(uint64_t control)
    unsigned int AF_FP_FLUSH
    unsigned int AF_FP_ROUND_TOWARD_ZERO
    unsigned int AF_FP_ROUND_MASK

cdef extern from "af_internal.h" nogil:
    # the workspace layout (test hook: tests/test_layout.py checks it for many shapes)
    ctypedef struct af_ws_seg:
        int64_t off
        int64_t len
    ctypedef struct af_ws_layout:
        af_ws_seg act[AF_MAX_LAYERS]
        af_ws_seg zout, delta0, delta1
        int64_t row_len, stride
        af_ws_seg pend_u, pend_zb, pend_zbv, pend_uw, pend_uv, wt, wt0
        int64_t row_ws_len
        af_ws_seg block, vt, vt0
        int64_t len
        af_ws_seg split_row, split_z, split_dh, split_d, split_u, split_zb
        int64_t split_len
    void af_ws_layout_init(const af_net *net, af_ws_layout *ws)
    int64_t AF_WS_ALIGN

import numpy as np

cimport numpy as cnp

cnp.import_array()

ctypedef fused real:
    float
    double

# Multiply-adds of work between two returns to Python (about 1 to 3 ms on one core).
cdef int64_t CHUNK_MACS = 8_000_000
# Workspaces up to this many doubles live on the C stack (no allocation for small networks).
cdef enum:
    STACK_WORK = 8192
# Buffers the kernels stream over start on a cache line: 64-byte vectors then never straddle two lines
# (a misaligned parameter vector made AVX-512 loads and stores up to twice as slow).
cdef enum:
    ALIGN = 64
    STACK_WORK_ALLOC = STACK_WORK + 8   # doubles: ALIGN bytes of room to align the stack workspace
cdef int64_t STACK_BYTES = STACK_WORK * 8   # what a workspace on the stack may take


def aligned_empty(Py_ssize_t n, dtype):
    """An uninitialized 1-D array of n items of dtype whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + ALIGN, dtype=np.uint8)
    off = (-raw.ctypes.data) % ALIGN
    return raw[off:off + n * dtype.itemsize].view(dtype)


def aligned_zeros(Py_ssize_t n, dtype):
    """Zeros of shape (n,) and dtype whose data starts on a 64-byte boundary."""
    out = aligned_empty(n, dtype)
    out[...] = 0
    return out


# Below this many multiply-adds a single-row call keeps the GIL: releasing and taking it back costs more
# (about 0.1 us) than such a network's whole forward pass.
cdef int64_t NOGIL_MACS = 4096


cdef inline object new_out(int nd, cnp.npy_intp *dims, bint f32):
    """An uninitialized output array through NumPy's C API (np.empty and a typed memoryview of its result
    cost about 0.45 us, more than half of a single-row predict on a small network)."""
    return cnp.PyArray_EMPTY(nd, dims, cnp.NPY_FLOAT32 if f32 else cnp.NPY_FLOAT64, 0)


cdef inline object new_rows_out(int ndim, Py_ssize_t rows, Py_ssize_t n_outputs, bint f32):
    """new_out for predict's result: (n_outputs,) for ndim 1 (one row), (rows, n_outputs) for ndim 2."""
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[ndim - 1] = n_outputs
    return new_out(ndim, dims, f32)


cdef inline void predict_into(bint f32, const af_net *net, const void *params, void *work, const void *X,
                              int64_t rows, void *out) noexcept nogil:
    """af_predict_rows of the dtype, rows 0 .. rows-1 of X."""
    if f32:
        af_predict_rows_f32(net, <const float *>params, <float *>work, <const float *>X, 0, rows, <float *>out)
    else:
        af_predict_rows_f64(net, <const double *>params, <double *>work, <const double *>X, 0, rows,
                            <double *>out)


cdef af_status train_row(bint f32, const af_net *net, const af_sgd *sgd, int64_t n, void *params, void *backup,
                         void *velocity, void *vbackup, void *work, const void *x, const void *y,
                         const void *weight, af_report *rep) noexcept nogil:
    """One SGD step from row x, target y; on a non-finite loss or weights, the parameters and the velocity
    (when there is one: vbackup then receives it first) are restored from the backups taken first. weight: NULL
    or the row's sample weight (a float or double as the network's)."""
    cdef int64_t order0 = 0
    cdef af_status st
    cdef size_t size = n * (sizeof(float) if f32 else sizeof(double))
    memcpy(backup, params, size)
    if velocity != NULL:
        memcpy(vbackup, velocity, size)
    if f32:
        st = af_train_rows_f32(net, sgd, <float *>params, <float *>velocity, NULL, <float *>work, <const float *>x,
                               <const float *>y, <const float *>weight, &order0, 0, 1, rep)
        if st == AF_OK and not af_all_finite_f32(<float *>params, n):
            st = AF_ERR_NONFINITE
    else:
        st = af_train_rows_f64(net, sgd, <double *>params, <double *>velocity, NULL, <double *>work,
                               <const double *>x, <const double *>y, <const double *>weight, &order0, 0, 1, rep)
        if st == AF_OK and not af_all_finite_f64(<double *>params, n):
            st = AF_ERR_NONFINITE
    if st == AF_ERR_NONFINITE:
        memcpy(params, backup, size)
        if velocity != NULL:
            memcpy(velocity, vbackup, size)
    return st


cdef inline void *align_up(void *p) noexcept nogil:
    """p rounded up to the next 64-byte boundary (the stack workspaces keep ALIGN bytes spare for it)."""
    return <void *>(<char *>p + ((-<size_t>p) & (ALIGN - 1)))


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or non-finite weights (learning rate too high?)."""


#: what became of the weights after a divergence, in the words of every DivergenceError
DIVERGENCE_STATES = {
    "before_row": "the weights are those from before that row",
    "restored_call": "the weights were restored to their values at the start of the call",
    "restored_epoch": "the weights were restored to their values at the start of the epoch",
    "mid_epoch": "the weights are finite but mid-epoch",
}


def divergence_message(str state, row=None, int64_t epoch=-1, int64_t position=-1):
    """The one wording of a training divergence (serial kernels here, the threaded runners in ``_parallel``).

    ``row``: the row of X whose loss was non-finite (None: the weights became non-finite after the updates);
    ``epoch`` and ``position`` (in the epoch's order) when known (>= 0); ``state``: a key of
    ``DIVERGENCE_STATES``. "non-finite loss at row R of X in epoch E (position P of the order); <state>.
    Training diverged: lower the learning rate or scale the inputs and targets."
    """
    what = "the weights became non-finite" if row is None else f"non-finite loss at row {row} of X"
    if epoch >= 0:
        what += f" in epoch {epoch}"
    if position >= 0:
        what += f" (position {position} of the order)"
    return (f"{what}; {DIVERGENCE_STATES[state]}. Training diverged: lower the learning rate or scale the inputs "
            "and targets.")


cdef class Spec:
    """Descriptor of a network for the C kernels: sizes, activation codes, loss and kernel variant.

    Parameters
    ----------
    n_inputs : int
        Width of the input.
    layers : sequence of (n_out, activation_code, alpha)
        One entry per dense layer, first to last.
    loss : int
        An ``af_loss`` code.
    isa : int
        An ``af_isa`` code; must be supported by this CPU.
    disable : int, default=0
        ``af_strategy`` bits: the speed strategies the kernels must not use (network.py reads them from the
        environment variable ANNFAST_DISABLE).
    """
    cdef af_net net
    cdef readonly int64_t n_params
    cdef readonly int64_t workspace_len
    cdef readonly int64_t row_workspace_len
    cdef readonly int64_t n_inputs
    cdef readonly int64_t n_outputs
    cdef readonly int64_t n_layers
    cdef readonly int64_t chunk_rows

    def __init__(self, int64_t n_inputs, layers, int loss, int isa, int disable=0):
        cdef int64_t k, n_in = n_inputs
        layers = list(layers)
        if not 1 <= len(layers) <= AF_MAX_LAYERS:
            raise ValueError(f"a network has 1 to {AF_MAX_LAYERS} layers, got {len(layers)}")
        memset(&self.net, 0, sizeof(af_net))
        self.net.n_layers = len(layers)
        self.net.loss = loss
        self.net.isa = isa
        self.net.disable = disable
        for k, (n_out, act, alpha) in enumerate(layers):
            self.net.layers[k].n_in = n_in
            self.net.layers[k].n_out = n_out
            self.net.layers[k].activation = act
            self.net.layers[k].alpha = alpha
            n_in = n_out
        if af_net_check(&self.net) != AF_OK:
            raise ValueError("inconsistent network description (sizes, activations, loss or kernel)")
        self.n_params = af_n_params(&self.net)
        self.workspace_len = af_workspace_len(&self.net)
        self.row_workspace_len = af_row_workspace_len(&self.net)
        self.n_inputs = n_inputs
        self.n_outputs = n_in
        self.n_layers = self.net.n_layers
        # multiply-adds per row: forward plus the fused backward sweep (two per weight)
        self.chunk_rows = max(1, CHUNK_MACS // (3 * self.n_params + 64))

    @property
    def isa(self):
        return self.net.isa

    @property
    def disable(self):
        """The ``af_strategy`` bits switched off."""
        return self.net.disable

    @property
    def first_width(self):
        """Units of the first layer."""
        return self.net.layers[0].n_out

    @property
    def loss(self):
        return self.net.loss

    def offsets(self):
        """List of (weight_offset, bias_offset) per layer, in reals from the start of the buffer."""
        return [(af_weight_offset(&self.net, k), af_bias_offset(&self.net, k))
                for k in range(self.net.n_layers)]


def isa_best():
    """The best kernel variant (an ``af_isa`` code) this CPU supports."""
    return af_isa_best()


def isa_supported(int isa):
    """Whether this CPU can run the kernel variant ``isa``."""
    return bool(af_isa_supported(isa))


def status_name(int status):
    """English name of an ``af_status`` code."""
    return af_status_name(status).decode()


# ---- checks (memory safety never relies on the Python layer) -------------------------------------

cdef int check_len(Py_ssize_t got, int64_t want, str name) except -1:
    if got != want:
        raise ValueError(f"{name} has {got} values but the network needs {want}")
    return 0


cdef int check_rows(Spec spec, Py_ssize_t x_rows, Py_ssize_t x_cols, Py_ssize_t y_rows,
                    Py_ssize_t y_cols) except -1:
    if x_cols != spec.n_inputs:
        raise ValueError(f"X has {x_cols} columns but the network has {spec.n_inputs} inputs")
    if y_rows >= 0:
        if y_cols != spec.n_outputs:
            raise ValueError(f"y has {y_cols} columns but the network has {spec.n_outputs} outputs")
        if y_rows != x_rows:
            raise ValueError(f"X has {x_rows} rows but y has {y_rows}")
    return 0


cdef int check_order(const int64_t[::1] order, Py_ssize_t n_rows) except -1:
    cdef Py_ssize_t i, bad = -1
    with nogil:
        for i in range(order.shape[0]):
            if order[i] < 0 or order[i] >= n_rows:
                bad = i
                break
    if bad >= 0:
        raise IndexError(f"order[{bad}] = {order[bad]} is outside the {n_rows} rows of X")
    return 0


cdef const real *row_weights(const real[::1] weights, Py_ssize_t n_rows) except? NULL:
    """The sample weights' data (one per row of X, checked by the caller: finite, >= 0), or NULL for None."""
    if weights is None:
        return NULL
    if weights.shape[0] != n_rows:
        raise ValueError(f"weights has {weights.shape[0]} values for {n_rows} rows")
    if n_rows == 0:
        return NULL
    return &weights[0]


cdef int all_finite_(const real *x, int64_t n) noexcept nogil:
    if real is float:
        return af_all_finite_f32(x, n)
    else:
        return af_all_finite_f64(x, n)


cdef str secure_weights(real[::1] params, real[::1] backup, object vstate):
    """After a failure: keep finite weights, else restore the copy taken at the start of the call.

    vstate is None (no momentum) or (velocity, its copy from the start of the call): the velocity goes back
    with the weights, to the same point. Kept weights are those from before a row (the kernels check a row
    before its update), and so is the velocity then; a velocity that is not finite anyway is set to zero.
    Returns what became of the weights, as a ``divergence_message`` state.
    """
    cdef str state = "before_row"
    if not all_finite_(&params[0], params.shape[0]):
        memcpy(&params[0], &backup[0], params.shape[0] * sizeof(real))
        state = "restored_call"
        if vstate is not None:
            vstate[0][...] = vstate[1]
    if vstate is not None and not all_finite(vstate[0]):
        vstate[0][...] = 0
    return state


cdef int between_chunks(real[::1] params, real[::1] backup, object vstate, object progress,
                        int64_t done) except -1:
    """Ctrl-C and progress reports between chunks; weights are whole and kept finite on the way out."""
    try:
        PyErr_CheckSignals()
        if progress is not None:
            progress(done)
    except BaseException:
        secure_weights(params, backup, vstate)
        raise
    return 0


cdef int raise_nonfinite(real[::1] params, real[::1] backup, object vstate, int64_t row, int64_t position,
                         int64_t epoch) except -1:
    raise DivergenceError(divergence_message(secure_weights(params, backup, vstate), row, epoch, position))


# ---- training ---------------------------------------------------------------------------------

cdef af_sgd sgd_settings(Spec spec, real[::1] velocity, real[::1] grad, double learning_rate, double momentum,
                         double weight_decay, bint nesterov, int64_t batch_size, real **vel, real **g) except *:
    """Check the SGD settings and the buffers they need (velocity if momentum > 0, grad if batch_size > 1);
    return them as an af_sgd and point vel and g at those buffers (else NULL)."""
    cdef af_sgd sgd
    if not (learning_rate > 0) or not (0 <= momentum < 1) or not (weight_decay >= 0) or batch_size < 1:
        raise ValueError("learning_rate > 0, 0 <= momentum < 1, weight_decay >= 0 and batch_size >= 1 "
                         "are required")
    vel[0] = NULL
    g[0] = NULL
    if momentum > 0:
        check_len(velocity.shape[0], spec.n_params, "velocity")
        vel[0] = &velocity[0]
    if batch_size > 1:
        check_len(grad.shape[0], spec.n_params, "grad")
        g[0] = &grad[0]
    sgd.learning_rate = learning_rate
    sgd.momentum = momentum
    sgd.weight_decay = weight_decay
    sgd.nesterov = nesterov
    sgd.batch_size = batch_size
    return sgd


# long: the chunk loop and the batch-over-chunks loop share the buffers, report and backups that a helper would
# take as a dozen arguments, and each C call is written twice (float, double) inside its nogil block
def train_rows(Spec spec, real[::1] params, real[::1] velocity, real[::1] grad, real[::1] backup,
               const real[:, ::1] X, const real[:, ::1] Y, const int64_t[::1] order,
               double learning_rate, double momentum=0.0, double weight_decay=0.0,
               bint nesterov=False, int64_t batch_size=1, int64_t epoch=-1, object progress=None,
               const real[::1] weights=None):
    """Train on the rows ``X[order[0]], X[order[1]], ...`` in batches of ``batch_size``.

    params, velocity, grad, backup : real[n_params]
        Modified in place. velocity is used when momentum > 0, grad when batch_size > 1, backup
        always (it receives the weights at the start of the call).
    X : real[n_rows, n_inputs], Y : real[n_rows, n_outputs]
    order : int64[n_order]
        Row indices, each in [0, n_rows).
    weights : real[n_rows] or None
        Sample weights, indexed by row (see csrc/annfast.h), checked by the caller.
    progress : callable(done) or None
        Called with the number of rows done between chunks (GIL held).

    Returns (summed loss of the rows, each taken before its own update; number of rows classified
    right, see af_report). Raises
    DivergenceError on a non-finite loss or non-finite weights; the weights are then those before
    the bad row if they are finite, else those at the start of the call, and the velocity (momentum > 0)
    is put back to the same point (a copy of it is taken at the start of the call).
    """
    cdef int64_t n_params = spec.n_params, n = order.shape[0], pos = 0, end, sub, sub_end
    cdef int64_t chunk, bs = batch_size
    cdef af_report rep
    memset(&rep, 0, sizeof(af_report))
    cdef af_status st = AF_OK
    cdef af_sgd sgd
    cdef real *vel = NULL
    cdef real *g = NULL
    check_len(params.shape[0], n_params, "params")
    check_len(backup.shape[0], n_params, "backup")
    check_rows(spec, X.shape[0], X.shape[1], Y.shape[0], Y.shape[1])
    check_order(order, X.shape[0])
    cdef const real *wp = row_weights(weights, X.shape[0])
    sgd = sgd_settings(spec, velocity, grad, learning_rate, momentum, weight_decay, nesterov, bs, &vel, &g)
    if n == 0:
        return 0.0, 0
    work_arr = aligned_empty(spec.workspace_len, np.float32 if real is float else np.float64)
    cdef real[::1] work = work_arr
    memcpy(&backup[0], &params[0], n_params * sizeof(real))
    vel_arr = np.asarray(velocity) if vel != NULL else None
    vstate = (vel_arr, vel_arr.copy()) if vel != NULL else None
    if bs > 1:
        memset(g, 0, n_params * sizeof(real))   # af_train_rows wants it zeroed and leaves it so
    chunk = spec.chunk_rows
    if bs <= 4 * chunk:
        # whole batches per chunk (chunks end on batch boundaries), at most about four chunks' work
        chunk = max(chunk - chunk % bs, bs)
    else:
        chunk = max(AF_BLOCK_ROWS, chunk - chunk % AF_BLOCK_ROWS)   # whole blocks of rows per chunk
    while pos < n:
        if bs <= chunk:
            end = min(pos + chunk, n)
            with nogil:
                if real is float:
                    st = af_train_rows_f32(&spec.net, &sgd, &params[0], vel, g, &work[0], &X[0, 0],
                                           &Y[0, 0], wp, &order[0], pos, end, &rep)
                else:
                    st = af_train_rows_f64(&spec.net, &sgd, &params[0], vel, g, &work[0], &X[0, 0],
                                           &Y[0, 0], wp, &order[0], pos, end, &rep)
            if st == AF_ERR_NONFINITE:
                raise_nonfinite(params, backup, vstate, order[rep.bad_row], rep.bad_row, epoch)
            elif st != AF_OK:
                raise RuntimeError(f"annfast kernel failed: {status_name(st)}")
            between_chunks(params, backup, vstate, progress, end)
        else:
            # a batch larger than a chunk: sum its gradient in chunks, then update once
            end = min(pos + bs, n)
            memset(g, 0, n_params * sizeof(real))
            sub = pos
            while sub < end:
                sub_end = min(sub + chunk, end)
                with nogil:
                    if real is float:
                        st = af_gradient_rows_f32(&spec.net, &params[0], g, &work[0], &X[0, 0], &Y[0, 0],
                                                  wp, &order[0], sub, sub_end, &rep)
                    else:
                        st = af_gradient_rows_f64(&spec.net, &params[0], g, &work[0], &X[0, 0], &Y[0, 0],
                                                  wp, &order[0], sub, sub_end, &rep)
                if st == AF_ERR_NONFINITE:
                    raise_nonfinite(params, backup, vstate, order[rep.bad_row], rep.bad_row, epoch)
                between_chunks(params, backup, vstate, progress, sub_end)
                sub = sub_end
            with nogil:
                if real is float:
                    st = af_apply_gradient_f32(&sgd, n_params, &params[0], vel, g, end - pos)
                else:
                    st = af_apply_gradient_f64(&sgd, n_params, &params[0], vel, g, end - pos)
            memset(g, 0, n_params * sizeof(real))
        pos = end
    if not all_finite_(&params[0], n_params):
        raise DivergenceError(divergence_message(secure_weights(params, backup, vstate), epoch=epoch))
    return rep.loss_sum, rep.n_correct


# ---- shared-buffer training from several threads (Hogwild!) ---------------------------------------

# long: checks, block loop and merge under the lock share the thread's buffers, report and position; each C call
# is written twice (float, double) inside its nogil block
def train_thread(Spec spec, real[::1] params, real[::1] velocity, real[::1] grad, const real[:, ::1] X,
                 const real[:, ::1] Y, const int64_t[::1] order, int64_t block, double learning_rate,
                 double momentum=0.0, double weight_decay=0.0, bint nesterov=False, int64_t batch_size=1,
                 object stop=None, real[::1] shared=None, real[::1] start=None, object lock=None,
                 int64_t[::1] next_pos=None, const real[::1] weights=None):
    """One thread's part of a multi-threaded epoch: SGD over ``X[order[i]]`` (per sample, or in mini-batches
    of ``batch_size`` with the thread's own ``grad``), ``block`` rows (rounded up to whole batches) between
    returns to Python.

    Without ``shared``, ``params`` is the buffer all threads update without locks (Hogwild!). With
    ``shared``, ``params`` is this thread's private copy and ``start`` its starting point (both equal to
    ``shared`` on entry): after each block, under ``lock`` (which serializes the threads' merges), the
    change ``params - start`` is added to ``shared`` and both restart from it. Every update lands, a thread
    sees the others' updates at most a block late, and no thread waits for another except to merge.

    With ``next_pos`` (merging only: a one-element counter shared by the threads), ``order`` is the whole
    epoch's and the threads take its blocks in turn: each claims the next block, under ``lock``, when it
    starts and at each merge, so a thread on a slower core simply takes fewer blocks (no thread idles at
    the end of the epoch waiting for a fixed shard of another). Without it, ``order`` is this thread's.

    Returns early between blocks if ``stop.is_set()``. Backs up and restores nothing, and raises nothing
    on a non-finite loss: it sets ``stop`` and reports (that block is not merged); the caller restores.

    Returns (summed loss, rows classified right, rows done, position in ``order`` of a row with a
    non-finite loss or -1).
    """
    cdef int64_t n_params = spec.n_params, n = order.shape[0], pos = 0, end, step, done = 0
    cdef bint claiming = next_pos is not None
    cdef af_report rep
    cdef af_status st = AF_OK
    cdef af_sgd sgd
    cdef real *vel = NULL
    cdef real *g = NULL
    cdef bint merging = shared is not None
    memset(&rep, 0, sizeof(af_report))
    check_len(params.shape[0], n_params, "params")
    if merging:
        check_len(shared.shape[0], n_params, "shared")
        check_len(start.shape[0], n_params, "start")
    check_rows(spec, X.shape[0], X.shape[1], Y.shape[0], Y.shape[1])
    check_order(order, X.shape[0])
    if claiming and (not merging or lock is None or next_pos.shape[0] != 1):
        raise ValueError("next_pos needs shared, start and lock, and holds one position")
    if block < 1:
        raise ValueError("block >= 1 is required")
    cdef const real *wp = row_weights(weights, X.shape[0])
    sgd = sgd_settings(spec, velocity, grad, learning_rate, momentum, weight_decay, nesterov, batch_size, &vel, &g)
    if n == 0:
        return 0.0, 0, 0, -1
    step = (block + batch_size - 1) // batch_size * batch_size
    # 64 bytes of padding on both sides: no cache line shared with another thread's workspace
    work_arr = aligned_empty(spec.workspace_len + 32, np.float32 if real is float else np.float64)
    cdef real[::1] work = work_arr[16:]
    if claiming:
        with lock:
            pos = next_pos[0]
            next_pos[0] = min(pos + step, n)
    while pos < n:
        end = min(pos + step, n)
        with nogil:
            if real is float:
                st = af_train_rows_f32(&spec.net, &sgd, &params[0], vel, g, &work[0], &X[0, 0], &Y[0, 0],
                                       wp, &order[0], pos, end, &rep)
            else:
                st = af_train_rows_f64(&spec.net, &sgd, &params[0], vel, g, &work[0], &X[0, 0], &Y[0, 0],
                                       wp, &order[0], pos, end, &rep)
        if st == AF_ERR_NONFINITE:
            if stop is not None:
                stop.set()
            return rep.loss_sum, rep.n_correct, rep.bad_row, rep.bad_row
        elif st != AF_OK:
            raise RuntimeError(f"annfast kernel failed: {status_name(st)}")
        done += end - pos
        pos = end
        if merging:
            if lock is not None:
                lock.acquire()
            try:
                with nogil:
                    if real is float:
                        af_merge_delta_f32(n_params, &shared[0], &params[0], &start[0])
                    else:
                        af_merge_delta_f64(n_params, &shared[0], &params[0], &start[0])
                if claiming:
                    pos = next_pos[0]
                    next_pos[0] = min(pos + step, n)
            finally:
                if lock is not None:
                    lock.release()
        if stop is not None and stop.is_set():
            break
    return rep.loss_sum, rep.n_correct, done, -1


# ---- one row at a time on several threads: the split kernel (csrc/af_split.inc) ------------------------


def split_ctl_len(int64_t n_threads):
    """int64 values of the split kernel's control block for ``n_threads`` threads (csrc/annfast.h)."""
    return AF_SPLIT_CTL_LEN(n_threads)


def split_ticks(const int64_t[::1] ctl, int64_t n_threads):
    """The split kernel's own accounting of its last call, from its control block: an (n_threads, 3) array of
    each thread's ticks of the whole call, of waiting at the barriers and of the layers past the first."""
    out = np.empty((n_threads, 3), dtype=np.int64)
    check_len(ctl.shape[0], AF_SPLIT_CTL_LEN(n_threads), "ctl")
    for t in range(n_threads):
        for j in range(3):
            out[t, j] = ctl[AF_SPLIT_CTL_LINE(t) + AF_SPLIT_CTL_TICKS + j]
    return out


#: the most layers of a network (csrc/annfast.h): _io and the checks read it from here, never copy it
MAX_LAYERS = AF_MAX_LAYERS
SPLIT_CTL_STOP = AF_SPLIT_CTL_STOP
SPLIT_CTL_ABORT = AF_SPLIT_CTL_ABORT
SPLIT_CTL_SPIN = AF_SPLIT_CTL_SPIN


def split_hbuf_len(Spec spec):
    """Reals of the shared buffer of the first hidden layer's outputs (two rows' worth, by parity)."""
    return af_split_hbuf_len(&spec.net)


def split_workspace_len(Spec spec):
    """Reals of scratch one thread of the split kernel needs."""
    return af_split_workspace_len(&spec.net)


def workspace_layout(Spec spec):
    """The C workspace layout (af_ws_layout) of a network, for tests: a dict of part name -> (length, {segment
    name: (offset, length)}), in reals, for the parts "row" (one row's), "per_sample" (af_row_workspace_len),
    "several_rows" (af_workspace_len) and "split" (af_split_workspace_len); plus "align" (AF_WS_ALIGN)."""
    cdef af_ws_layout ws
    af_ws_layout_init(&spec.net, &ws)
    seg = lambda s: (s["off"], s["len"])   # a struct reaches Python as a dict
    row = {f"act{k}": seg(ws.act[k]) for k in range(spec.net.n_layers)}
    row.update(zout=seg(ws.zout), delta0=seg(ws.delta0), delta1=seg(ws.delta1))
    per_sample = {"row0": (0, ws.row_len), "pend_u": seg(ws.pend_u), "pend_zb": seg(ws.pend_zb),
                  "pend_zbv": seg(ws.pend_zbv), "pend_uw": seg(ws.pend_uw), "pend_uv": seg(ws.pend_uv),
                  "wt": seg(ws.wt), "wt0": seg(ws.wt0)}
    several = {"block": seg(ws.block), "per_sample": (0, ws.row_ws_len), "vt": seg(ws.vt), "vt0": seg(ws.vt0)}
    split = {"split_row": seg(ws.split_row), "split_z": seg(ws.split_z), "split_dh": seg(ws.split_dh),
             "split_d": seg(ws.split_d), "split_u": seg(ws.split_u), "split_zb": seg(ws.split_zb)}
    return {"row": (ws.row_len, row), "per_sample": (ws.row_ws_len, per_sample), "several_rows": (ws.len, several),
            "split": (ws.split_len, split), "align": AF_WS_ALIGN, "stride": ws.stride}


def split_thread(Spec spec, real[::1] params, real[::1] velocity, real[::1] replica, real[::1] vreplica,
                 real[::1] work, real[::1] hbuf, int64_t[::1] ctl, const real[:, ::1] X, const real[:, ::1] Y,
                 const int64_t[::1] order, int64_t thread, int64_t n_threads, double learning_rate,
                 double momentum=0.0, double weight_decay=0.0, bint nesterov=False,
                 const real[::1] weights=None):
    """Thread ``thread`` of ``n_threads`` in per-sample SGD over ``X[order[i]]`` shared by the threads.

    Every thread of the epoch calls this with the same arguments but ``thread``, ``replica`` and ``vreplica``
    (this thread's (n_params,) copies of the layers past the first; ignored for thread 0) and ``work``
    (``split_workspace_len(spec)`` reals). ``ctl`` (int64[split_ctl_len(n_threads)], zeros but the spin count on
    entry) synchronises them; setting ``ctl[SPLIT_CTL_STOP] = 1`` from another thread asks them all to stop after
    the row in progress.
    ``hbuf``: ``split_hbuf_len(spec)`` reals. The whole call runs without the GIL. Backs up and restores
    nothing and raises nothing on a non-finite loss.

    The threads wait for each other: a thread that raises here before it starts would leave the others
    waiting, so the caller sets ``ctl[SPLIT_CTL_ABORT] = 1`` when any thread fails (they then raise
    RuntimeError with the weights possibly mid-row: restore them).

    Returns (summed loss, rows classified right, rows done, position in ``order`` of a row with a non-finite
    loss or -1). Every thread returns the same values.
    """
    cdef int64_t n = order.shape[0]
    cdef af_report rep
    cdef af_status st = AF_OK
    cdef af_sgd sgd
    cdef real *vel = NULL
    cdef real *g = NULL
    cdef real *rep_p = NULL
    cdef real *rep_v = NULL
    memset(&rep, 0, sizeof(af_report))
    check_len(params.shape[0], spec.n_params, "params")
    check_rows(spec, X.shape[0], X.shape[1], Y.shape[0], Y.shape[1])
    check_order(order, X.shape[0])
    if spec.n_layers < 2 or not 1 <= n_threads <= spec.net.layers[0].n_out or not 0 <= thread < n_threads:
        raise ValueError("the split kernel needs a hidden layer and 1 <= n_threads <= its width")
    check_len(hbuf.shape[0], split_hbuf_len(spec), "hbuf")
    if ctl.shape[0] != split_ctl_len(n_threads):
        raise ValueError(f"ctl holds {split_ctl_len(n_threads)} values for {n_threads} threads")
    sgd = sgd_settings(spec, velocity, velocity, learning_rate, momentum, weight_decay, nesterov, 1, &vel, &g)
    cdef const real *wp = row_weights(weights, X.shape[0])
    if thread > 0:
        check_len(replica.shape[0], spec.n_params, "replica")
        rep_p = &replica[0]
        if momentum > 0:
            check_len(vreplica.shape[0], spec.n_params, "vreplica")
            rep_v = &vreplica[0]
    if work.shape[0] < af_split_workspace_len(&spec.net):
        raise ValueError(f"work has {work.shape[0]} values but the split kernel needs "
                         f"{af_split_workspace_len(&spec.net)}")
    if n == 0:
        return 0.0, 0, 0, -1
    with nogil:
        if real is float:
            st = af_split_rows_f32(&spec.net, &sgd, thread, n_threads, &ctl[0], &params[0], vel, rep_p, rep_v,
                                   &hbuf[0], &work[0], &X[0, 0], &Y[0, 0], wp, &order[0], 0, n, &rep)
        else:
            st = af_split_rows_f64(&spec.net, &sgd, thread, n_threads, &ctl[0], &params[0], vel, rep_p, rep_v,
                                   &hbuf[0], &work[0], &X[0, 0], &Y[0, 0], wp, &order[0], 0, n, &rep)
    if st == AF_ERR_NONFINITE:
        return rep.loss_sum, rep.n_correct, rep.bad_row, rep.bad_row
    if st == AF_STOPPED:
        return rep.loss_sum, rep.n_correct, rep.bad_row, -1
    if st != AF_OK:
        raise RuntimeError(f"annfast kernel failed: {status_name(st)}")
    return rep.loss_sum, rep.n_correct, n, -1


def gradient_shard(Spec spec, const real[::1] params, const real[:, ::1] X, const real[:, ::1] Y,
                   const int64_t[::1] order, int64_t begin, int64_t end, real[::1] grad, object stop=None,
                   const real[::1] weights=None):
    """Add the gradient of the summed loss of rows ``X[order[begin:end]]`` to grad (n_params).

    For one thread's slice of a mini-batch: params are read only. Runs in chunks without the GIL and
    returns early if ``stop.is_set()``. Returns (summed loss, rows classified right, position of a row
    with a non-finite loss or -1).
    """
    cdef int64_t pos = begin, stop_at
    cdef int64_t chunk = max(AF_BLOCK_ROWS, spec.chunk_rows - spec.chunk_rows % AF_BLOCK_ROWS)
    cdef af_report rep
    cdef af_status st = AF_OK
    memset(&rep, 0, sizeof(af_report))
    check_len(params.shape[0], spec.n_params, "params")
    check_len(grad.shape[0], spec.n_params, "grad")
    check_rows(spec, X.shape[0], X.shape[1], Y.shape[0], Y.shape[1])
    if not 0 <= begin <= end <= order.shape[0]:
        raise IndexError(f"rows {begin}:{end} are outside the {order.shape[0]} positions of order")
    check_order(order[begin:end], X.shape[0])
    cdef const real *wp = row_weights(weights, X.shape[0])
    if begin == end:
        return 0.0, 0, -1
    work_arr = aligned_empty(spec.workspace_len, np.float32 if real is float else np.float64)
    cdef real[::1] work = work_arr
    while pos < end:
        stop_at = min(pos + chunk, end)
        with nogil:
            if real is float:
                st = af_gradient_rows_f32(&spec.net, &params[0], &grad[0], &work[0], &X[0, 0], &Y[0, 0], wp,
                                          &order[0], pos, stop_at, &rep)
            else:
                st = af_gradient_rows_f64(&spec.net, &params[0], &grad[0], &work[0], &X[0, 0], &Y[0, 0], wp,
                                          &order[0], pos, stop_at, &rep)
        if st == AF_ERR_NONFINITE:
            if stop is not None:
                stop.set()
            return rep.loss_sum, rep.n_correct, rep.bad_row
        pos = stop_at
        if stop is not None and stop.is_set():
            break
    return rep.loss_sum, rep.n_correct, -1


def apply_gradient(real[::1] params, real[::1] velocity, const real[::1] grad, int64_t count,
                   double learning_rate, double momentum=0.0, double weight_decay=0.0, bint nesterov=False):
    """One SGD update of params (and velocity, if momentum > 0) from a gradient summed over count rows."""
    cdef af_sgd sgd
    cdef int64_t n = params.shape[0]
    cdef real *vel = NULL
    check_len(grad.shape[0], n, "grad")
    if count < 1 or not (learning_rate > 0) or not (0 <= momentum < 1) or not (weight_decay >= 0):
        raise ValueError("count >= 1, learning_rate > 0, 0 <= momentum < 1 and weight_decay >= 0 are required")
    if momentum > 0:
        check_len(velocity.shape[0], n, "velocity")
        vel = &velocity[0]
    sgd.learning_rate = learning_rate
    sgd.momentum = momentum
    sgd.weight_decay = weight_decay
    sgd.nesterov = nesterov
    sgd.batch_size = count
    with nogil:
        if real is float:
            af_apply_gradient_f32(&sgd, n, &params[0], vel, &grad[0], count)
        else:
            af_apply_gradient_f64(&sgd, n, &params[0], vel, &grad[0], count)


# ---- one network's buffers and its single-row calls ------------------------------------------------

cdef object ndarray = np.ndarray


cdef Py_ssize_t acquire_rows(object x, Py_buffer *buf, bint f32, Py_ssize_t width, int ndim) except -2:
    """The number of rows if x is a C-contiguous ndarray of finite values of the engine's dtype, 1-D
    (ndim 1: one row of ``width`` values) or 2-D (ndim 2: rows of ``width`` values); buf is then
    acquired (release it). -1 otherwise: the caller converts x and tries again, or reports what is
    wrong."""
    if type(x) is not ndarray:
        return -1
    if cnp.PyArray_TYPE(<cnp.ndarray>x) != (cnp.NPY_FLOAT32 if f32 else cnp.NPY_FLOAT64):
        return -1   # before asking for a buffer: some dtypes (datetime64) export none; the caller converts
    PyObject_GetBuffer(x, buf, PyBUF_RECORDS_RO)
    cdef char want = b'd'
    if f32:
        want = b'f'
    cdef Py_ssize_t rows = buf.shape[0] if ndim == 2 and buf.ndim == 2 else 1
    if (buf.ndim != ndim or buf.shape[ndim - 1] != width or buf.format[0] != want or buf.format[1] != 0
            or rows < 1 or not PyBuffer_IsContiguous(buf, b'C')):
        PyBuffer_Release(buf)
        return -1
    if not (af_all_finite_f32(<float *>buf.buf, rows * width) if f32
            else af_all_finite_f64(<double *>buf.buf, rows * width)):
        PyBuffer_Release(buf)
        return -1
    return rows


# Most values (of x and y together) that a single-row call converts itself, on the C stack.
cdef enum:
    CONVERT_MAX = 2048
# Integers beyond this magnitude might round differently through a double: the general path takes them.
cdef double EXACT_INT = 9007199254740992.0   # 2**53
cdef object np_generic = np.generic
cdef object np_integer = np.integer


cdef inline bint put(void *dst, Py_ssize_t i, double value, bint f32) noexcept nogil:
    """dst[i] = value in the engine's dtype; False if the result is not finite (non-finite input, or too
    large for float32: the general path reports which)."""
    cdef float f
    if f32:
        f = <float>value
        (<float *>dst)[i] = f
        return f - f == 0
    (<double *>dst)[i] = value
    return value - value == 0


cdef bint put_number(void *dst, Py_ssize_t i, object v, bint f32) except -1:
    """A Python float or int into dst[i]; False if it needs the general path (another type, an integer
    beyond 2**53, a non-finite or too large value)."""
    cdef int overflow = 0
    cdef long long n
    if PyFloat_Check(v):
        return put(dst, i, PyFloat_AS_DOUBLE(v), f32)
    if PyLong_CheckExact(v):
        n = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow or not (-EXACT_INT <= <double>n <= EXACT_INT):
            return False
        return put(dst, i, <double>n, f32)
    return False


cdef bint put_buffer(void *dst, Py_buffer *b, Py_ssize_t rows, Py_ssize_t width, Py_ssize_t row_stride,
                     Py_ssize_t col_stride, bint f32) noexcept:
    """Values of a strided buffer of a real or boolean format (bool, ints of 1 to 8 bytes, float32, float64; native
    byte order, aligned or not) into dst, rows x width, row-major; False for any other format or a value the
    general path must take."""
    cdef const char *fmt = b.format
    cdef char kind
    cdef Py_ssize_t size = b.itemsize, r, c, k = 0
    cdef const char *p
    cdef double value
    if fmt[0] == b'=' or fmt[0] == b'@':   # native byte order spelled out (NumPy does so for unaligned arrays)
        fmt += 1
    kind = fmt[0]
    if kind == 0 or fmt[1] != 0:   # another byte order, or not a single value: the general path
        return False
    if kind == b'f' and size == 4 or kind == b'd' and size == 8:
        pass
    elif kind in b'bhilq' or kind in b'BHILQ' or kind == b'?':
        if size != 1 and size != 2 and size != 4 and size != 8:
            return False
    else:
        return False
    if kind == b'f' or kind == b'd':   # the reals: the same loop as the serving fast path's
        return load_rows(dst, <const char *>b.buf, rows, width, row_stride, col_stride, kind == b'f', f32)
    for r in range(rows):
        p = <const char *>b.buf + r * row_stride
        for c in range(width):
            if not read_int(p, kind, size, &value) or not put(dst, k, value, f32):
                return False
            k += 1
            p += col_stride
    return True


cdef inline bint read_int(const char *p, char kind, Py_ssize_t size, double *value) noexcept nogil:
    """The integer (or bool) of a buffer format kind and size at p, aligned or not, into *value; False if it is
    beyond 2**53 (not exact as a double: the general path decides)."""
    cdef uint64_t u
    cdef uint32_t u32
    cdef uint16_t u16
    cdef int64_t i
    cdef int32_t i32
    cdef int16_t i16
    # memcpy: the values need not be aligned
    if kind == b'?' or kind in b'BHILQ':
        if size == 1:
            u = (<const uint8_t *>p)[0]
        elif size == 2:
            memcpy(&u16, p, 2)
            u = u16
        elif size == 4:
            memcpy(&u32, p, 4)
            u = u32
        else:
            memcpy(&u, p, 8)
        value[0] = <double>u
        return u <= <uint64_t>EXACT_INT
    if size == 1:
        i = (<const int8_t *>p)[0]
    elif size == 2:
        memcpy(&i16, p, 2)
        i = i16
    elif size == 4:
        memcpy(&i32, p, 4)
        i = i32
    else:
        memcpy(&i, p, 8)
    value[0] = <double>i
    return -EXACT_INT <= value[0] <= EXACT_INT


cdef inline Py_ssize_t real_rows(cnp.ndarray arr, int src_type, int ndim, Py_ssize_t width, Py_ssize_t *row_stride,
                                 Py_ssize_t *col_stride) noexcept:
    """The rows of a float32 or float64 ndarray in native byte order that predict_small's fast path takes (ndim 1:
    (width,) or (1, width); ndim 2: (n, width)), with their strides; 0 for anything else."""
    if not ((src_type == cnp.NPY_FLOAT32 or src_type == cnp.NPY_FLOAT64) and cnp.PyArray_ISNOTSWAPPED(arr)):
        return 0
    if ndim == 1 and cnp.PyArray_NDIM(arr) == 1 and cnp.PyArray_DIM(arr, 0) == width:
        col_stride[0] = cnp.PyArray_STRIDE(arr, 0)
        return 1
    if cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_DIM(arr, 1) == width and (ndim == 2 or cnp.PyArray_DIM(arr, 0) == 1):
        row_stride[0] = cnp.PyArray_STRIDE(arr, 0)
        col_stride[0] = cnp.PyArray_STRIDE(arr, 1)
        return cnp.PyArray_DIM(arr, 0)
    return 0


cdef Py_ssize_t convert_rows(object x, void *dst, Py_ssize_t cap, bint f32, Py_ssize_t width, int ndim) except -2:
    """Convert x into dst (cap reals at most) as the engine's dtype, without NumPy: ndim 1, one row
    (as annfast._validation.as_row takes it: (width,), (1, width), or a scalar when width is 1); ndim 2, a
    2-D block of rows. Takes ndarrays and NumPy scalars of a real or boolean dtype, any strides, Python
    floats and ints, and lists or tuples of them (of rows of them for ndim 2). Returns the number of rows,
    or -1 for anything else, including every value the general path rejects (non-finite, too large): the
    caller then converts x with annfast._validation, which raises the documented errors."""
    cdef Py_buffer b
    cdef Py_ssize_t rows, r, c
    if width > cap:
        return -1
    if type(x) is ndarray or isinstance(x, np_generic):
        try:
            PyObject_GetBuffer(x, &b, PyBUF_RECORDS_RO)
        except (BufferError, TypeError, ValueError):   # e.g. datetimes: not numbers, the general path says so
            return -1
        try:
            if ndim == 1 and b.ndim == 1 and b.shape[0] == width:
                return 1 if put_buffer(dst, &b, 1, width, 0, b.strides[0], f32) else -1
            if ndim == 1 and b.ndim == 0 and width == 1:
                return 1 if put_buffer(dst, &b, 1, 1, 0, 0, f32) else -1
            if b.ndim == 2 and b.shape[1] == width and (b.shape[0] == 1 or ndim == 2):
                rows = b.shape[0]
                if rows < 1 or rows * width > cap:
                    return -1
                return rows if put_buffer(dst, &b, rows, width, b.strides[0], b.strides[1], f32) else -1
            return -1
        finally:
            PyBuffer_Release(&b)
    if ndim == 1:
        if width == 1 and (PyFloat_Check(x) or PyLong_CheckExact(x)):
            return 1 if put_number(dst, 0, x, f32) else -1
        if (PyList_CheckExact(x) or PyTuple_CheckExact(x)) and len(x) == width and width <= cap:
            for c in range(width):
                if not put_number(dst, c, x[c], f32):
                    return -1
            return 1
        return -1
    if not (PyList_CheckExact(x) or PyTuple_CheckExact(x)):
        return -1
    rows = len(x)
    if rows < 1 or rows * width > cap:
        return -1
    for r in range(rows):
        row = x[r]
        if not (PyList_CheckExact(row) or PyTuple_CheckExact(row)) or len(row) != width:
            return -1
        for c in range(width):
            if not put_number(dst, r * width + c, row[c], f32):
                return -1
    return rows


cdef Py_ssize_t row_data(object x, Py_buffer *buf, bint *held, void *conv, Py_ssize_t cap, bint f32,
                         Py_ssize_t width, int ndim, const void **data) except -2:
    """The rows of x ready for C, as acquire_rows counts them: x's own buffer when it already is a finite
    C-contiguous array of the dtype (held is then set: release buf), else x converted into conv (cap reals,
    see convert_rows); -1 if neither."""
    cdef Py_ssize_t rows = acquire_rows(x, buf, f32, width, ndim)
    if rows >= 0:
        held[0] = True
        data[0] = buf.buf
        return rows
    held[0] = False
    data[0] = conv
    return convert_rows(x, conv, cap, f32, width, ndim)


cdef bint target_data(object y, Py_buffer *buf, bint *held, void *conv, Py_ssize_t cap, bint f32,
                      Py_ssize_t width, const void **data) except -1:
    """row_data for one target row, which for several outputs may also be an integer class label (one-hot
    encoded into conv, as Network._target_row does); False if y needs the general path."""
    cdef Py_ssize_t label
    if width > 1 and (PyLong_CheckExact(y) or isinstance(y, np_integer)):
        held[0] = False
        if width > cap or not 0 <= y < width:
            return False
        label = y
        memset(conv, 0, width * (sizeof(float) if f32 else sizeof(double)))
        put(conv, label, 1.0, f32)
        data[0] = conv
        return True
    return row_data(y, buf, held, conv, cap, f32, width, 1, data) >= 0


cdef bint load_rows(void *dst, const char *src, Py_ssize_t rows, Py_ssize_t width, Py_ssize_t row_stride,
                    Py_ssize_t col_stride, bint src_f32, bint f32) noexcept nogil:
    """Rows of float32 or float64 values, any strides (aligned or not, native byte order), into dst in the
    engine's dtype, row-major, value by value as put_buffer converts them (so the results are the same
    bits); False if a value is not finite there."""
    cdef Py_ssize_t r, c, k = 0
    cdef const char *q
    cdef double f64
    cdef float f32v
    for r in range(rows):
        q = src + r * row_stride
        if src_f32:
            for c in range(width):
                memcpy(&f32v, q, 4)
                if not put(dst, k, f32v, f32):
                    return False
                k += 1
                q += col_stride
        else:
            for c in range(width):
                memcpy(&f64, q, 8)
                if not put(dst, k, f64, f32):
                    return False
                k += 1
                q += col_stride
    return True


cdef bint serve_rows(bint f32, const af_net *net, const void *params, void *work, const char *src,
                     Py_ssize_t rows, Py_ssize_t width, Py_ssize_t row_stride, Py_ssize_t col_stride,
                     bint src_f32, bint direct, void *conv, void *out) noexcept nogil:
    """Engine.predict_small's fast path, all of it without the GIL: the finiteness check (``direct``: src
    already is C-contiguous aligned rows of the engine's dtype, used in place) or the conversion into conv,
    then the forward pass into out. False, out untouched, if a value is not finite (in the engine's dtype):
    the caller then takes the general path, which reports it."""
    cdef const void *x = src
    if direct:
        if not (af_all_finite_f32(<const float *>src, rows * width) if f32
                else af_all_finite_f64(<const double *>src, rows * width)):
            return False
    else:
        if not load_rows(conv, src, rows, width, row_stride, col_stride, src_f32, f32):
            return False
        x = conv
    predict_into(f32, net, params, work, x, rows, out)
    return True


cdef bint targets_fit_cross_entropy(const void *y, Py_ssize_t n, bint f32, bint softmax) noexcept:
    """Whether one row of targets (n values of the engine's dtype) fits the cross-entropy: each in [0, 1] and, after a
    softmax, summing to 1 within max(1e-4, 8 n eps) (the rule of _validation.check_targets_fit_loss)."""
    cdef double v, total = 0
    cdef Py_ssize_t j
    for j in range(n):
        v = (<const float *>y)[j] if f32 else (<const double *>y)[j]
        if not (0 <= v <= 1):   # NaN too
            return False
        total += v
    if softmax:
        return fabs(total - 1) <= max(1e-4, 8 * n * (FLT_EPSILON if f32 else DBL_EPSILON))
    return True


cdef class Engine:
    """The buffers of one network, and its calls on single rows without per-call allocation.

    Owns the flat parameter buffer, the momentum velocity (allocated on first use) and the backup that
    receives the weights at the start of every training call. The single-row calls take the fast path
    when their row is already a C-contiguous 1-D array of the engine's dtype, and return None otherwise
    so that the caller converts the row (with its own error messages) and calls again.

    Parameters
    ----------
    n_params : int
    f32 : bool
        float32 buffers if True, float64 otherwise.
    """
    cdef readonly object params
    cdef readonly object backup
    cdef readonly object velocity
    cdef readonly object vbackup
    cdef readonly bint f32
    cdef readonly int64_t n_params
    cdef float[::1] p32, b32, v32, vb32
    cdef double[::1] p64, b64, v64, vb64

    def __init__(self, int64_t n_params, bint f32):
        dtype = np.float32 if f32 else np.float64
        self.f32 = f32
        self.n_params = n_params
        self.params = aligned_zeros(n_params, dtype)
        self.backup = aligned_zeros(n_params, dtype)
        self.velocity = np.zeros(0, dtype=dtype)
        self.vbackup = self.velocity
        if f32:
            self.p32 = self.params
            self.b32 = self.backup
        else:
            self.p64 = self.params
            self.b64 = self.backup

    def ensure_velocity(self):
        """Allocate the (zero) momentum velocity if there is none; return it."""
        if self.velocity.shape[0] != self.n_params:
            self.velocity = aligned_zeros(self.n_params, self.params.dtype)
            self.vbackup = aligned_zeros(self.n_params, self.params.dtype)
            if self.f32:
                self.v32, self.vb32 = self.velocity, self.vbackup
            else:
                self.v64, self.vb64 = self.velocity, self.vbackup
        return self.velocity

    def reset_velocity(self):
        """Forget the momentum velocity."""
        self.velocity = np.zeros(0, dtype=self.params.dtype)
        self.vbackup = self.velocity
        self.v32 = self.vb32 = None
        self.v64 = self.vb64 = None

    cdef void *params_data(self, Spec spec, object params) except NULL:
        """The data of ``params`` (None: the engine's own weights), checked as a writable C-contiguous 1-D
        buffer of the engine's dtype with ``spec.n_params`` values. A plain aligned ndarray is checked through
        NumPy's C API (a typed memoryview costs about 0.3 us under the GIL); anything else through the
        memoryview, with its errors."""
        cdef float[::1] q32
        cdef double[::1] q64
        cdef cnp.ndarray a
        if params is None:
            return <void *>&self.p32[0] if self.f32 else <void *>&self.p64[0]
        if type(params) is ndarray:
            a = <cnp.ndarray>params
            if (cnp.PyArray_TYPE(a) == (cnp.NPY_FLOAT32 if self.f32 else cnp.NPY_FLOAT64) and cnp.PyArray_NDIM(a) == 1
                    and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISWRITEABLE(a)
                    and cnp.PyArray_ISNOTSWAPPED(a)):
                check_len(cnp.PyArray_DIM(a, 0), spec.n_params, "params")
                return cnp.PyArray_DATA(a)
        if self.f32:
            q32 = params
            check_len(q32.shape[0], spec.n_params, "params")
            return <void *>&q32[0]
        q64 = params
        check_len(q64.shape[0], spec.n_params, "params")
        return <void *>&q64[0]

    def predict_small(self, Spec spec, object X, int ndim, object params=None):
        """Outputs for one row X (ndim 1: shape (n_inputs,), giving (n_outputs,)) or a 2-D X of a few rows
        (ndim 2: one chunk, giving (n_rows, n_outputs)), on a workspace on the C stack. None if X needs
        converting first or is too large for that (then the caller uses predict_rows, in chunks). Rows of
        another dtype or layout, Python numbers and lists are converted here when that is simple (see
        convert_rows), else left to the caller. ``params``: the weights to use (a published copy, of
        ``n_params`` values of the engine's dtype), else the engine's own."""
        cdef Py_buffer xb
        cdef Py_ssize_t rows
        cdef bint held = False
        cdef const void *x = NULL
        cdef double conv[CONVERT_MAX]
        cdef double stack_work[STACK_WORK_ALLOC]
        cdef cnp.ndarray out
        cdef int64_t itemsize = 4 if self.f32 else 8
        cdef void *p
        cdef cnp.ndarray arr
        cdef int src_type
        cdef Py_ssize_t width = spec.n_inputs, row_stride = 0, col_stride = 0
        cdef bint src_f32, direct, ok = False
        cdef const char *src
        check_len(self.n_params, spec.n_params, "params")
        if spec.row_workspace_len * itemsize > STACK_BYTES:
            return None
        if type(X) is ndarray:
            # Fast path for the common case, a float32 or float64 ndarray of one row ((n_inputs,) or
            # (1, n_inputs) for ndim 1) or a few (ndim 2): no buffer export and no memoryview (their
            # bookkeeping cost more under the GIL than the rest of the call), and the finiteness check or the
            # conversion runs with the forward pass without the GIL. The same checks and the same bits as the
            # path below; anything else goes there.
            arr = <cnp.ndarray>X
            src_type = cnp.PyArray_TYPE(arr)
            rows = real_rows(arr, src_type, ndim, width, &row_stride, &col_stride)
            if rows >= 1:
                if rows > spec.chunk_rows or (rows >= AF_BLOCK_ROWS and spec.workspace_len * itemsize > STACK_BYTES):
                    return None
                src_f32 = src_type == cnp.NPY_FLOAT32
                direct = (src_f32 == self.f32 and cnp.PyArray_ISALIGNED(arr) and col_stride == itemsize
                          and (rows == 1 or row_stride == width * itemsize))
                if direct or rows * width <= CONVERT_MAX:
                    p = self.params_data(spec, params)
                    src = <const char *>cnp.PyArray_DATA(arr)
                    out = new_rows_out(ndim, rows, spec.n_outputs, self.f32)
                    if spec.n_params * rows >= NOGIL_MACS:
                        with nogil:
                            ok = serve_rows(self.f32, &spec.net, p, align_up(stack_work), src, rows, width,
                                            row_stride, col_stride, src_f32, direct, conv, cnp.PyArray_DATA(out))
                    else:
                        ok = serve_rows(self.f32, &spec.net, p, align_up(stack_work), src, rows, width, row_stride,
                                        col_stride, src_f32, direct, conv, cnp.PyArray_DATA(out))
                    return out if ok else None   # not finite: the caller's general path says which value
        rows = row_data(X, &xb, &held, conv, CONVERT_MAX, self.f32, spec.n_inputs, ndim, &x)
        if rows < 0:
            return None
        try:
            if rows > spec.chunk_rows or (rows >= AF_BLOCK_ROWS and
                                          spec.workspace_len * itemsize > STACK_BYTES):
                return None
            out = new_rows_out(ndim, rows, spec.n_outputs, self.f32)
            p = self.params_data(spec, params)
            if spec.n_params * rows >= NOGIL_MACS:
                with nogil:
                    predict_into(self.f32, &spec.net, p, align_up(stack_work), x, rows, cnp.PyArray_DATA(out))
            else:
                predict_into(self.f32, &spec.net, p, align_up(stack_work), x, rows, cnp.PyArray_DATA(out))
        finally:
            if held:
                PyBuffer_Release(&xb)
        return out

    # long: Cython declares the C locals (stack workspace, buffer views, borrowed buffers) at function level, and
    # the borrowed buffers of x and y must be released on every path: conversion, step and release stay together
    def train_one(self, Spec spec, object x, object y, double learning_rate, double momentum=0.0,
                  double weight_decay=0.0, bint nesterov=False, double weight=1.0, int cross_entropy=0):
        """One online SGD step from row x (n_inputs,) with target y (n_outputs,); returns its loss (times
        ``weight``, the row's sample weight, checked by the caller; its gradient is scaled by it too).

        x and y of another dtype or layout, Python numbers, lists and (for several outputs) integer class
        labels are converted here when that is simple (see convert_rows). Returns None (changing
        nothing) if x or y needs the general conversion first. Raises DivergenceError on a
        non-finite loss or weights, after restoring the weights and the velocity from before the step.

        ``cross_entropy``: 1 (sigmoid outputs) or 2 (softmax) if the loss is the cross-entropy, whose targets must
        be in [0, 1] (and sum to 1 after a softmax); a target that does not fit returns None too, and the caller's
        general path reports it (``_validation.check_targets_fit_loss``, the same rule).
        """
        cdef Py_buffer xb, yb
        cdef bint x_held = False, y_held = False
        cdef const void *xd = NULL
        cdef const void *yd = NULL
        cdef double conv[CONVERT_MAX]
        cdef Py_ssize_t y_at
        cdef bint ok
        cdef int64_t n = self.n_params
        cdef af_report rep
        cdef af_status st
        cdef af_sgd sgd
        cdef double stack_work[STACK_WORK_ALLOC]
        cdef void *w
        cdef void *p
        cdef void *b
        cdef void *v
        cdef void *vb
        cdef float[::1] heap32
        cdef double[::1] heap64
        cdef float w32 = <float>weight
        cdef double w64 = weight
        cdef const void *wp = NULL
        check_len(n, spec.n_params, "params")
        if not (learning_rate > 0) or not (0 <= momentum < 1) or not (weight_decay >= 0):
            raise ValueError("learning_rate > 0, 0 <= momentum < 1 and weight_decay >= 0 are required, got "
                             f"{learning_rate}, {momentum} and {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        if row_data(x, &xb, &x_held, conv, CONVERT_MAX, self.f32, spec.n_inputs, 1, &xd) < 0:
            return None
        y_at = 0 if x_held else (spec.n_inputs + 7) // 8 * 8   # a converted y goes after a converted x
        try:
            ok = y_at < CONVERT_MAX and target_data(y, &yb, &y_held, conv + y_at, CONVERT_MAX - y_at, self.f32,
                                                    spec.n_outputs, &yd)
        except BaseException:
            if x_held:
                PyBuffer_Release(&xb)
            raise
        if ok and cross_entropy and not targets_fit_cross_entropy(yd, spec.n_outputs, self.f32, cross_entropy == 2):
            if y_held:
                PyBuffer_Release(&yb)
            ok = False
        if not ok:
            if x_held:
                PyBuffer_Release(&xb)
            return None
        memset(&rep, 0, sizeof(af_report))
        try:
            if momentum > 0:
                self.ensure_velocity()
            sgd.learning_rate = learning_rate
            sgd.momentum = momentum
            sgd.weight_decay = weight_decay
            sgd.nesterov = nesterov
            sgd.batch_size = 1
            if spec.row_workspace_len * (4 if self.f32 else 8) <= STACK_BYTES:
                w = align_up(stack_work)
            elif self.f32:
                heap32 = aligned_empty(spec.row_workspace_len, np.float32)
                w = <void *>&heap32[0]
            else:
                heap64 = aligned_empty(spec.row_workspace_len, np.float64)
                w = <void *>&heap64[0]
            if self.f32:
                p, b = <void *>&self.p32[0], <void *>&self.b32[0]
                v = <void *>&self.v32[0] if momentum > 0 else NULL
                vb = <void *>&self.vb32[0] if momentum > 0 else NULL
            else:
                p, b = <void *>&self.p64[0], <void *>&self.b64[0]
                v = <void *>&self.v64[0] if momentum > 0 else NULL
                vb = <void *>&self.vb64[0] if momentum > 0 else NULL
            if weight != 1.0:
                wp = <const void *>&w32 if self.f32 else <const void *>&w64
            if n >= NOGIL_MACS:
                with nogil:
                    st = train_row(self.f32, &spec.net, &sgd, n, p, b, v, vb, w, xd, yd, wp, &rep)
            else:
                st = train_row(self.f32, &spec.net, &sgd, n, p, b, v, vb, w, xd, yd, wp, &rep)
        finally:
            if x_held:
                PyBuffer_Release(&xb)
            if y_held:
                PyBuffer_Release(&yb)
        if st == AF_ERR_NONFINITE:
            raise DivergenceError("non-finite loss or weights from this row; the weights and the velocity were "
                                  "restored to their values before it. Lower the learning rate or scale the "
                                  "inputs and targets.")
        elif st != AF_OK:
            raise RuntimeError(f"annfast kernel failed: {status_name(st)}")
        return rep.loss_sum


# ---- inference and evaluation -------------------------------------------------------------------

def predict_rows(Spec spec, const real[::1] params, const real[:, ::1] X, real[:, ::1] out, real[::1] work=None):
    """Network outputs of every row of X (n_rows, n_inputs) into out (n_rows, n_outputs).

    Read-only on params; runs in chunks without the GIL. ``work``: scratch of at least ``spec.workspace_len``
    reals (a reader's own, kept between calls), else one on the C stack or allocated for the call.
    """
    cdef int64_t n = X.shape[0], pos = 0, end
    # forward only: a third of a training row; whole blocks of rows (AF_BLOCK_ROWS, strategy blocked_rows), or a
    # large network's chunks of a few rows went through the kernel one row at a time
    cdef int64_t chunk = max(AF_BLOCK_ROWS, spec.chunk_rows * 3 - spec.chunk_rows * 3 % AF_BLOCK_ROWS)
    cdef double stack_work[STACK_WORK_ALLOC]
    cdef real *w
    cdef real[::1] heap_work
    check_len(params.shape[0], spec.n_params, "params")
    check_rows(spec, X.shape[0], X.shape[1], out.shape[0], out.shape[1])
    if n == 0:
        return
    if work is not None and work.shape[0] >= spec.workspace_len:
        w = &work[0]
    elif spec.workspace_len * <int64_t>sizeof(real) <= STACK_BYTES:
        w = <real *>align_up(stack_work)
    else:
        heap_work = aligned_empty(spec.workspace_len, np.float32 if real is float else np.float64)
        w = &heap_work[0]
    while pos < n:
        end = min(pos + chunk, n)
        with nogil:
            if real is float:
                af_predict_rows_f32(&spec.net, &params[0], w, &X[0, 0], pos, end, &out[0, 0])
            else:
                af_predict_rows_f64(&spec.net, &params[0], w, &X[0, 0], pos, end, &out[0, 0])
        pos = end
        if pos < n:
            PyErr_CheckSignals()


def loss_rows(Spec spec, const real[::1] params, const real[:, ::1] X, const real[:, ::1] Y, real[::1] work=None,
              const real[::1] weights=None):
    """(summed loss, rows classified right) of the rows of X against Y; DivergenceError if a loss is
    non-finite. ``work``: scratch of at least ``spec.workspace_len`` reals, else allocated for the call.
    ``weights``: sample weights (one per row), each row's loss is multiplied by its weight."""
    cdef int64_t n = X.shape[0], pos = 0, end
    cdef int64_t chunk = max(AF_BLOCK_ROWS, spec.chunk_rows * 3 - spec.chunk_rows * 3 % AF_BLOCK_ROWS)   # as predict
    cdef af_report rep
    memset(&rep, 0, sizeof(af_report))
    cdef af_status st = AF_OK
    check_len(params.shape[0], spec.n_params, "params")
    check_rows(spec, X.shape[0], X.shape[1], Y.shape[0], Y.shape[1])
    cdef const real *wp = row_weights(weights, X.shape[0])
    if n == 0:
        return 0.0, 0
    if work is None or work.shape[0] < spec.workspace_len:
        work = aligned_empty(spec.workspace_len, np.float32 if real is float else np.float64)
    while pos < n:
        end = min(pos + chunk, n)
        with nogil:
            if real is float:
                st = af_loss_rows_f32(&spec.net, &params[0], &work[0], &X[0, 0], &Y[0, 0], wp, pos,
                                      end, &rep)
            else:
                st = af_loss_rows_f64(&spec.net, &params[0], &work[0], &X[0, 0], &Y[0, 0], wp, pos,
                                      end, &rep)
        if st == AF_ERR_NONFINITE:
            raise DivergenceError(f"non-finite loss at row {rep.bad_row}: the weights or that row hold "
                                  "values too large for the network's precision")
        pos = end
        if pos < n:
            PyErr_CheckSignals()
    return rep.loss_sum, rep.n_correct


def gradient_rows(Spec spec, const real[::1] params, const real[:, ::1] X, const real[:, ::1] Y,
                  real[::1] grad, const real[::1] weights=None):
    """Add the gradient of the summed loss of all rows of X, Y to grad (n_params); return the loss.

    The parameters are not modified. For gradient checks and full-batch methods. Runs in chunks of whole
    blocks of rows without the GIL, with Ctrl-C checks between them (grad then holds a partial sum).
    """
    cdef int64_t n = X.shape[0], pos = 0, end
    cdef int64_t chunk = max(AF_BLOCK_ROWS, spec.chunk_rows - spec.chunk_rows % AF_BLOCK_ROWS)
    cdef af_status st = AF_OK
    cdef af_report rep
    memset(&rep, 0, sizeof(af_report))
    check_len(params.shape[0], spec.n_params, "params")
    check_len(grad.shape[0], spec.n_params, "grad")
    check_rows(spec, X.shape[0], X.shape[1], Y.shape[0], Y.shape[1])
    cdef const real *wp = row_weights(weights, X.shape[0])
    if n == 0:
        return 0.0
    work_arr = aligned_empty(spec.workspace_len, np.float32 if real is float else np.float64)
    cdef real[::1] work = work_arr
    while pos < n:
        end = min(pos + chunk, n)
        with nogil:
            if real is float:
                st = af_gradient_rows_f32(&spec.net, &params[0], &grad[0], &work[0], &X[0, 0], &Y[0, 0], wp,
                                          NULL, pos, end, &rep)
            else:
                st = af_gradient_rows_f64(&spec.net, &params[0], &grad[0], &work[0], &X[0, 0], &Y[0, 0], wp,
                                          NULL, pos, end, &rep)
        if st == AF_ERR_NONFINITE:
            raise DivergenceError(f"non-finite loss at row {rep.bad_row}: the weights or that row hold "
                                  "values too large for the network's precision")
        pos = end
        if pos < n:
            PyErr_CheckSignals()
    return rep.loss_sum


def all_finite(const real[::1] x):
    """True if every value of x is finite. Other threads run meanwhile when x is large (a fit's X, say)."""
    cdef int64_t n = x.shape[0]
    cdef int ok
    if n == 0:
        return True
    if n < 65536:
        return bool(all_finite_(&x[0], n))
    with nogil:
        ok = all_finite_(&x[0], n)
    return bool(ok)


# ---- test hooks: single kernels ------------------------------------------------------------------

def _activate(int activation, double alpha, const real[::1] z, real[::1] a):
    """a = f(z) elementwise (softmax: over the whole vector). Test hook."""
    check_len(a.shape[0], z.shape[0], "a")
    if activation < AF_ACT_LINEAR or activation > AF_ACT_SOFTMAX:
        raise ValueError(f"unknown activation code {activation}")
    if z.shape[0] == 0:
        return
    if real is float:
        af_activate_f32(activation, alpha, &z[0], &a[0], z.shape[0])
    else:
        af_activate_f64(activation, alpha, &z[0], &a[0], z.shape[0])


def _activation_deriv(int activation, double alpha, const real[::1] z, const real[::1] a,
                      real[::1] deriv):
    """f'(z) elementwise as backpropagation uses it, from z and a = f(z). Test hook."""
    check_len(a.shape[0], z.shape[0], "a")
    check_len(deriv.shape[0], z.shape[0], "deriv")
    if activation < AF_ACT_LINEAR or activation > AF_ACT_SOFTMAX:
        raise ValueError(f"unknown activation code {activation}")
    if z.shape[0] == 0:
        return
    if real is float:
        af_activation_deriv_f32(activation, alpha, &z[0], &a[0], &deriv[0], z.shape[0])
    else:
        af_activation_deriv_f64(activation, alpha, &z[0], &a[0], &deriv[0], z.shape[0])


# ---- test hooks: the floating-point control state ------------------------------------------------

#: bits of the control word (see _fp_control) that the C calls set for their duration (FTZ and DAZ on x86,
#: FZ on AArch64), that select rounding toward zero, and that hold the rounding mode; all 0 where
#: csrc/af_fpenv.h has no implementation for this platform (the calls then leave the state alone)
_FP_FLUSH = AF_FP_FLUSH
_FP_ROUND_TOWARD_ZERO = AF_FP_ROUND_TOWARD_ZERO
_FP_ROUND_MASK = AF_FP_ROUND_MASK


def _fp_control(control=None):
    """This thread's floating-point control word (x86: MXCSR without the exception flags; AArch64: FPCR;
    0 elsewhere). With ``control``, set it first (exception flags are kept). Test hook: every C entry point
    must leave it as it found it."""
    if control is not None:
        af_fp_control_set(<uint64_t>control)
    return af_fp_control_get()
