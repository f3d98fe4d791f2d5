/*
 * annfast.h -- the public C API of annfast's per-sample SGD core.
 *
 * annfast/_core.pxd mirrors this header for Cython: every change here must touch that file too.
 *
 * Ownership: C never allocates and never frees. Every buffer is borrowed from the caller for the
 * duration of one call; no pointer is kept after the call returns. There is no global mutable state.
 *
 * The parameters of a network are ONE flat buffer. For layer k (0-based) it holds, at
 * af_weight_offset(net, k), the weight matrix W_k of shape (n_out, n_in) row-major, and right after it,
 * at af_bias_offset(net, k), the bias b_k of length n_out. Layers follow each other without gaps.
 *
 * Every kernel comes in two precisions, float (suffix _f32) and double (suffix _f64); within one call
 * every real buffer has that precision. Counts and indices are int64_t.
 */
#ifndef ANNFAST_H
#define ANNFAST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_MSC_VER)
#define AF_RESTRICT __restrict
#else
#define AF_RESTRICT restrict
#endif

/* Most layers a network may have (a descriptor holds them by value, without pointers). */
#define AF_MAX_LAYERS 32

/* Activation codes. The values reach saved files and Python: never renumber them. */
typedef enum af_activation {
    AF_ACT_LINEAR = 0,
    AF_ACT_STEP = 1,       /* 1 if z >= 0 else 0; derivative taken as 1 (straight-through) */
    AF_ACT_SIGMOID = 2,
    AF_ACT_TANH = 3,
    AF_ACT_RELU = 4,       /* derivative at exactly 0 is 0 */
    AF_ACT_LEAKY_RELU = 5, /* z if z > 0 else alpha * z; derivative alpha for z <= 0 */
    AF_ACT_SOFTMAX = 6     /* output layer only */
} af_activation;

/* Loss codes. Never renumber them. */
typedef enum af_loss {
    AF_LOSS_HALF_SQUARED = 0,  /* L = 1/2 sum_k (y_k - yhat_k)^2 */
    AF_LOSS_CROSS_ENTROPY = 1  /* softmax output: -sum_k y_k log p_k; sigmoid output: binary
                                  cross-entropy summed over the outputs */
} af_loss;

/* Kernel variants. AF_ISA_BASE and AF_ISA_REFERENCE run everywhere; the others are used only when
 * af_isa_supported() says so. */
typedef enum af_isa {
    AF_ISA_BASE = 0,
    AF_ISA_AVX2 = 1,       /* x86-64 with AVX2 and FMA */
    AF_ISA_AVX512 = 2,     /* x86-64 with AVX-512 F, DQ, BW and VL */
    AF_ISA_REFERENCE = 3   /* plain scalar C, one row at a time (af_reference.inc): the statement of the
                              algorithm that every other variant is tested against; slow. Never af_isa_best;
                              af_split_rows refuses it (AF_ERR_BAD_ARG) */
} af_isa;

/* Speed strategies (bits of af_net.disable; csrc/strategy_*.inc says what each buys and where it runs). A
 * strategy switched off falls back to the plain path, which computes the same (equal up to rounding): for
 * measuring what each one buys (bench/ablation.py) and for ruling one out when results look wrong. */
typedef enum af_strategy {
    AF_STRATEGY_FUSED_UPDATE = 1,      /* previous row's first-layer update fused into this row's product */
    AF_STRATEGY_PENDING = 2,           /* large first layer: updates kept as pending rank-one terms */
    AF_STRATEGY_TRANSPOSED_FIRST = 4,  /* small first layer kept transposed for the call */
    AF_STRATEGY_BLOCKED_ROWS = 8       /* mini-batch, predict, evaluate: 16 rows through each layer together */
} af_strategy;
#define AF_STRATEGY_ALL 15

/* Status codes. AF_OK is 0; never renumber them. */
typedef enum af_status {
    AF_OK = 0,
    AF_ERR_NONFINITE = 1,  /* a row gave a non-finite loss; that row changed nothing */
    AF_ERR_BAD_NET = 2,    /* the descriptor is inconsistent (see af_net_check) */
    AF_ERR_BAD_ARG = 3,    /* a scalar argument is out of range */
    AF_STOPPED = 4,        /* af_split_rows: the caller asked the threads to stop; rows before bad_row are whole */
    AF_ABORTED = 5         /* af_split_rows: the caller set ctl[AF_SPLIT_CTL_ABORT] because a thread of the call
                              failed to start; the weights may hold part of a row's updates */
} af_status;

