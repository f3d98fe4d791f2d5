/*
 * limits: measures this core's own limits for the annfast benchmark: float32 and float64 FMA peaks and the
 * bandwidth of sweeping a weight buffer (read, and read-modify-write), single-threaded.
 *
 * A measuring tool, so it is built for the machine it runs on (bench/limits.py does this into bench/build/):
 *   gcc -O3 -march=native -mprefer-vector-width=512 -std=gnu11 limits.c -o limits
 *
 * Usage: limits [--quick] N_FLOAT32_ELEMENTS... -- N_FLOAT64_ELEMENTS...
 * Prints one result a line:
 *   peak avx2 GFLOPS         float32 FMA peak with 256-bit vectors (x86 with AVX2+FMA only)
 *   peak avx512 GFLOPS       float32 FMA peak with 512-bit vectors (x86 with AVX-512F only)
 *   peak scalar GFLOPS       float32 FMA peak without vectors (always; a floor, for other CPUs)
 *   peak avx2_f64 GFLOPS     the same three in float64 (half the lanes per vector, 2 flops per lane per FMA)
 *   peak avx512_f64 GFLOPS
 *   peak scalar_f64 GFLOPS
 *   bw ELEM_SIZE N_ELEMENTS READ_BYTES_PER_S RMW_BYTES_PER_S
 * Bandwidth counts the buffer's bytes once per sweep: read = sum the buffer (vector accumulators);
 * read-modify-write = w[i] = w[i] - c * x[i mod 256], x a 256-element vector that stays in L1, like the fused
 * backward/update of per-sample SGD. Each figure is the best of several trials of many sweeps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define BENCH_X86 1
#endif

static int quick = 0;
static volatile double sink;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define PEAK_ITERS 20000000L

/* FMA peak of one shape of accumulator: NACC independent chains acc = acc * a + b of type V (a vector of T, or
 * T itself), each step one FMA per lane (GCC contracts the multiply-add); flops per second, 2 per lane per FMA.
 * BARRIER runs once per step of all chains (the scalar forms need one to stay scalar). */
#define DEFINE_PEAK(NAME, ATTR, T, V, NACC, UNROLL, BARRIER)                                                   \
    ATTR static double NAME(long iters)                                                                       \
    {                                                                                                          \
        V acc[NACC];                                                                                           \
        const V a = (V){0} + (T)0.999999, b = (V){0} + (T)1e-7;                                                \
        for (int k = 0; k < NACC; k++)                                                                         \
            acc[k] = (V){0} + (T)k;                                                                            \
        double t0 = now_seconds();                                                                             \
        for (long i = 0; i < iters; i++) {                                                                     \
            _Pragma(UNROLL) for (int k = 0; k < NACC; k++) acc[k] = acc[k] * a + b;                            \
            BARRIER;                                                                                           \
        }                                                                                                      \
        double t = now_seconds() - t0;                                                                         \
        V s = acc[0];                                                                                          \
        for (int k = 1; k < NACC; k++)                                                                         \
            s += acc[k];                                                                                       \
        T out[sizeof(V) / sizeof(T)];                                                                          \
        memcpy(out, &s, sizeof s);                                                                             \
        sink = out[0];                                                                                         \
        return 2.0 * (double)(sizeof(V) / sizeof(T)) * NACC * (double)iters / t;                              \
    }

#define NO_BARRIER ((void)0)
/* keeps the compiler from turning the scalar accumulators into one vector */
#define SCALAR_BARRIER __asm__ volatile("" : : : "memory")

#ifdef BENCH_X86
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef double f64x4 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));
/* 12 chains of 256-bit vectors and 24 of 512-bit ones: enough to cover the FMA latency on two ports */
DEFINE_PEAK(fma_avx2, __attribute__((target("avx2,fma"))), float, f32x8, 12, "GCC unroll 12", NO_BARRIER)
DEFINE_PEAK(fma_avx512, __attribute__((target("avx512f"))), float, f32x16, 24, "GCC unroll 24", NO_BARRIER)
DEFINE_PEAK(fma_avx2_f64, __attribute__((target("avx2,fma"))), double, f64x4, 12, "GCC unroll 12", NO_BARRIER)
DEFINE_PEAK(fma_avx512_f64, __attribute__((target("avx512f"))), double, f64x8, 24, "GCC unroll 24", NO_BARRIER)
#endif
DEFINE_PEAK(fma_scalar, , float, float, 12, "GCC unroll 12", SCALAR_BARRIER)
DEFINE_PEAK(fma_scalar_f64, , double, double, 12, "GCC unroll 12", SCALAR_BARRIER)

static double best_of(double (*f)(long), long iters, int trials)
{
    double best = 0;
    for (int t = 0; t < trials; t++) {
        double v = f(iters);
        if (v > best)
            best = v;
    }
    return best;
}

/* ---- bandwidth ------------------------------------------------------------------------------------------ */

#define XLEN 256

typedef float vf32 __attribute__((vector_size(64)));
typedef double vf64 __attribute__((vector_size(64)));

