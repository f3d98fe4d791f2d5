/* af_f32_avx2.c -- the float kernels for x86-64 CPUs with AVX2 and FMA (32-byte vectors). */
#define AF_REAL float
#define AF_IS_F32 1
#define AF_PREC f32
#define AF_ISA_NAME avx2
#define AF_VBYTES 32
#define AF_TARGET "avx2,fma"
#include "af_variant.inc"