/* One dense layer: z = W a + b, output f(z). */
typedef struct af_layer {
    int64_t n_in;
    int64_t n_out;
    int32_t activation;    /* af_activation */
    double alpha;          /* negative slope of AF_ACT_LEAKY_RELU, >= 0; ignored otherwise */
} af_layer;

/* A network descriptor: sizes and codes only, no pointers to data. */
typedef struct af_net {
    int64_t n_layers;      /* 1 .. AF_MAX_LAYERS */
    int32_t loss;          /* af_loss */
    int32_t isa;           /* af_isa: which kernel variant to run */
    int32_t disable;       /* af_strategy bits: speed strategies not to use (0: all where they apply) */
    af_layer layers[AF_MAX_LAYERS];
} af_net;

/* Settings of one SGD run. */
typedef struct af_sgd {
    double learning_rate; /* > 0 */
    double momentum;      /* mu in [0, 1): v = mu v + g; w -= lr v */
    double weight_decay;  /* lambda >= 0: g += lambda w (every parameter, biases included) */
    int32_t nesterov;     /* nonzero: w -= lr (g + mu v) */
    int64_t batch_size;   /* rows per update, >= 1; the last batch may be shorter */
} af_sgd;

/* What the training and evaluation calls report back. Kernels ADD to loss_sum and n_correct (the caller
 * zeroes them once, e.g. per epoch, and may pass the same report to several calls). */
typedef struct af_report {
    double loss_sum;       /* sum of the rows' losses, each taken before that row's own update */
    int64_t n_correct;     /* rows classified right: softmax outputs by argmax, sigmoid and step outputs
                              when every output is on the same side of 0.5 as its target; other outputs
                              count nothing */
    int64_t bad_row;       /* with AF_ERR_NONFINITE: the position (in order, or the row) that failed */
} af_report;

/* ---- layout (precision independent) ---------------------------------------------------------- */

/* AF_OK if the descriptor is consistent: 1 <= n_layers <= AF_MAX_LAYERS, every size >= 1,
 * layers[k].n_in == layers[k-1].n_out, known codes, softmax only in the last layer and with at least
 * two outputs, alpha finite and >= 0, cross-entropy only after a softmax or sigmoid output, isa known.
 * disable only AF_STRATEGY_* bits. AF_ERR_BAD_NET otherwise. Every other function assumes a descriptor that
 * passed this check. */
af_status af_net_check(const af_net *net);

/* Number of reals in the flat parameter buffer. */
int64_t af_n_params(const af_net *net);

/* Offsets (in reals) of W_k and b_k in the flat parameter buffer; 0 <= k < n_layers. */
int64_t af_weight_offset(const af_net *net, int64_t k);
int64_t af_bias_offset(const af_net *net, int64_t k);

/* Number of reals of scratch that one call needs (activations, pre-activations and deltas of a block
 * of rows). */
int64_t af_workspace_len(const af_net *net);

/* Rows that the mini-batch, predict and loss kernels compute at once (each weight loaded once for them). */
#define AF_BLOCK_ROWS 16

/* The smaller scratch that suffices for calls that work one row at a time: af_train_rows with
 * batch_size 1 on one row (end - begin == 1), and af_predict_rows / af_loss_rows on fewer than
 * AF_BLOCK_ROWS rows. */
int64_t af_row_workspace_len(const af_net *net);

/* The widest variant this CPU can run, and whether it can run a given one (1) or not (0). (Which one is
 * fastest depends on the network and the precision; the Python layer picks per network.) */
int32_t af_isa_best(void);
int32_t af_isa_supported(int32_t isa);

/* A short static English name for a status code ("ok", "non-finite loss", ...). */
const char *af_status_name(int32_t status);

/* ---- kernels, float: the same functions exist with suffix _f64 for double ------------------------
 *
 * Shapes: X (n_rows, n_in) and Y (n_rows, n_out) row-major, where n_in is the first layer's and n_out
 * the last layer's width; out (n_rows, n_out). weights (sample weights) is NULL (every row weighs 1) or has n_rows
 * reals, indexed by row like X and Y: a row's loss, as reported and as trained on, is its weight times its
 * loss, so its gradient, and its update, is scaled by the weight (a weight of 1 changes nothing, a weight of 0
 * leaves only weight decay and momentum acting on that row's step). Weights are the caller's to check (finite,
 * >= 0); a batch's update is still the mean over its rows, count rows, not the sum of their weights. params,
 * velocity and grad have af_n_params(net) reals; work has af_workspace_len(net) reals and may hold anything on
 * entry. Row indices are not checked: the caller guarantees 0 <= begin <= end and that every row index used is
 * < n_rows.
 */

