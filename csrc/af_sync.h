/*
 * af_sync.h -- the one synchronisation primitive of the split kernel (af_split.inc): a barrier over a
 * control block of int64_t that the caller owns (a NumPy array), shared by the threads of one call.
 *
 * Not part of the public API. Threads wait by spinning for a short while, then by yielding the CPU, so
 * that more threads than cores (oversubscription: 32 threads on 2 cores in CI) still make progress:
 * a waiting thread gives its core to the threads it waits for.
 */
#ifndef AF_SYNC_H
#define AF_SYNC_H

#include <stdint.h>

/* Slots of the control block, each on its own 64-byte cache line (8 int64_t). */
#define AF_CTL_COUNT 0      /* threads arrived at the current barrier */
#define AF_CTL_GEN 8        /* barriers completed */
#define AF_CTL_STOP 16      /* nonzero: someone (Ctrl-C in the caller) asks the threads to stop */
#define AF_CTL_ABORT 17     /* nonzero: a thread of the call failed before it arrived; waiting is pointless */
#define AF_CTL_SPIN 18      /* how long a waiting thread spins before it yields (set by the caller, read only) */
#define AF_CTL_DECIDE 24    /* the leader's reading of AF_CTL_STOP for the current row: two slots, by parity */
#define AF_CTL_LEN 32       /* length of the block; annfast.h exports it as AF_SPLIT_CTL_LEN */

/* ctl[AF_CTL_SPIN]: spins (pause instructions) before a waiting thread starts yielding its CPU. The caller
 * sets about a few microseconds' worth, longer than a barrier takes when every thread has a core of its own,
 * or 0 when there are more threads than cores: then the thread waited for needs the waiting one's core. */

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
__declspec(dllimport) int __stdcall SwitchToThread(void);
AF_STATIC_INLINE int64_t af_atomic_load(int64_t *p) { return _InterlockedOr64((volatile __int64 *)p, 0); }
AF_STATIC_INLINE void af_atomic_store(int64_t *p, int64_t v) { _InterlockedExchange64((volatile __int64 *)p, v); }
AF_STATIC_INLINE int64_t af_atomic_inc(int64_t *p) { return _InterlockedIncrement64((volatile __int64 *)p); }
AF_STATIC_INLINE void af_cpu_relax(void) { _mm_pause(); }
AF_STATIC_INLINE void af_yield(void) { (void)SwitchToThread(); }
#else
/* sched_yield is POSIX (sched.h); declared here so that strict C99 builds need no feature macros */
extern int sched_yield(void);
AF_STATIC_INLINE int64_t af_atomic_load(int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
AF_STATIC_INLINE void af_atomic_store(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
AF_STATIC_INLINE int64_t af_atomic_inc(int64_t *p) { return __atomic_add_fetch(p, 1, __ATOMIC_ACQ_REL); }
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

/* Wait until all n threads have called af_barrier for the *gen-th time (each thread keeps its own count in
 * *gen, starting from the block's AF_CTL_GEN, which is 0 in a fresh block). Everything a thread wrote before
 * the barrier is visible to every thread after it (acquire/release on the counters). Returns 0, or 1 without
 * waiting further once ctl[AF_CTL_ABORT] is set (a thread that will never arrive). */
AF_STATIC_INLINE int af_barrier(int64_t *ctl, int64_t n, int64_t *gen)
{
    const int64_t g = *gen;
    if (af_atomic_inc(&ctl[AF_CTL_COUNT]) == n) {
        /* the last to arrive resets the count before it releases the others, who can only arrive at the
         * next barrier after seeing the new generation */
        af_atomic_store(&ctl[AF_CTL_COUNT], 0);
        af_atomic_store(&ctl[AF_CTL_GEN], g + 1);
    } else {
        const int64_t limit = ctl[AF_CTL_SPIN];
        int64_t spins = 0;
        while (af_atomic_load(&ctl[AF_CTL_GEN]) == g) {
            if (af_atomic_load(&ctl[AF_CTL_ABORT])) return 1;
            if (spins < limit) {
                spins++;
                af_cpu_relax();
            } else {
                af_yield();
            }
        }
    }
    *gen = g + 1;
    return 0;
}

#endif /* AF_SYNC_H */
