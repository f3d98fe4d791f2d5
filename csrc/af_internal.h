/*
 * af_internal.h -- layout arithmetic shared by af_layout.c and the kernels (not part of the public API).
 *
 * The workspace holds AF_BLOCK_ROWS rows (mini-batches are computed that many rows at a time, so that
 * each weight is loaded once per block); each row's part is af_ws_offsets(...) reals long and laid
 * out, in reals, each segment starting at a multiple of AF_WS_ALIGN reals:
 *   act[k]  (n_out of layer k) for k = 0 .. n_layers-1: the activations a_k (hidden: f(z) in place)
 *   zout    (n_out of the last layer): the output layer's pre-activations, kept for the loss
 *   delta0, delta1 (the widest layer each): deltas, used in turn layer by layer
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

#define AF_WS_ALIGN 16

AF_STATIC_INLINE int64_t af_round_up(int64_t n) { return (n + AF_WS_ALIGN - 1) / AF_WS_ALIGN * AF_WS_ALIGN; }

/* Per-sample SGD (plain, with momentum, with weight decay) on a first layer of at least AF_LOWRANK_BYTES of
 * weights (more than an L1 cache), in the AVX2 and AVX-512 variants, keeps up to AF_LOWRANK_ROWS rows' updates
 * of that layer pending, as rank-one terms d x^T, and applies them in one sweep (see af_kernels.inc). Their
 * deltas, the group's products W x and V x (V: the velocity) and two scaled copies of the deltas live in the
 * workspace after the first row's part: 5 AF_LOWRANK_ROWS rows of af_round_up(n_out of the first layer)
 * reals. */
#define AF_LOWRANK_ROWS 8
#define AF_LOWRANK_BYTES 65536

/* Whether calls of more than one row work on copies of their inputs in rows of the workspace that start on a
 * 64-byte boundary (a multiple of AF_WS_ALIGN reals into a workspace that starts on one, as annfast's do):
 * the groups of the pending path (at most AF_LOWRANK_ROWS rows) and the blocks of mini-batch, predict and
 * loss calls (AF_BLOCK_ROWS). Rows of X start wherever the caller's array puts them, a vector load that
 * straddles two cache lines costs two, and every sweep over the first layer's rows loads the inputs again:
 * with X 16 or 32 bytes off the boundary, medium's per-sample float64 epoch was 25 % slower (float32 12 %),
 * its mini-batch epoch and predict 15-20 %. Only for a first layer that may take the pending path (float64's
 * 8 bytes per weight reach AF_LOWRANK_BYTES first); for smaller ones the copy would cost about what it saves. */
#if AF_LOWRANK_ROWS > AF_BLOCK_ROWS
#error "the aligned copies of the inputs hold AF_BLOCK_ROWS rows, a pending group's too"
#endif
AF_STATIC_INLINE int af_aligned_inputs(const af_net *net)
{
    return net->layers[0].n_in * net->layers[0].n_out * 8 >= AF_LOWRANK_BYTES;
}

/* Per-sample SGD on a first layer of at most AF_TFIRST_REALS reals (rows padded to af_round_up(n_out)) keeps
 * that layer transposed for calls of at least AF_TFIRST_MIN_ROWS rows: the transposed copy and the layer as it
 * was at the start of the call (to merge with concurrent writers, see transpose_out in af_kernels.inc) live in
 * the workspace after the pending part; with momentum, the same two of its velocity at af_inputs_offset. */
#define AF_TFIRST_REALS 2048
#define AF_TFIRST_MIN_ROWS 4

AF_STATIC_INLINE int af_tfirst_fits(const af_net *net)
{
    return net->layers[0].n_in * af_round_up(net->layers[0].n_out) <= AF_TFIRST_REALS;
}

AF_STATIC_INLINE int64_t af_max_width(const af_net *net)
{
    int64_t w = net->layers[0].n_in;
    for (int64_t k = 0; k < net->n_layers; k++)
        if (net->layers[k].n_out > w) w = net->layers[k].n_out;
    return w;
}

/* Offsets of the workspace segments of one row, and (returned) the length of one row's part;
 * act_off must have room for n_layers entries. */
AF_STATIC_INLINE int64_t af_ws_offsets(const af_net *net, int64_t *act_off, int64_t *zout_off,
                                    int64_t *delta0_off, int64_t *delta1_off)
{
    int64_t off = 0;
    for (int64_t k = 0; k < net->n_layers; k++) {
        act_off[k] = off;
        off += af_round_up(net->layers[k].n_out);
    }
    *zout_off = off;
    off += af_round_up(net->layers[net->n_layers - 1].n_out);
    int64_t w = af_round_up(af_max_width(net));
    *delta0_off = off;
    *delta1_off = off + w;
    return off + 2 * w;
}

/* af_row_workspace_len: one row's part; per-sample training's pending first-layer part (AF_LOWRANK_ROWS);
 * for a small first layer, its transposed copy and that copy's start (AF_TFIRST_REALS). */
AF_STATIC_INLINE int64_t af_row_ws_len(const af_net *net)
{
    int64_t act_off[AF_MAX_LAYERS], zout, d0, d1;
    const int64_t st = af_round_up(net->layers[0].n_out);
    return af_ws_offsets(net, act_off, &zout, &d0, &d1) + 5 * AF_LOWRANK_ROWS * st +
           (af_tfirst_fits(net) ? 2 * net->layers[0].n_in * st : 0);
}

/* Where the aligned copies of the inputs start (af_aligned_inputs; AF_BLOCK_ROWS rows of af_round_up(n_in)
 * reals, enough for a pending group too), or for a small first layer kept transposed, its transposed velocity
 * and that copy's start: past both a block's rows and af_row_workspace_len, so only af_workspace_len has room
 * for them (calls of one row use X's rows as they are, and never transpose). */
AF_STATIC_INLINE int64_t af_inputs_offset(const af_net *net)
{
    int64_t act_off[AF_MAX_LAYERS], zout, d0, d1;
    const int64_t blocks = AF_BLOCK_ROWS * af_ws_offsets(net, act_off, &zout, &d0, &d1);
    const int64_t row = af_row_ws_len(net);
    return blocks > row ? blocks : row;
}


/* ---- the split kernel (af_split.inc) ----------------------------------------------------------------- */

/* The layers past the first, as a network of their own whose input is the first hidden layer. */
AF_STATIC_INLINE void af_split_upper(const af_net *net, af_net *up)
{
    *up = *net;
    up->n_layers = net->n_layers - 1;
    for (int64_t k = 0; k + 1 < net->n_layers; k++) up->layers[k] = net->layers[k + 1];
}

/* Where the split kernel's own segments start in its workspace, after the upper network's row part: the
 * first layer's pre-activations of the thread's slice (z), the gradient with respect to the hidden units (dh)
 * and the slice's pending delta (d), each af_round_up(n1) reals; then the pending rank-one updates (u) and
 * the group's products W x (zb), AF_LOWRANK_ROWS rows of af_round_up(n1) reals each. */
AF_STATIC_INLINE int64_t af_split_own_offset(const af_net *net)
{
    af_net up;
    int64_t act_off[AF_MAX_LAYERS], zout, d0, d1;
    af_split_upper(net, &up);
    return af_ws_offsets(&up, act_off, &zout, &d0, &d1);
}

AF_STATIC_INLINE int64_t af_split_ws_len(const af_net *net)
{
    return af_split_own_offset(net) + (3 + 2 * AF_LOWRANK_ROWS) * af_round_up(net->layers[0].n_out);
}

#endif /* AF_INTERNAL_H */
