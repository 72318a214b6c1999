// Internal declarations shared by the CKernels translation units (not part of the public API).
#pragma once
#include "ckernels.h"
#include "ckernels_extra.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define RK_X86 1
#include <immintrin.h>
#define RK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define RK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#else
#define RK_X86 0
#endif

#define RK_INLINE static inline __attribute__((always_inline))
// Up to this many tokens the AVX-512 drivers take the few-token path below (measured on Qwen 1.5B:
// 2, 4, 8 tokens cost 50, 87, 136 ms against 95, 114, 149 with the many-token tiles; 16 tokens cost
// 279 against 212). AVX2 kernels go row by row at every count (rk_kernel.by_row).
#define SMALL_T 8

// The few-token path of every ISA's matmul driver: decode and draft verification are memory-bound,
// so rows are streamed once and used for every token while they sit in L1. From PAIRS tokens on,
// rows go two at a time so that each activation load serves both (AVX-512 from 3 tokens: Qwen
// 1.5B's 5-position forward 44-63 ms -> 36 ms; on AVX2 one row at a time stays faster). The
// tokens go in as few tiles as the kernel's widest (RNB) allows, of near-equal size, because
// every tile unpacks its rows again: 5 tokens are one 5-wide tile.
#define TILE_CASE(TILE, TYPE, RM, N) case N: TILE(TYPE, W, rs, r, RM, K, a, t, N, y, ldy); break;
#define TILE_UPTO2(TILE, TYPE, RM) TILE_CASE(TILE, TYPE, RM, 1) TILE_CASE(TILE, TYPE, RM, 2)
#define TILE_UPTO4(TILE, TYPE, RM) TILE_UPTO2(TILE, TYPE, RM) TILE_CASE(TILE, TYPE, RM, 3) TILE_CASE(TILE, TYPE, RM, 4)
#define TILE_UPTO8(TILE, TYPE, RM) TILE_UPTO4(TILE, TYPE, RM) TILE_CASE(TILE, TYPE, RM, 5) TILE_CASE(TILE, TYPE, RM, 6) \
    TILE_CASE(TILE, TYPE, RM, 7) TILE_CASE(TILE, TYPE, RM, 8)
#define BY_ROW(TILE, TYPE, RNB, PAIRS)                                                                     \
    {                                                                                                      \
        const int nc = (t1 - t0 + RNB - 1) / RNB;                                                          \
        int r = r0;                                                                                        \
        if (t1 - t0 >= PAIRS)                                                                              \
            for (; r + 2 <= r1; r += 2)                                                                    \
                for (int c = 0, t = t0; c < nc; c++) {                                                     \
                    const int m = (t1 - t + nc - c - 1) / (nc - c);                                        \
                    switch (m) { TILE_UPTO##RNB(TILE, TYPE, 2) }                                           \
                    t += m;                                                                                \
                }                                                                                          \
        for (; r < r1; r++)                                                                                \
            for (int c = 0, t = t0; c < nc; c++) {                                                         \
                const int m = (t1 - t + nc - c - 1) / (nc - c);                                            \
                switch (m) { TILE_UPTO##RNB(TILE, TYPE, 1) }                                               \
                t += m;                                                                                    \
            }                                                                                              \
    }
#define SMALL_T_BY_ROW(TILE, TYPE, RNB, PAIRS)                                                             \
    if (t1 - t0 <= SMALL_T) {                                                                              \
        BY_ROW(TILE, TYPE, RNB, PAIRS)                                                                     \
        return;                                                                                            \
    }

// Kernels must not fuse a multiply and an add that the source keeps apart: every (row, token)
// result has to be computed with exactly the same rounding whatever the tile shape.
#if defined(__clang__)
#define RK_NO_CONTRACT _Pragma("STDC FP_CONTRACT OFF")
#define RK_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define RK_NO_CONTRACT _Pragma("GCC optimize(\"fp-contract=off\")")
#define RK_UNROLL _Pragma("GCC unroll 8")
#else
#define RK_NO_CONTRACT
#define RK_UNROLL
#endif

// --- GGML block layouts (byte-exact with GGUF files) ------------------------------------------
#define QK 32   // elements per block of the "legacy" types
#define QKK 256 // elements per super-block of the K-quants

typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } blk_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } blk_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_K;

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0");
_Static_assert(sizeof(blk_q2_K) == 84, "q2_K");
_Static_assert(sizeof(blk_q3_K) == 110, "q3_K");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K");
_Static_assert(sizeof(blk_q5_K) == 176, "q5_K");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K");

// Best ISA the CPU supports, ignoring rk_force_avx2.
int rk_isa_hw(void);

