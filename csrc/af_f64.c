/* af_f64.c -- the double instance of the kernels: baseline variant, the reference kernel and the public entry
 * points. */
#include <math.h>
#include <string.h>
#include "af_internal.h"

#define AF_REAL double
#define AF_IS_F32 0
#define AF_PREC f64
#define AF_ISA_NAME base
#define AF_IS_BASE 1
#define AF_VBYTES 16
#define AF_API_(name, prec) af_##name##_##prec
#define AF_API_X(name, prec) AF_API_(name, prec)
#define AF_API(name) AF_API_X(name, AF_PREC)

#include "af_kernels.inc"
#include "af_reference.inc"
#include "af_api.inc"
