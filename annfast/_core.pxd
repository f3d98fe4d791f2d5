# Mirrors csrc/annfast.h for Cython: every change there must touch this file too.
from libc.stdint cimport int32_t, int64_t

cdef extern from "annfast.h" nogil:
    enum: AF_MAX_LAYERS
    enum: AF_BLOCK_ROWS
    enum: AF_SPLIT_CTL_STOP
    enum: AF_SPLIT_CTL_TICKS
    int64_t AF_SPLIT_CTL_LEN(int64_t n_threads)
    int64_t AF_SPLIT_CTL_LINE(int64_t t)
    enum: AF_SPLIT_CTL_ABORT
    enum: AF_SPLIT_CTL_SPIN

    cpdef enum af_activation:
        AF_ACT_LINEAR
        AF_ACT_STEP
        AF_ACT_SIGMOID
        AF_ACT_TANH
        AF_ACT_RELU
        AF_ACT_LEAKY_RELU
        AF_ACT_SOFTMAX

    cpdef enum af_loss:
        AF_LOSS_HALF_SQUARED
        AF_LOSS_CROSS_ENTROPY

    cpdef enum af_isa:
        AF_ISA_BASE
        AF_ISA_AVX2
        AF_ISA_AVX512
        AF_ISA_REFERENCE

    cpdef enum af_strategy:
        AF_STRATEGY_FUSED_UPDATE
        AF_STRATEGY_PENDING
        AF_STRATEGY_TRANSPOSED_FIRST
        AF_STRATEGY_BLOCKED_ROWS

    cpdef enum af_status:
        AF_OK
        AF_ERR_NONFINITE
        AF_ERR_BAD_NET
        AF_ERR_BAD_ARG
        AF_STOPPED
        AF_ABORTED

    ctypedef struct af_layer:
        int64_t n_in
        int64_t n_out
        int32_t activation
        double alpha

    ctypedef struct af_net:
        int64_t n_layers
        int32_t loss
        int32_t isa
        int32_t disable
        af_layer layers[AF_MAX_LAYERS]

    ctypedef struct af_report:
        double loss_sum
        int64_t n_correct
        int64_t bad_row

    ctypedef struct af_sgd:
        double learning_rate
        double momentum
        double weight_decay
        int32_t nesterov
        int64_t batch_size

    af_status af_net_check(const af_net *net)
    int64_t af_n_params(const af_net *net)
    int64_t af_weight_offset(const af_net *net, int64_t k)
    int64_t af_bias_offset(const af_net *net, int64_t k)
    int64_t af_workspace_len(const af_net *net)
    int64_t af_row_workspace_len(const af_net *net)
    int64_t af_split_workspace_len(const af_net *net)
    int64_t af_split_hbuf_len(const af_net *net)
    int32_t af_isa_best()
    int32_t af_isa_supported(int32_t isa)
    const char *af_status_name(int32_t status)

    af_status af_train_rows_f32(const af_net *net, const af_sgd *sgd, float *params, float *velocity,
                                float *grad, float *work, const float *X, const float *Y,
                                const float *weights, const int64_t *order, int64_t begin, int64_t end,
                                af_report *report)
    af_status af_gradient_rows_f32(const af_net *net, const float *params, float *grad, float *work,
                                   const float *X, const float *Y, const float *weights, const int64_t *order,
                                   int64_t begin, int64_t end, af_report *report)
    af_status af_apply_gradient_f32(const af_sgd *sgd, int64_t n_params, float *params, float *velocity,
                                    const float *grad, int64_t count)
    af_status af_predict_rows_f32(const af_net *net, const float *params, float *work,
                                  const float *X, int64_t begin, int64_t end, float *out)
    af_status af_loss_rows_f32(const af_net *net, const float *params, float *work,
                               const float *X, const float *Y, const float *weights, int64_t begin, int64_t end,
                               af_report *report)
    void af_activate_f32(int32_t activation, double alpha, const float *z, float *a, int64_t n)
    void af_activation_deriv_f32(int32_t activation, double alpha, const float *z, const float *a,
                                 float *deriv, int64_t n)
    int32_t af_all_finite_f32(const float *x, int64_t n)
    void af_merge_delta_f32(int64_t n, float *shared, float *copy, float *start)
    af_status af_split_rows_f32(const af_net *net, const af_sgd *sgd, int64_t t, int64_t T, int64_t *ctl,
                                float *params, float *velocity, float *replica, float *vreplica, float *hbuf,
                                float *work, const float *X, const float *Y, const float *weights, const int64_t *order,
                                int64_t begin, int64_t end, af_report *report)

    af_status af_train_rows_f64(const af_net *net, const af_sgd *sgd, double *params, double *velocity,
                                double *grad, double *work, const double *X, const double *Y,
                                const double *weights, const int64_t *order, int64_t begin, int64_t end,
                                af_report *report)
    af_status af_gradient_rows_f64(const af_net *net, const double *params, double *grad, double *work,
                                   const double *X, const double *Y, const double *weights, const int64_t *order,
                                   int64_t begin, int64_t end, af_report *report)
    af_status af_apply_gradient_f64(const af_sgd *sgd, int64_t n_params, double *params, double *velocity,
                                    const double *grad, int64_t count)
    af_status af_predict_rows_f64(const af_net *net, const double *params, double *work,
                                  const double *X, int64_t begin, int64_t end, double *out)
    af_status af_loss_rows_f64(const af_net *net, const double *params, double *work,
                               const double *X, const double *Y, const double *weights, int64_t begin, int64_t end,
                               af_report *report)
    void af_activate_f64(int32_t activation, double alpha, const double *z, double *a, int64_t n)
    void af_activation_deriv_f64(int32_t activation, double alpha, const double *z, const double *a,
                                 double *deriv, int64_t n)
    int32_t af_all_finite_f64(const double *x, int64_t n)
    void af_merge_delta_f64(int64_t n, double *shared, double *copy, double *start)
    af_status af_split_rows_f64(const af_net *net, const af_sgd *sgd, int64_t t, int64_t T, int64_t *ctl,
                                double *params, double *velocity, double *replica, double *vreplica,
                                double *hbuf, double *work, const double *X, const double *Y,
                                const double *weights, const int64_t *order, int64_t begin, int64_t end, af_report *report)
