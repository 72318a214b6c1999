// Additions to ckernels.h used by tests and tools.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// rk_matmul / rk_attention on an explicit ISA (0 = portable scalar, 1 = AVX2, 2 = AVX-512 VNNI),
// clamped to what the CPU has. Leaves the process-wide choice (rk_force_avx2) untouched, so tests
// can compare paths while other code runs kernels concurrently.
void rk_matmul_isa(int isa, int type, const void *W, int rows, int K, const float *x, int T, float *y);
void rk_attention_isa(int isa, const float *q, const float *k, const float *v, float *out, int T, int pos0,
                      int n_head, int n_kv, int hd, int kv_stride, float scale);

// Packed weights (rk_pack) of an explicit ISA, clamped to what the CPU has: a copy packed for one
// ISA is read with the same ISA.
size_t rk_packed_row_size_isa(int isa, int type, int K);
void rk_pack_isa(int isa, int type, const void *W, int rows, int K, void *dst);
void rk_matmul_packed_isa(int isa, int type, const void *P, int rows, int K, const float *x, int T, float *y);

// How rk_matmul_isa quantises the activations for a weight type: elements per 8-bit block (each
// block gets scale amax/127, values rounded to nearest even), or 0 when x is used as fp32.
int rk_activation_block(int isa, int type);

// Simple (not quality-tuned) reference quantiser: n floats -> rk_row_size(type, n) bytes of valid
// blocks. Returns the bytes written, 0 if the type is unsupported or n is not a block multiple.
size_t rk_quantize_row_ref(int type, const float *x, void *dst, int64_t n);

// fp16 <-> fp32 (round to nearest even).
float rk_fp16_to_fp32(uint16_t h);
uint16_t rk_fp32_to_fp16(float f);

#ifdef __cplusplus
}
#endif