/* Trains on the rows order[begin], ..., order[end-1] in that order, in batches of sgd->batch_size
 * counted from begin (the last batch may be shorter). batch_size == 1 runs the fused step: forward,
 * then one sweep per layer that propagates the delta with the old weights and updates W and b in
 * place; the first layer's weight updates may be deferred to a later row of the call (plain SGD), but
 * every one is applied before the call returns. (A first layer of at most 2048 weights, rows padded to 16,
 * in calls of 4 rows or more: that layer, and with momentum its velocity, is trained on a transposed copy in
 * the workspace and written back at the end of the call; a value that another thread changed meanwhile gets
 * that change plus this call's, so that lock-free training from several threads on the same params loses
 * no update.)
 * batch_size > 1 sums the per-row gradients at the current weights into grad, then updates with
 * their mean. velocity is read and written only if momentum > 0 (it may be NULL otherwise); grad is
 * used only if batch_size > 1 (it may be NULL otherwise), must be all zeros on entry and is all zeros
 * again on return.
 * Adds each row's loss (and whether it was classified right) to the report. On a non-finite loss it
 * stops before any update from that row (for batch_size > 1: before the update of that row's batch),
 * sets report->bad_row to its position in order, and returns AF_ERR_NONFINITE; all earlier updates are
 * whole. */
af_status af_train_rows_f32(const af_net *net, const af_sgd *sgd,
                            float *params, float *velocity, float *grad, float *work,
                            const float *X, const float *Y, const float *weights,
                            const int64_t *order,
                            int64_t begin, int64_t end,
                            af_report *report);

/* Adds the gradient of the summed loss of the rows order[begin], ..., order[end-1] (rows begin ..
 * end-1 if order is NULL), taken at the given parameters, to grad, and their losses to the report.
 * Parameters are not modified. Used for batches larger than one chunk (full-batch gradient descent)
 * and by gradient checks. On a non-finite loss returns AF_ERR_NONFINITE with report->bad_row set to
 * the position of the row; grad then holds a partial sum. */
af_status af_gradient_rows_f32(const af_net *net, const float *params, float *grad, float *work,
                               const float *X, const float *Y, const float *weights, const int64_t *order,
                               int64_t begin, int64_t end, af_report *report);

/* One SGD update from a summed gradient of count rows: g = grad / count + lambda w, momentum as in
 * af_sgd, w -= lr g (or the velocity). Modifies params and (if momentum > 0) velocity. */
af_status af_apply_gradient_f32(const af_sgd *sgd, int64_t n_params, float *params, float *velocity,
                                const float *grad, int64_t count);

/* Network outputs for rows begin .. end-1 of X, written to the same rows of out. */
af_status af_predict_rows_f32(const af_net *net, const float *params, float *work,
                              const float *X, int64_t begin, int64_t end, float *out);

/* Adds the losses of rows begin .. end-1 to the report (a row with a non-finite loss stops the call
 * with AF_ERR_NONFINITE and report->bad_row set). */
af_status af_loss_rows_f32(const af_net *net, const float *params, float *work,
                           const float *X, const float *Y, const float *weights, int64_t begin, int64_t end,
                           af_report *report);

/* Elementwise activation and its derivative (as used by backpropagation, from z and a = f(z)) of n
 * values; for softmax, f is the softmax of the whole vector and the derivative is not defined (zeros).
 * Test hooks; not used in the hot path. */
void af_activate_f32(int32_t activation, double alpha, const float *z, float *a, int64_t n);
void af_activation_deriv_f32(int32_t activation, double alpha, const float *z, const float *a,
                             float *deriv, int64_t n);

/* 1 if all n values are finite, 0 otherwise. */
int32_t af_all_finite_f32(const float *x, int64_t n);

