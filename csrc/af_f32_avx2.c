/* af_f32_avx2.c -- the float instance of the kernels compiled for AVX2 + FMA; used only on CPUs that
 * have both (af_isa_supported). The rest of the extension is built for the baseline ISA. */
#include <math.h>
#include <string.h>
#include "af_internal.h"

#if AF_HAVE_AVX2

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define AF_REAL float
#define AF_IS_F32 1
#define AF_PREC f32
#define AF_ISA_NAME avx2
#define AF_IS_BASE 0

#include "af_kernels.inc"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int af_f32_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
