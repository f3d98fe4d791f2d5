/*
 * af_sync.h -- the one synchronisation primitive of the split kernel (af_split.inc): a barrier over a
 * control block of int64_t that the caller owns (a NumPy array), shared by the threads of one call.
 *
 * Not part of the public API. Each thread announces its arrival in a cache line of its own (a store, no
 * read-modify-write) and waits by reading every thread's line: the loads are independent, so a core fetches
 * them together, and a barrier costs about one cross-core round trip whatever the number of threads. (A
 * shared counter, the first version, costs one exclusive transfer of its line per thread, one after the other:
 * on a 16-core Xeon, 8 and 16 threads trained slower than 4.)
 *
 * A waiting thread spins for ctl[AF_CTL_SPIN] rounds, then yields its CPU, so that more threads than cores
 * (oversubscription: 32 threads on 2 cores in CI) still make progress: the waiting thread gives its core to the
 * threads it waits for.
 */
#ifndef AF_SYNC_H
#define AF_SYNC_H

#include <stdint.h>

/* The control block's layout is annfast.h's (AF_SPLIT_CTL_*), the caller's side of it: a header of 32 int64_t,
 * then one cache line (8 int64_t) per thread. In thread t's line: [0] the barriers it has arrived at; in the
 * leader's (t = 0), [1 + parity] its reading of AF_SPLIT_CTL_STOP for the barrier of that parity, written before
 * [0]; [AF_SPLIT_CTL_TICKS ...] the call's own time accounting, written once at its end. */
#define AF_CTL_STOP AF_SPLIT_CTL_STOP
#define AF_CTL_ABORT AF_SPLIT_CTL_ABORT
#define AF_CTL_SPIN AF_SPLIT_CTL_SPIN
#define AF_CTL_TICKS AF_SPLIT_CTL_TICKS
#define AF_CTL_LINE(t) AF_SPLIT_CTL_LINE(t)

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
__declspec(dllimport) int __stdcall SwitchToThread(void);
AF_STATIC_INLINE int64_t af_atomic_load(int64_t *p) { return _InterlockedOr64((volatile __int64 *)p, 0); }
AF_STATIC_INLINE void af_atomic_store(int64_t *p, int64_t v) { _InterlockedExchange64((volatile __int64 *)p, v); }
AF_STATIC_INLINE void af_cpu_relax(void) { _mm_pause(); }
AF_STATIC_INLINE void af_yield(void) { (void)SwitchToThread(); }
#else
/* sched_yield is POSIX (sched.h); declared here so that strict C99 builds need no feature macros */
extern int sched_yield(void);
AF_STATIC_INLINE int64_t af_atomic_load(int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
AF_STATIC_INLINE void af_atomic_store(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
AF_STATIC_INLINE void af_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
AF_STATIC_INLINE void af_yield(void) { (void)sched_yield(); }
#endif

/* A cheap time counter (cycles or a fixed-rate tick), for the split kernel's own accounting. */
AF_STATIC_INLINE int64_t af_ticks(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    return (int64_t)__builtin_ia32_rdtsc();
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    int64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    return (int64_t)__rdtsc();
#else
    return 0;
#endif
}

/* Thread t of n arrives at its next barrier (*gen counts them, from its line's value at the call's start) and
 * waits until every thread has arrived there. Everything a thread wrote before its arrival is visible to every
 * thread after the barrier (release store, acquire loads). The leader (t = 0) also publishes its reading of
 * ctl[AF_CTL_STOP]; every thread returns that reading in *stop, so that all act on the same answer.
 * Returns 0, or 1 without waiting further once ctl[AF_CTL_ABORT] is set (a thread that will never arrive). */
AF_STATIC_INLINE int af_barrier(int64_t *ctl, int64_t t, int64_t n, int64_t *gen, int *stop)
{
    const int64_t g = ++*gen;
    int64_t *lead = &ctl[AF_CTL_LINE(0)];
    if (t == 0) af_atomic_store(&lead[1 + (g & 1)], af_atomic_load(&ctl[AF_CTL_STOP]) != 0);
    af_atomic_store(&ctl[AF_CTL_LINE(t)], g);
    const int64_t limit = ctl[AF_CTL_SPIN];
    int64_t spins = 0;
    for (;;) {
        /* every line read in one pass, independently, then one test: the misses overlap */
        int64_t low = g;
        for (int64_t i = 0; i < n; i++) {
            const int64_t v = af_atomic_load(&ctl[AF_CTL_LINE(i)]);
            low = v < low ? v : low;
        }
        if (low >= g) break;
        if (af_atomic_load(&ctl[AF_CTL_ABORT])) return 1;
        if (spins < limit) {
            spins++;
            af_cpu_relax();
        } else {
            af_yield();
        }
    }
    /* the leader rewrites this slot only at barrier g + 2, which it reaches after every thread arrived at g + 1,
     * so after this thread has read it */
    *stop = (int)af_atomic_load(&lead[1 + (g & 1)]);
    return 0;
}

#endif /* AF_SYNC_H */
