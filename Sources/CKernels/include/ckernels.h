// Hot CPU kernels for Relay: quantized matrix products, attention, and a spinning thread pool.
// Every kernel has an AVX2+FMA path and, where the CPU has it, an AVX-512 VNNI path, chosen at run time.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// GGML tensor type ids, as stored in GGUF files.
enum {
    RK_F32 = 0, RK_F16 = 1, RK_Q4_0 = 2, RK_Q4_1 = 3, RK_Q5_0 = 6, RK_Q5_1 = 7, RK_Q8_0 = 8,
    RK_Q2_K = 10, RK_Q3_K = 11, RK_Q4_K = 12, RK_Q5_K = 13, RK_Q6_K = 14, RK_BF16 = 30,
};

// --- CPU features -----------------------------------------------------------------------------
// 1 = AVX2+FMA, 2 = AVX-512 (F, BW, VL, VNNI). RELAY_FORCE_AVX2=1 in the environment, or
// rk_force_avx2(1), keeps the AVX2 path on machines that have AVX-512. Packed copies (rk_pack) are
// in the form of the ISA they were packed on: change it only while none is in use.
int rk_isa(void);
void rk_force_avx2(int on);
const char *rk_isa_name(void);

// --- Thread pool ------------------------------------------------------------------------------
// Persistent worker threads that spin briefly between jobs (decode issues hundreds of jobs per token).
typedef void (*rk_task_fn)(void *ctx, int ith, int nth);
void rk_threads_init(int n);              // n >= 1; may be called again to resize
int rk_threads_count(void);
void rk_parallel(rk_task_fn fn, void *ctx); // runs fn(ctx, ith, nth) for ith in 0..<nth, waits for all
// Best of `repetitions` streaming reads of a `bytes` buffer on the pool's threads, in bytes per second.
double rk_read_bandwidth(size_t bytes, int repetitions);

// --- Types ------------------------------------------------------------------------------------
int rk_type_supported(int type);
int64_t rk_block_size(int type);           // elements per block (1 for F32/F16/BF16)
size_t rk_row_size(int type, int64_t n);   // bytes of n elements; 0 if n is not a multiple of the block

// Plain scalar reference dequantization of n elements (n a multiple of the block size).
void rk_dequantize_row(int type, const void *src, float *dst, int64_t n);

// --- Matrix product ---------------------------------------------------------------------------
// y[t*rows + r] = dot(W[r, :], x[t*K : t*K+K]) for r < rows, t < T.
// W is rows x K of `type`, rows stored contiguously with stride rk_row_size(type, K).
// Runs on the thread pool. Each y[t, r] is bit-identical whatever T and the thread count are,
// so a forward over many positions gives exactly the logits of one position at a time.
void rk_matmul(int type, const void *W, int rows, int K, const float *x, int T, float *y);

// Packed weights: a quantised matrix can be copied once (at load) into the layout its kernel reads
// directly, which makes products over few tokens (decode, draft verification) cheaper in compute.
// AVX-512 VNNI packs every quantised type, AVX2 all but Q6_K (whose kernel reads the file's
// layout as it is). rk_packed_row_size is 0 when this CPU or type has no packed form; rk_pack
// fills rows * rk_packed_row_size(type, K) bytes (64-byte aligned). rk_matmul_packed gives
// rk_matmul's results (AVX2: exactly; AVX-512: up to summation order in a row's last partial
// group) and is bit-identical whatever T and the thread count.
size_t rk_packed_row_size(int type, int K);
void rk_pack(int type, const void *W, int rows, int K, void *dst);
void rk_matmul_packed(int type, const void *P, int rows, int K, const float *x, int T, float *y);

// Up to 4 products over the same input x (K columns, T tokens), such as a layer's q, k and v: the
// input is quantised once per activation format and the threads meet once, not once per product.
// Each y is exactly what rk_matmul (or rk_matmul_packed, with `packed`) gives.
typedef struct { int type; const void *W; int packed; int rows; float *y; } rk_product;
void rk_matmul_many(const rk_product *p, int n, int K, const float *x, int T);

// --- Attention --------------------------------------------------------------------------------
// Causal attention for T queries at positions pos0 ..< pos0+T, with grouped K/V heads.
// q, out: [T][n_head*hd]; k, v: [pos0+T][n_kv*hd] (this layer's cache, row stride kv_stride floats).
// Query t sees key positions 0 ... pos0+t. Runs on the thread pool.
void rk_attention(const float *q, const float *k, const float *v, float *out, int T, int pos0,
                  int n_head, int n_kv, int hd, int kv_stride, float scale);
// The same for several rows of one forward (each its own queries, cache, T and pos0), as one job:
// each row's output is exactly what rk_attention gives it alone.
typedef struct { const float *q, *k, *v; float *out; int T, pos0; } rk_attention_row;
void rk_attention_rows(const rk_attention_row *rows, int n, int n_head, int n_kv, int hd, int kv_stride, float scale);

#ifdef __cplusplus
}
#endif
