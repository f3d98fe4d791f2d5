/*
 * af_internal.h -- layout arithmetic shared by af_layout.c and the kernels (not part of the public API).
 *
 * The workspace holds AF_BLOCK_ROWS rows (mini-batches are computed that many rows at a time, so that
 * each weight is loaded once per block) and the scratch of the speed strategies; af_ws_layout (below) says
 * where each segment lives, and no other code computes an offset into it.
 */
#ifndef AF_INTERNAL_H
#define AF_INTERNAL_H

#include "annfast.h"

/* Whether the AVX2 variant of the kernels is compiled (GCC or Clang on x86-64); define
 * AF_NO_X86_VARIANTS to build the baseline only. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(AF_NO_X86_VARIANTS)
#define AF_HAVE_X86_VARIANTS 1
#else
#define AF_HAVE_X86_VARIANTS 0
#endif

/* "static inline" for every C compiler this builds with (MSVC's C mode spells it __inline). */
#if defined(_MSC_VER) && !defined(__clang__)
#define AF_STATIC_INLINE static __inline
#else
#define AF_STATIC_INLINE static inline
#endif

/* A hint that the cache line holding p will be read soon (no effect where the compiler has no such hint). */
#if defined(__GNUC__) || defined(__clang__)
#define AF_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define AF_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define AF_PREFETCH(p) ((void)(p))
#endif

/* Most bytes of a row that af_prefetch_row asks for: the start of a longer row is enough for the
 * hardware's own prefetcher to follow the rest, and more requests would only queue behind each other. */
#define AF_PREFETCH_BYTES 512

/* How many rows ahead the per-sample loop asks for its rows: one step of a small network takes about
 * as long as a miss to memory, so the row after next is asked for. */
#define AF_PREFETCH_AHEAD 2

/* Ask for the cache lines of a row of the data a later step reads (up to AF_PREFETCH_BYTES). Rows come
 * in the caller's order, shuffled every epoch by default, so without this each one costs a full miss to
 * L3 or memory in the middle of a sample's step. */
AF_STATIC_INLINE void af_prefetch_row(const void *row, int64_t bytes)
{
    const char *p = (const char *)row;
    const char *end = p + (bytes < AF_PREFETCH_BYTES ? bytes : AF_PREFETCH_BYTES);
    for (p = (const char *)((uintptr_t)p & ~(uintptr_t)63); p < end; p += 64) AF_PREFETCH(p);
}

/* Whether the network may use a speed strategy (an AF_STRATEGY_* bit that af_net.disable does not set). Every
 * place that chooses a strategy asks this; switched off, the plain path runs. */
AF_STATIC_INLINE int af_uses(const af_net *net, int32_t strategy) { return !(net->disable & strategy); }

#define AF_WS_ALIGN 16

AF_STATIC_INLINE int64_t af_round_up(int64_t n) { return (n + AF_WS_ALIGN - 1) / AF_WS_ALIGN * AF_WS_ALIGN; }

/* Per-sample SGD (plain, with momentum, with weight decay) on a first layer of at least AF_LOWRANK_BYTES of
 * weights (more than an L1 cache), in the AVX2 and AVX-512 variants, keeps up to AF_LOWRANK_ROWS rows' updates
 * of that layer pending, as rank-one terms d x^T, and applies them in one sweep (see af_kernels.inc). Their
 * deltas, the group's products W x and V x (V: the velocity) and two scaled copies of the deltas live in the
 * workspace after the first row's part (af_ws_layout's pend_* segments). */
#define AF_LOWRANK_ROWS 8
#define AF_LOWRANK_BYTES 65536

/* Per-sample SGD on a first layer of at most AF_TFIRST_REALS reals (rows padded to af_round_up(n_out)) keeps
 * that layer transposed for calls of at least AF_TFIRST_MIN_ROWS rows: the transposed copy and the layer as it
 * was at the start of the call (to merge with concurrent writers, see transpose_out in af_kernels.inc) live in
 * the workspace (af_ws_layout's wt, wt0; with momentum, the same two of its velocity: vt, vt0). */
#define AF_TFIRST_REALS 2048
#define AF_TFIRST_MIN_ROWS 4

AF_STATIC_INLINE int af_tfirst_fits(const af_net *net)
{
    return net->layers[0].n_in * af_round_up(net->layers[0].n_out) <= AF_TFIRST_REALS;
}

/* ---- the workspace layout: every offset into the scratch, computed by af_ws_layout_init alone ------------ */

/* One segment of the workspace: off reals from its start, len reals long (each off a multiple of AF_WS_ALIGN;
 * len 0: the network does not use the segment). */
typedef struct af_ws_seg {
    int64_t off, len;
} af_ws_seg;

/* Where everything lives in the scratch of one call (tests/test_layout.py checks, for many shapes, that the
 * segments of each part lie inside its length and do not overlap):
 *   block:    AF_BLOCK_ROWS rows' parts of row_len reals, row r's at r * row_len: act[k] (the activations a_k,
 *             hidden f(z) in place), zout (the output's pre-activations, for the loss), delta0 and delta1 (the
 *             widest layer each: deltas, used in turn layer by layer)
 *   per-sample training, after row 0's part, up to row_ws_len (= af_row_workspace_len):
 *             pend_u, pend_zb, pend_zbv, pend_uw, pend_uv: AF_LOWRANK_ROWS rows of stride reals each (strategy
 *             "pending": the rows' deltas, W x and V x of the group, the deltas scaled for W and for V; the
 *             transposed first layer uses pend_zb for lr d, pend_zbv for a last product nobody reads);
 *             wt, wt0: the transposed first layer and its start (strategy "transposed first", af_tfirst_fits)
 *   calls of several rows, past both block and row_ws_len, up to len (= af_workspace_len): vt, vt0, the
 *             transposed first layer's velocity and its start
 *   the split kernel's own workspace (n_layers >= 2; len split_len = af_split_workspace_len): the upper
 *             network's row part (split_row, laid out by af_ws_layout_init of that network), then split_z (the
 *             slice's pre-activations), split_dh (the gradient with respect to the hidden units), split_d (the
 *             slice's delta), stride reals each, and split_u, split_zb (AF_LOWRANK_ROWS rows of stride each). */
typedef struct af_ws_layout {
    af_ws_seg act[AF_MAX_LAYERS];   /* n_layers of them */
    af_ws_seg zout, delta0, delta1;
    int64_t row_len;
    int64_t stride;                 /* af_round_up(n_out of the first layer) */
    af_ws_seg pend_u, pend_zb, pend_zbv, pend_uw, pend_uv, wt, wt0;
    int64_t row_ws_len;
    af_ws_seg block, vt, vt0;
    int64_t len;
    af_ws_seg split_row, split_z, split_dh, split_d, split_u, split_zb;
    int64_t split_len;
} af_ws_layout;

/* Fills ws for a descriptor that passed af_net_check (af_layout.c). */
void af_ws_layout_init(const af_net *net, af_ws_layout *ws);

/* ---- the split kernel (af_split.inc) ----------------------------------------------------------------- */

/* The layers past the first, as a network of their own whose input is the first hidden layer. */
AF_STATIC_INLINE void af_split_upper(const af_net *net, af_net *up)
{
    *up = *net;
    up->n_layers = net->n_layers - 1;
    for (int64_t k = 0; k + 1 < net->n_layers; k++) up->layers[k] = net->layers[k + 1];
}

#endif /* AF_INTERNAL_H */