#define DEFINE_SWEEPS(T, V, SUFFIX)                                                                             \
    static double read_sweep_##SUFFIX(const T *restrict w, size_t n)                                            \
    {                                                                                                           \
        enum { L = sizeof(V) / sizeof(T) };                                                                     \
        V a[8] = {{0}}, v;                                                                                      \
        size_t i = 0;                                                                                           \
        for (; i + 8 * L <= n; i += 8 * L) {                                                                    \
            for (int k = 0; k < 8; k++) {                                                                       \
                memcpy(&v, w + i + k * L, sizeof(V));                                                           \
                a[k] += v;                                                                                      \
            }                                                                                                   \
        }                                                                                                       \
        for (; i + L <= n; i += L) {                                                                            \
            memcpy(&v, w + i, sizeof(V));                                                                       \
            a[0] += v;                                                                                \
        }                                                                                                       \
        V s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));                                \
        T tail = 0;                                                                                             \
        for (; i < n; i++)                                                                                      \
            tail += w[i];                                                                                       \
        for (int k = 0; k < L; k++)                                                                             \
            tail += s[k];                                                                                       \
        return (double)tail;                                                                                    \
    }                                                                                                           \
    static void rmw_sweep_##SUFFIX(T *restrict w, size_t n, const T *restrict x, T c)                           \
    {                                                                                                           \
        for (size_t base = 0; base < n; base += XLEN) {                                                         \
            size_t m = n - base < XLEN ? n - base : XLEN;                                                       \
            T *restrict row = w + base;                                                                         \
            for (size_t i = 0; i < m; i++)                                                                      \
                row[i] = row[i] - c * x[i];                                                                     \
        }                                                                                                       \
    }                                                                                                           \
    static void bandwidth_##SUFFIX(size_t n, double *read_bps, double *rmw_bps)                                 \
    {                                                                                                           \
        T *w = aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64);                                             \
        T *x = aligned_alloc(64, XLEN * sizeof(T));                                                             \
        if (!w || !x) {                                                                                         \
            fprintf(stderr, "limits: out of memory\n");                                                         \
            exit(1);                                                                                            \
        }                                                                                                       \
        for (size_t i = 0; i < n; i++)                                                                          \
            w[i] = (T)(0.5 + 0.25 * (double)(i % 7));                                                           \
        for (size_t i = 0; i < XLEN; i++)                                                                       \
            x[i] = (T)(0.25 + (double)(i % 5) / 8.0);                                                           \
        /* sweeps per trial: about 2e7 elements (quick: 4e6), at least 2 */                                     \
        size_t target = quick ? 4000000 : 20000000;                                                             \
        size_t sweeps = target / n < 2 ? 2 : target / n;                                                        \
        int trials = quick ? 3 : 9;                                                                             \
        double best_read = 0, best_rmw = 0, acc = 0;                                                            \
        for (int t = 0; t < trials; t++) {                                                                      \
            double t0 = now_seconds();                                                                          \
            for (size_t s = 0; s < sweeps; s++) {                                                               \
                acc += read_sweep_##SUFFIX(w, n);                                                               \
                __asm__ volatile("" : : "r"(w) : "memory");                                                     \
            }                                                                                                   \
            double t1 = now_seconds();                                                                          \
            for (size_t s = 0; s < sweeps; s++) {                                                               \
                rmw_sweep_##SUFFIX(w, n, x, (s & 1) ? (T)1e-6 : (T)-1e-6);                                      \
                __asm__ volatile("" : : "r"(w) : "memory");                                                     \
            }                                                                                                   \
            double t2 = now_seconds();                                                                          \
            double bytes = (double)sweeps * (double)n * sizeof(T);                                              \
            if (bytes / (t1 - t0) > best_read)                                                                  \
                best_read = bytes / (t1 - t0);                                                                  \
            if (bytes / (t2 - t1) > best_rmw)                                                                   \
                best_rmw = bytes / (t2 - t1);                                                                   \
        }                                                                                                       \
        sink = acc + (double)w[n / 2];                                                                          \
        free(x);                                                                                                \
        free(w);                                                                                                \
        *read_bps = best_read;                                                                                  \
        *rmw_bps = best_rmw;                                                                                    \
    }

DEFINE_SWEEPS(float, vf32, f32)
DEFINE_SWEEPS(double, vf64, f64)

int main(int argc, char **argv)
{
    int elem = 4;
    long iters = PEAK_ITERS;
    int trials = 5;
    int argi = 1;
    if (argi < argc && strcmp(argv[argi], "--quick") == 0) {
        quick = 1;
        iters /= 5;
        trials = 3;
        argi++;
    }
#ifdef BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        printf("peak avx2 %.3f\n", best_of(fma_avx2, iters, trials) / 1e9);
    if (__builtin_cpu_supports("avx512f"))
        printf("peak avx512 %.3f\n", best_of(fma_avx512, iters / 2, trials) / 1e9);
#endif
    printf("peak scalar %.3f\n", best_of(fma_scalar, iters / 4, trials) / 1e9);
#ifdef BENCH_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        printf("peak avx2_f64 %.3f\n", best_of(fma_avx2_f64, iters, trials) / 1e9);
    if (__builtin_cpu_supports("avx512f"))
        printf("peak avx512_f64 %.3f\n", best_of(fma_avx512_f64, iters / 2, trials) / 1e9);
#endif
    printf("peak scalar_f64 %.3f\n", best_of(fma_scalar_f64, iters / 4, trials) / 1e9);
    fflush(stdout);

    for (; argi < argc; argi++) {
        if (strcmp(argv[argi], "--") == 0) {
            elem = 8;
            continue;
        }
        long long n = atoll(argv[argi]);
        if (n < 1) {
            fprintf(stderr, "limits: bad element count %s\n", argv[argi]);
            return 2;
        }
        double rd, rmw;
        if (elem == 4)
            bandwidth_f32((size_t)n, &rd, &rmw);
        else
            bandwidth_f64((size_t)n, &rd, &rmw);
        printf("bw %d %lld %.6e %.6e\n", elem, n, rd, rmw);
        fflush(stdout);
    }
    return 0;
}
