/*
 * af_layout.c -- precision-independent code: descriptor checks, parameter offsets, workspace length,
 * CPU feature detection and status names.
 */
#include <math.h>
#include <stddef.h>
#include "af_internal.h"

static int known_activation(int32_t a) { return a >= AF_ACT_LINEAR && a <= AF_ACT_SOFTMAX; }

af_status af_net_check(const af_net *net)
{
    if (net->n_layers < 1 || net->n_layers > AF_MAX_LAYERS) return AF_ERR_BAD_NET;
    if (net->loss != AF_LOSS_HALF_SQUARED && net->loss != AF_LOSS_CROSS_ENTROPY) return AF_ERR_BAD_NET;
    if (!af_isa_supported(net->isa)) return AF_ERR_BAD_NET;
    if (net->disable & ~AF_STRATEGY_ALL) return AF_ERR_BAD_NET;
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

/* A segment of len reals at *off, which moves past it. */
static af_ws_seg take(int64_t *off, int64_t len)
{
    af_ws_seg s;
    s.off = *off;
    s.len = len;
    *off += len;
    return s;
}

/* One row's part for the layers k0 .. n_layers-1 (k0 = 1: the split kernel's upper network), from 0; act may be
 * NULL. Returns its length. */
static int64_t row_part(const af_net *net, int64_t k0, af_ws_seg *act, af_ws_seg *zout, af_ws_seg *d0,
                        af_ws_seg *d1)
{
    int64_t off = 0, w = net->layers[k0].n_in;   /* w: the widest layer, its input included */
    for (int64_t k = k0; k < net->n_layers; k++) {
        const af_ws_seg a = take(&off, af_round_up(net->layers[k].n_out));
        if (act) act[k - k0] = a;
        if (net->layers[k].n_out > w) w = net->layers[k].n_out;
    }
    *zout = take(&off, af_round_up(net->layers[net->n_layers - 1].n_out));
    *d0 = take(&off, af_round_up(w));
    *d1 = take(&off, af_round_up(w));
    return off;
}

void af_ws_layout_init(const af_net *net, af_ws_layout *ws)
{
    const af_layer *l0 = &net->layers[0];
    const int64_t st = af_round_up(l0->n_out), pend = AF_LOWRANK_ROWS * st;
    const int64_t tsize = af_tfirst_fits(net) ? l0->n_in * st : 0;   /* a transposed first layer */
    int64_t off = row_part(net, 0, ws->act, &ws->zout, &ws->delta0, &ws->delta1);
    ws->row_len = off;
    ws->stride = st;
    /* per-sample training, after row 0's part */
    ws->pend_u = take(&off, pend);
    ws->pend_zb = take(&off, pend);
    ws->pend_zbv = take(&off, pend);
    ws->pend_uw = take(&off, pend);
    ws->pend_uv = take(&off, pend);
    ws->wt = take(&off, tsize);
    ws->wt0 = take(&off, tsize);
    ws->row_ws_len = off;
    /* calls of several rows: past a block's rows and the per-sample part, the transposed first layer's velocity */
    off = 0;
    ws->block = take(&off, AF_BLOCK_ROWS * ws->row_len);
    off = off > ws->row_ws_len ? off : ws->row_ws_len;
    ws->vt = take(&off, tsize);
    ws->vt0 = take(&off, tsize);
    ws->len = off;
    /* the split kernel's workspace: the upper network's row part, then the slice's own segments */
    off = 0;
    if (net->n_layers >= 2) {
        af_ws_seg zout, d0, d1;
        ws->split_row = take(&off, row_part(net, 1, NULL, &zout, &d0, &d1));
    } else {
        ws->split_row = take(&off, 0);
    }
    ws->split_z = take(&off, net->n_layers >= 2 ? st : 0);
    ws->split_dh = take(&off, net->n_layers >= 2 ? st : 0);
    ws->split_d = take(&off, net->n_layers >= 2 ? st : 0);
    ws->split_u = take(&off, net->n_layers >= 2 ? pend : 0);
    ws->split_zb = take(&off, net->n_layers >= 2 ? pend : 0);
    ws->split_len = off;
}

int64_t af_workspace_len(const af_net *net)
{
    af_ws_layout ws;
    af_ws_layout_init(net, &ws);
    return ws.len;
}

int64_t af_row_workspace_len(const af_net *net)
{
    af_ws_layout ws;
    af_ws_layout_init(net, &ws);
    return ws.row_ws_len;
}

int64_t af_split_workspace_len(const af_net *net)
{
    af_ws_layout ws;
    af_ws_layout_init(net, &ws);
    return ws.split_len;
}

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
