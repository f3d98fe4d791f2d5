/* af_f32_avx512.c -- the float kernels for x86-64 CPUs with AVX-512 F/DQ/BW/VL (64-byte vectors). */
#define AF_REAL float
#define AF_IS_F32 1
#define AF_PREC f32
#define AF_ISA_NAME avx512
#define AF_VBYTES 64
#define AF_TARGET "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"
#include "af_variant.inc"
