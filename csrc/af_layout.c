/*
 * af_layout.c -- precision-independent code: descriptor checks, parameter offsets, workspace length,
 * CPU feature detection and status names.
 */
#include <math.h>
#include "af_internal.h"

static int known_activation(int32_t a) { return a >= AF_ACT_LINEAR && a <= AF_ACT_SOFTMAX; }

af_status af_net_check(const af_net *net)
{
    if (net->n_layers < 1 || net->n_layers > AF_MAX_LAYERS) return AF_ERR_BAD_NET;
    if (net->loss != AF_LOSS_HALF_SQUARED && net->loss != AF_LOSS_CROSS_ENTROPY) return AF_ERR_BAD_NET;
    if (!af_isa_supported(net->isa)) return AF_ERR_BAD_NET;
    for (int64_t k = 0; k < net->n_layers; k++) {
        const af_layer *l = &net->layers[k];
        if (l->n_in < 1 || l->n_out < 1) return AF_ERR_BAD_NET;
        /* keep every offset and the workspace far below INT64_MAX */
        if (l->n_in > ((int64_t)1 << 31) || l->n_out > ((int64_t)1 << 31)) return AF_ERR_BAD_NET;
        if (l->n_in > ((int64_t)1 << 40) / l->n_out) return AF_ERR_BAD_NET;
        if (k > 0 && l->n_in != net->layers[k - 1].n_out) return AF_ERR_BAD_NET;
        if (!known_activation(l->activation)) return AF_ERR_BAD_NET;
        if (l->activation == AF_ACT_SOFTMAX && (k != net->n_layers - 1 || l->n_out < 2)) return AF_ERR_BAD_NET;
        if (!isfinite(l->alpha) || l->alpha < 0) return AF_ERR_BAD_NET;
    }
    if (net->loss == AF_LOSS_CROSS_ENTROPY) {
        int32_t out = net->layers[net->n_layers - 1].activation;
        if (out != AF_ACT_SOFTMAX && out != AF_ACT_SIGMOID) return AF_ERR_BAD_NET;
    }
    return AF_OK;
}

int64_t af_n_params(const af_net *net)
{
    int64_t n = 0;
    for (int64_t k = 0; k < net->n_layers; k++)
        n += (net->layers[k].n_in + 1) * net->layers[k].n_out;
    return n;
}

int64_t af_weight_offset(const af_net *net, int64_t k)
{
    int64_t off = 0;
    for (int64_t i = 0; i < k; i++)
        off += (net->layers[i].n_in + 1) * net->layers[i].n_out;
    return off;
}

int64_t af_bias_offset(const af_net *net, int64_t k)
{
    return af_weight_offset(net, k) + net->layers[k].n_in * net->layers[k].n_out;
}

int64_t af_workspace_len(const af_net *net)
{
    /* the larger of a block's rows and af_row_workspace_len, then the aligned copies of a block's inputs, or
     * for a small first layer kept transposed, its transposed velocity and that copy's start */
    const af_layer *l0 = &net->layers[0];
    const int64_t tail = af_aligned_inputs(net) ? AF_BLOCK_ROWS * af_round_up(l0->n_in)
                         : af_tfirst_fits(net) ? 2 * l0->n_in * af_round_up(l0->n_out) : 0;
    return af_inputs_offset(net) + tail;
}

int64_t af_row_workspace_len(const af_net *net) { return af_row_ws_len(net); }

int64_t af_split_workspace_len(const af_net *net) { return net->n_layers < 2 ? 0 : af_split_ws_len(net); }

int64_t af_split_hbuf_len(const af_net *net) { return 2 * af_round_up(net->layers[0].n_out); }

int32_t af_isa_supported(int32_t isa)
{
    if (isa == AF_ISA_BASE || isa == AF_ISA_REFERENCE) return 1;
#if AF_HAVE_X86_VARIANTS
    if (isa == AF_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == AF_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               af_isa_supported(AF_ISA_AVX2);
#endif
    return 0;
}

int32_t af_isa_best(void)
{
    /* never AF_ISA_REFERENCE: it is the slow statement of the algorithm, chosen only by name */
    if (af_isa_supported(AF_ISA_AVX512)) return AF_ISA_AVX512;
    if (af_isa_supported(AF_ISA_AVX2)) return AF_ISA_AVX2;
    return AF_ISA_BASE;
}

const char *af_status_name(int32_t status)
{
    switch (status) {
    case AF_OK: return "ok";
    case AF_ERR_NONFINITE: return "non-finite loss";
    case AF_ERR_BAD_NET: return "inconsistent network descriptor";
    case AF_ERR_BAD_ARG: return "argument out of range";
    case AF_STOPPED: return "stopped on request";
    case AF_ABORTED: return "abandoned: another thread of the call failed";
    default: return "unknown status";
    }
}