static inline uint32_t rk_rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rk_rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// 6-bit scales and mins of Q4_K / Q5_K: 12 bytes -> sc[8], m[8].
static inline void rk_kscales(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

// --- Quantised activations ------------------------------------------------------------------
// ACT_Q8K (AVX2 K-quant kernels): per token qs[K] int8, then d[K/256] float, then bsums[K/16] int16.
// ACT_GRP (all other integer kernels): the activations are cut into blocks of BE (32 or 16)
// elements, each with its own scale, and G blocks (16 for AVX-512, 8 for AVX2) are interleaved so
// that int32 lane p of a vector accumulates exactly one block, the one the weight unpacking puts
// in that lane (lane[] maps block -> lane). Per group of G blocks:
//   quants: BE/4 vectors of 4*G bytes; byte 4*G*m + 4*lane[k] + i = element 4*m + i of block k
//   then d[G] float, s[G] float (= d * sum q), init[G] int32 (= -off * sum q), indexed by lane
// With `halves` (AVX2's legacy types) each 32-element block is quantised as two halves of 16 with
// their own scale, which lowers the activations' rounding error (Relay's mean KL divergence from
// an fp32 reference, scripts/fidelity.sh): the quants as above, then d_lo[G], d_hi[G],
// s[G] (= d_lo * sum q_lo + d_hi * sum q_hi), init_lo[G], init_hi[G].
// A partial last group is zero-padded. `off` is the weight's zero point (Q4_0 8, Q5_0 16, Q6_K 32,
// Q8_0 128 where weights are read as w+128), so unsigned-weight x signed-activation dot products
// need no per-row correction.
// A partial last group of <= 8 blocks may use an 8-lane group instead (kernel-specific lane8[]).
enum { ACT_NONE = 0, ACT_Q8K = 2, ACT_GRP = 3 };
typedef struct rk_act {
    const uint8_t *base; // first token
    size_t stride;       // bytes per token
    size_t off_d, off_s; // ACT_Q8K: offsets of d and bsums inside a token
} rk_act;

// --- Tile kernels -----------------------------------------------------------------------------
// Computes y[t*ldy + r] for r in [r0, r1), t in [t0, t1). W points at row 0 (row stride rs).
// For F32/F16/BF16, a->base is x itself (stride K*4 bytes).
typedef void (*rk_tile_fn)(const uint8_t *W, size_t rs, int r0, int r1, int K, const rk_act *a,
                           int t0, int t1, float *y, int ldy);

typedef struct {
    rk_tile_fn fn;
    int act;              // ACT_* kind the kernel expects
    int G, BE, off;       // ACT_GRP: blocks per group, elements per block, weight zero point
    const uint8_t *lane;  // ACT_GRP: block -> lane in a full group
    const uint8_t *lane8; // block -> lane for a tail group of <= 8 blocks (NULL: padded full group)
    int by_row;           // goes row by row at every token count (no weight reuse across rows to keep)
    int halves;           // ACT_GRP: a scale per 16-element half block (layout above)
} rk_kernel;

// Bytes of an ACT_GRP group of G blocks.
static inline size_t rk_group_bytes(const rk_kernel *k, int G) { return (size_t)G * (size_t)(k->BE + (k->halves ? 20 : 12)); }

// Lanes of the last (partial) group: 0 if none.
static inline int rk_tail_lanes(const rk_kernel *k, int K) {
    const int rem = (K / k->BE) % k->G;
    if (!rem) return 0;
    return (k->lane8 && rem <= 8) ? 8 : k->G;
}

void rk_act_layout(rk_act *a, const rk_kernel *k, int K, const uint8_t *base);
#if RK_X86
RK_AVX2 void rk_quantize_act_g(const float *x, int K, uint8_t *dst, const rk_kernel *k);
RK_AVX2 void rk_quantize_act_q8k(const float *x, int K, uint8_t *dst, const rk_act *layout);
#endif

// Fills *k for `type` on the given ISA; returns 0 if there is no kernel for it.
int rk_kernel_avx2(int type, rk_kernel *k);
int rk_kernel_avx512(int type, rk_kernel *k);
int rk_kernel_avx512_packed(int type, rk_kernel *k);
int rk_kernel_avx2_packed(int type, rk_kernel *k);
size_t rk_packed_row_size_avx2(int type, int K);
void rk_pack_rows_avx2(int type, const uint8_t *W, size_t rs, int r0, int r1, int K, uint8_t *dst);
size_t rk_packed_row_size_avx512(int type, int K);
void rk_pack_rows_avx512(int type, const uint8_t *W, size_t rs, int r0, int r1, int K, uint8_t *dst);

// Thread-pool internals used by kernels.
int rk_in_parallel(void);
