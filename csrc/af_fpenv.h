/*
 * af_fpenv.h -- flush-to-zero for the duration of one public call, the caller's state restored after.
 *
 * Momentum and weight decay shrink velocities and unused weights geometrically, so they pass through
 * the subnormal range (below 1.2e-38 in float, 2.2e-308 in double), where x86 cores take a microcode
 * assist of about 100 cycles per operation: training thyroid 21-16-8-3 with momentum 0.9 ran 14x
 * slower per epoch after 60 epochs than without it. Every public training, gradient, prediction and
 * loss entry point (af_api.inc) therefore runs its kernel with subnormal results flushed to zero and
 * subnormal inputs read as zero, and then restores the caller's control state exactly (rounding mode,
 * exception masks, FTZ/DAZ as they were); exception flags raised during the call stay raised, as they
 * would without this. The state is per thread, so each thread of a parallel epoch sets its own.
 * During the call the kernels also round to nearest with every exception masked, whatever the caller
 * chose: results then do not depend on the caller's rounding mode, and an overflow still gives the inf
 * that the divergence checks look for (rounding toward zero would saturate at the largest finite
 * value instead; an unmasked overflow would trap).
 *
 *   x86-64 (and 32-bit x86 with SSE2): MXCSR bits FTZ (0x8000) and DAZ (0x0040).
 *   AArch64 with GCC or Clang: FPCR bit FZ (1 << 24), which flushes both inputs and results.
 *   Elsewhere (other architectures, MSVC on ARM64): a no-op; subnormals are then computed exactly and
 *   may be slow, results are otherwise the same.
 *
 * Numerically this only changes values below the smallest normal number into zeros; they are far below
 * anything a weight, activation or gradient can usefully hold, and the results stay within the
 * reference tolerances of tests/test_reference.py.
 *
 * Not part of the public API (annfast.h): the definitions are static inline, used by af_api.inc and by
 * _core.pyx's test hooks (af_fp_control_get / af_fp_control_set).
 */
#ifndef AF_FPENV_H
#define AF_FPENV_H

#include <stdint.h>

#if defined(__SSE2__) || defined(_M_X64) || defined(__x86_64__) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <xmmintrin.h>
#define AF_FPENV_X86 1
/* MXCSR: bits 0-5 are sticky exception flags; the rest is control state (masks, rounding, FTZ, DAZ). */
#define AF_FP_FLAGS 0x003Fu
#define AF_FP_FLUSH (0x8000u | 0x0040u)       /* FTZ | DAZ */
#define AF_FP_CALL_CLEAR 0x6000u             /* rounding control: to nearest */
#define AF_FP_CALL_SET (AF_FP_FLUSH | 0x1F80u) /* and every exception masked */
#define AF_FP_ROUND_TOWARD_ZERO 0x6000u      /* RC = 11 */
#define AF_FP_ROUND_MASK 0x6000u
typedef unsigned int af_fpword;
static inline af_fpword af_fp_read(void) { return _mm_getcsr(); }
static inline void af_fp_write(af_fpword w) { _mm_setcsr(w); }
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define AF_FPENV_AARCH64 1
/* FPCR holds control state only (the flags are in FPSR). */
#define AF_FP_FLAGS 0u
#define AF_FP_FLUSH (1u << 24)                /* FZ */
#define AF_FP_CALL_CLEAR ((3u << 22) | (0x1Fu << 8) | (1u << 15)) /* to nearest; no trap enabled */
#define AF_FP_CALL_SET AF_FP_FLUSH
#define AF_FP_ROUND_TOWARD_ZERO (3u << 22)    /* RMode = 11 */
#define AF_FP_ROUND_MASK (3u << 22)
typedef uint64_t af_fpword;
static inline af_fpword af_fp_read(void)
{
    af_fpword w;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(w));
    return w;
}
static inline void af_fp_write(af_fpword w) { __asm__ __volatile__("msr fpcr, %0" : : "r"(w) : "memory"); }
#else
#define AF_FPENV_NONE 1
#define AF_FP_FLAGS 0u
#define AF_FP_FLUSH 0u
#define AF_FP_CALL_CLEAR 0u
#define AF_FP_CALL_SET 0u
#define AF_FP_ROUND_TOWARD_ZERO 0u
#define AF_FP_ROUND_MASK 0u
typedef unsigned int af_fpword;
static inline af_fpword af_fp_read(void) { return 0; }
static inline void af_fp_write(af_fpword w) { (void)w; }
#endif

/* The caller's state, saved by af_fpenv_enter for af_fpenv_leave. */
typedef struct af_fpenv {
    af_fpword saved;
    int changed;   /* 0 if the caller's state was already the call's: then nothing is written back */
} af_fpenv;

/* Turn flush-to-zero (and denormals-are-zero) on for this thread, with rounding to nearest and exceptions
 * masked, saving the caller's state. */
static inline void af_fpenv_enter(af_fpenv *env)
{
    af_fpword want;
    env->saved = af_fp_read();
    want = (env->saved & ~(af_fpword)AF_FP_CALL_CLEAR) | (af_fpword)AF_FP_CALL_SET;
    env->changed = want != env->saved;
    if (env->changed)
        af_fp_write(want);
}

/* Restore the caller's control state; keep the exception flags raised meanwhile. */
static inline void af_fpenv_leave(const af_fpenv *env)
{
    if (env->changed)
        af_fp_write((env->saved & ~(af_fpword)AF_FP_FLAGS) | (af_fp_read() & (af_fpword)AF_FP_FLAGS));
}

/* Test hooks: the control state (flags masked out), and setting it (flags kept). */
static inline uint64_t af_fp_control_get(void) { return (uint64_t)(af_fp_read() & ~(af_fpword)AF_FP_FLAGS); }
static inline void af_fp_control_set(uint64_t control)
{
    af_fp_write(((af_fpword)control & ~(af_fpword)AF_FP_FLAGS) | (af_fp_read() & (af_fpword)AF_FP_FLAGS));
}

#endif /* AF_FPENV_H */