/* ---- per-sample SGD on several threads: the split kernel (strategy "split", af_split.inc) -------------
 *
 * T threads train ONE network on the same rows, in the same order, as one thread would: thread t owns the
 * first layer's units t n1 / T .. (t + 1) n1 / T - 1 (rows of W_0 and b_0, and their velocity) and does all the
 * work on them; every thread computes the layers past the first itself, on its own replica of their
 * parameters (thread 0 on params). Per row the threads exchange the first hidden layer's outputs through
 * hbuf and meet once at a barrier in ctl. Needs n_layers >= 2, batch_size 1 and 1 <= T <= n1.
 *
 * Every thread calls af_split_rows with the same net, sgd, ctl, params, velocity, hbuf, X, Y, order, begin,
 * end and T, its own t, and its own work (af_split_workspace_len reals) and replica/vreplica (n_params
 * reals each, only the part past the first layer used; NULL for t = 0, vreplica NULL without momentum).
 * ctl: AF_SPLIT_CTL_LEN(T) int64_t, zeroed before the threads start but for ctl[AF_SPLIT_CTL_SPIN] (how many
 * times a waiting thread spins before it yields its CPU: a few thousand, or 0 with more threads than cores),
 * not touched by the caller during the call except to set ctl[AF_SPLIT_CTL_STOP] to 1 (from any thread) to
 * ask the threads to stop, or ctl[AF_SPLIT_CTL_ABORT] to 1 if a thread failed to start. hbuf: 2
 * af_round_up(n1) reals (n1 rounded up to a multiple of 16).
 * Each thread adds the rows' losses to its own report (all threads report the same). Returns
 * AF_ERR_NONFINITE as af_train_rows (every thread at the same row), AF_STOPPED with report->bad_row the
 * first row not trained, AF_ABORTED (see there), or AF_ERR_BAD_ARG. All threads return after the same rows, with
 * every update of every earlier row whole. */
#define AF_SPLIT_CTL_LINE(t) (32 + 8 * (t))   /* where thread t's cache line starts */
#define AF_SPLIT_CTL_LEN(T) AF_SPLIT_CTL_LINE(T)
#define AF_SPLIT_CTL_TICKS 3  /* in thread t's line, 3 values written at the end of its call: the time counter's
                                 ticks (cycles where there is one, else 0) of the whole call, of waiting at the
                                 barriers and of the layers past the first */
#define AF_SPLIT_CTL_STOP 16
#define AF_SPLIT_CTL_ABORT 17
#define AF_SPLIT_CTL_SPIN 18
int64_t af_split_workspace_len(const af_net *net);
int64_t af_split_hbuf_len(const af_net *net);  /* reals of hbuf: 2 af_round_up(n1) */
af_status af_split_rows_f32(const af_net *net, const af_sgd *sgd, int64_t t, int64_t T, int64_t *ctl,
                            float *params, float *velocity, float *replica, float *vreplica, float *hbuf,
                            float *work, const float *X, const float *Y, const float *weights,
                            const int64_t *order,
                            int64_t begin, int64_t end, af_report *report);
af_status af_split_rows_f64(const af_net *net, const af_sgd *sgd, int64_t t, int64_t T, int64_t *ctl,
                            double *params, double *velocity, double *replica, double *vreplica, double *hbuf,
                            double *work, const double *X, const double *Y, const double *weights,
                            const int64_t *order,
                            int64_t begin, int64_t end, af_report *report);

/* One thread's merge into shared parameters: shared += copy - start (the thread's change since it last
 * merged), then copy and start both restart from shared. Three buffers of n reals, no aliasing; the
 * caller serializes merges into the same shared buffer. */
void af_merge_delta_f32(int64_t n, float *shared, float *copy, float *start);

/* ---- the same in double ----------------------------------------------------------------------- */
af_status af_train_rows_f64(const af_net *net, const af_sgd *sgd,
                            double *params, double *velocity, double *grad, double *work,
                            const double *X, const double *Y, const double *weights,
                            const int64_t *order,
                            int64_t begin, int64_t end,
                            af_report *report);
af_status af_gradient_rows_f64(const af_net *net, const double *params, double *grad, double *work,
                               const double *X, const double *Y, const double *weights, const int64_t *order,
                               int64_t begin, int64_t end, af_report *report);
af_status af_apply_gradient_f64(const af_sgd *sgd, int64_t n_params, double *params, double *velocity,
                                const double *grad, int64_t count);
af_status af_predict_rows_f64(const af_net *net, const double *params, double *work,
                              const double *X, int64_t begin, int64_t end, double *out);
af_status af_loss_rows_f64(const af_net *net, const double *params, double *work,
                           const double *X, const double *Y, const double *weights, int64_t begin, int64_t end,
                           af_report *report);
void af_activate_f64(int32_t activation, double alpha, const double *z, double *a, int64_t n);
void af_activation_deriv_f64(int32_t activation, double alpha, const double *z, const double *a,
                             double *deriv, int64_t n);
int32_t af_all_finite_f64(const double *x, int64_t n);
void af_merge_delta_f64(int64_t n, double *shared, double *copy, double *start);

#ifdef __cplusplus
}
#endif

#endif /* ANNFAST_H */
