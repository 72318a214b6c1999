// AVX-512 (F/BW/VL/VNNI) tile kernels.
//
// Every kernel computes a tile of RM weight rows x RN tokens. The per-(row, token) arithmetic is
// the same for every tile shape (one always-inline body, shapes are compile-time constants), so
// y[t, r] does not depend on T or on how rows are split across threads.

#include "internal.h"

#if RK_X86
RK_NO_CONTRACT

#define A512 RK_AVX512

A512 RK_INLINE float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

// ============================ integer kernels (interleaved) ==================================
// A group is 16 blocks of BE activations (BE = 32, or 16 for Q6_K sub-blocks). Unpacking puts the
// weights of block k into int32 lane LANE[k] of NM = BE/4 vectors (4 consecutive elements per
// vector), so NM vpdpbusd give every lane the exact integer dot of one block. Then per group and
// (row, token): one convert, one multiply of the weight and activation scale vectors, one FMA
// (and one more FMA for a min term). Weights are unsigned (nibbles, +16 for the 5th bit, Q6_K
// as stored, Q8_0 as w+128); the activation side starts each lane at -off*sum(x).
//
// Group = 16 blocks of a legacy type, 2 super-blocks of Q4_K/Q5_K (16 sub-blocks of 32),
// or 1 super-block of Q6_K (16 sub-blocks of 16).

static const uint8_t LANE_T16[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15}; // 4x4 transpose
static const uint8_t LANE_Q45K[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
// lane -> block, as pshufb controls (LANE_T16 is its own inverse)
static const uint8_t BLK_Q45K[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};
// 8-lane tail groups
static const uint8_t LANE_ID8[8] = {0, 1, 2, 3, 4, 5, 6, 7};

static inline size_t tbytes(int type) {
    switch (type) {
    case RK_Q4_0: return sizeof(blk_q4_0);
    case RK_Q4_1: return sizeof(blk_q4_1);
    case RK_Q5_0: return sizeof(blk_q5_0);
    case RK_Q5_1: return sizeof(blk_q5_1);
    case RK_Q8_0: return sizeof(blk_q8_0);
    case RK_Q4_K: return sizeof(blk_q4_K);
    case RK_Q5_K: return sizeof(blk_q5_K);
    default: return sizeof(blk_q6_K);
    }
}
#define IS_K(type) ((type) == RK_Q4_K || (type) == RK_Q5_K || (type) == RK_Q6_K)
#define HAS_MIN(type) ((type) == RK_Q4_1 || (type) == RK_Q5_1 || (type) == RK_Q4_K || (type) == RK_Q5_K)
#define HAS_OFF(type) ((type) == RK_Q4_0 || (type) == RK_Q5_0 || (type) == RK_Q8_0 || (type) == RK_Q6_K)
#define FIVE(type) ((type) == RK_Q5_0 || (type) == RK_Q5_1)
#define NM(type) ((type) == RK_Q6_K ? 4 : 8)
// weight blocks per group, and elements per group
#define GBLK(type) ((type) == RK_Q6_K ? 1 : IS_K(type) ? 2 : 16)
#define GELEM(type) ((type) == RK_Q6_K ? 256 : 512)
static inline size_t lqs(int type) { return type == RK_Q8_0 ? 2 : (HAS_MIN(type) ? 4 : 2) + (FIVE(type) ? 4 : 0); }

// 4x4 dword transpose inside each 128-bit lane: out[m] lane (4l+q) = dword m of in[q] lane l.
A512 RK_INLINE void transpose4(const __m512i in[4], __m512i out[4]) {
    const __m512i t0 = _mm512_unpacklo_epi32(in[0], in[1]), t1 = _mm512_unpackhi_epi32(in[0], in[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(in[2], in[3]), t3 = _mm512_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

// zmm whose 128-bit lane l holds the 16 bytes at p + l*bb.
A512 RK_INLINE __m512i load4x16(const uint8_t *p, size_t bb) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + bb)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * bb)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 3 * bb)), 3);
}

// Same, reading only blocks below nv (the others are zero): the tail of a row is not padded.
A512 RK_INLINE __m512i load4x16m(const uint8_t *p, size_t bb, int b0, int bstep, int nv) {
    __m512i v = _mm512_castsi128_si512(_mm_maskz_loadu_epi8(b0 < nv ? 0xffff : 0, p));
    v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(b0 + bstep < nv ? 0xffff : 0, p + bb), 1);
    v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(b0 + 2 * bstep < nv ? 0xffff : 0, p + 2 * bb), 2);
    return _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(b0 + 3 * bstep < nv ? 0xffff : 0, p + 3 * bb), 3);
}

// Legacy types: 16 consecutive blocks (nv of them present) -> w[8], scales and mins per lane.
A512 RK_INLINE void unpack_legacy(int type, const uint8_t *p0, int nv, uint8_t *w, __m512 *dw, __m512 *mn) {
    const size_t bb = tbytes(type), qo = lqs(type);
    const __m512i lanes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)LANE_T16));
    const __m512i idx = _mm512_mullo_epi32(lanes, _mm512_set1_epi32((int)bb));
    const __mmask16 valid = nv >= 16 ? (__mmask16)0xffff : _mm512_cmplt_epi32_mask(lanes, _mm512_set1_epi32(nv));
    const __m512i hdr = nv >= 16 ? _mm512_i32gather_epi32(idx, p0, 1)
                                 : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, idx, p0, 1);
    *dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hdr));
    if (HAS_MIN(type)) *mn = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(hdr, 16)));
    if (type == RK_Q8_0) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        for (int h = 0; h < 2; h++) {
            __m512i A[4], B[4];
            for (int q = 0; q < 4; q++)
                A[q] = nv >= 16 ? load4x16(p0 + 4 * q * bb + qo + 16 * h, bb) : load4x16m(p0 + 4 * q * bb + qo + 16 * h, bb, 4 * q, 1, nv);
            transpose4(A, B);
            for (int m = 0; m < 4; m++) _mm512_store_si512(w + 64 * (4 * h + m), _mm512_xor_si512(B[m], flip));
        }
        return;
    }
    __m512i A[4], B[4];
    for (int q = 0; q < 4; q++) A[q] = nv >= 16 ? load4x16(p0 + 4 * q * bb + qo, bb) : load4x16m(p0 + 4 * q * bb + qo, bb, 4 * q, 1, nv);
    transpose4(A, B);
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i W[8];
    for (int m = 0; m < 4; m++) {
        W[m] = _mm512_and_si512(B[m], m4);
        W[m + 4] = _mm512_and_si512(_mm512_srli_epi32(B[m], 4), m4);
    }
    if (FIVE(type)) { // bit e of qh is the 5th bit of element e = 4m + i
        const __m512i qh = nv >= 16 ? _mm512_i32gather_epi32(idx, p0 + (HAS_MIN(type) ? 4 : 2), 1)
                                    : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, idx, p0 + (HAS_MIN(type) ? 4 : 2), 1);
        const __m512i sixteen = _mm512_set1_epi8(16);
        // byte i of dword d picks byte (m >> 1) of dword d; bit 4*(m & 1) + i of it is element 4m+i
        const __m512i ctrl0 = _mm512_set_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0, 0x0c0c0c0c, 0x08080808, 0x04040404, 0,
                                               0x0c0c0c0c, 0x08080808, 0x04040404, 0, 0x0c0c0c0c, 0x08080808, 0x04040404, 0);
        const __m512i bits_lo = _mm512_set1_epi32(0x08040201), bits_hi = _mm512_set1_epi32((int)0x80402010u);
RK_UNROLL
        for (int m = 0; m < 8; m++) {
            const __m512i sel = _mm512_shuffle_epi8(qh, _mm512_add_epi8(ctrl0, _mm512_set1_epi8((char)(m >> 1))));
            W[m] = _mm512_mask_add_epi8(W[m], _mm512_test_epi8_mask(sel, (m & 1) ? bits_hi : bits_lo), W[m], sixteen);
        }
    }
    for (int m = 0; m < 8; m++) _mm512_store_si512(w + 64 * m, W[m]);
}

A512 RK_INLINE void q45k_scales(const uint8_t *p0, size_t bb, __m128i *sc8, __m128i *mn8);
A512 RK_INLINE void q45k_apply(__m128i sc8, __m128i mn8, __m128 dd, __m512 *dw, __m512 *mn);

// Q4_K / Q5_K: two super-blocks -> w[8] (lane order LANE_Q45K), scales d*sc and mins -dmin*m.
A512 RK_INLINE void unpack_q45k(int type, const uint8_t *p0, uint8_t *w, __m512 *dw, __m512 *mn) {
    const size_t bb = tbytes(type);
    const size_t qo = type == RK_Q5_K ? 48 : 16;
    const __m512i cnt = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0), m4 = _mm512_set1_epi8(15);
    // N[k]: 32-byte chunk k (super-block k/4, chunk k%4) as [low nibbles | high nibbles]
    __m512i N[8];
    for (int k = 0; k < 8; k++) {
        const __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p0 + (k >> 2) * bb + qo + 32 * (k & 3))));
        N[k] = _mm512_and_si512(_mm512_srlv_epi64(z, cnt), m4);
    }
    __m512i U[8];
    transpose4(N, U);
    transpose4(N + 4, U + 4);
    __m512i W[8];
    for (int m = 0; m < 4; m++) {
        W[m] = _mm512_shuffle_i64x2(U[m], U[m + 4], 0x88);
        W[m + 4] = _mm512_shuffle_i64x2(U[m], U[m + 4], 0xDD);
    }
    if (type == RK_Q5_K) { // element l of sub-block j: bit j of qh[l]
        const __m512i Q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 16))),
                                             _mm256_loadu_si256((const __m256i *)(p0 + bb + 16)), 1);
        // lane p: sub-block j = 2*(p%4) + (p/4)%2 of super-block p/8
        const __m512i J = _mm512_set_epi32(0x80808080, 0x20202020, 0x08080808, 0x02020202, 0x40404040, 0x10101010,
                                           0x04040404, 0x01010101, (int)0x80808080, 0x20202020, 0x08080808, 0x02020202,
                                           0x40404040, 0x10101010, 0x04040404, 0x01010101);
        const __m512i sixteen = _mm512_set1_epi8(16);
        const __m512i base = _mm512_set_epi32(8, 8, 8, 8, 8, 8, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0);
RK_UNROLL
        for (int m = 0; m < 8; m++) {
            const __m512i sel = _mm512_permutexvar_epi32(_mm512_add_epi32(base, _mm512_set1_epi32(m)), Q);
            W[m] = _mm512_mask_add_epi8(W[m], _mm512_test_epi8_mask(sel, J), W[m], sixteen);
        }
    }
    for (int m = 0; m < 8; m++) _mm512_store_si512(w + 64 * m, W[m]);
    __m128i sc8, mn8;
    q45k_scales(p0, bb, &sc8, &mn8);
    const __m128 dd = _mm_cvtph_ps(_mm_set_epi32(0, 0, (int)rk_rd32(p0 + bb), (int)rk_rd32(p0))); // d0 dmin0 d1 dmin1
    q45k_apply(sc8, mn8, dd, dw, mn);
}

// Scales and mins (6 bits) of two Q4_K/Q5_K super-blocks, in lane order.
A512 RK_INLINE void q45k_scales(const uint8_t *p0, size_t bb, __m128i *sc8, __m128i *mn8) {
    uint32_t sw[4], mw[4];
    for (int h = 0; h < 2; h++) {
        const uint8_t *s = p0 + h * bb + 4;
        const uint32_t a0 = rk_rd32(s), a1 = rk_rd32(s + 4), a2 = rk_rd32(s + 8);
        sw[2 * h] = a0 & 0x3f3f3f3fu;
        sw[2 * h + 1] = (a2 & 0x0f0f0f0fu) | ((a0 >> 2) & 0x30303030u);
        mw[2 * h] = a1 & 0x3f3f3f3fu;
        mw[2 * h + 1] = ((a2 >> 4) & 0x0f0f0f0fu) | ((a1 >> 2) & 0x30303030u);
    }
    const __m128i perm = _mm_loadu_si128((const __m128i *)BLK_Q45K);
    *sc8 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)sw), perm);
    *mn8 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)mw), perm);
}

// Lane scales d*sc and mins -dmin*m from the lane-order 6-bit values and (d0, dmin0, d1, dmin1).
A512 RK_INLINE void q45k_apply(__m128i sc8, __m128i mn8, __m128 dd, __m512 *dw, __m512 *mn) {
    const __m512 dv = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2), _mm512_castps128_ps512(dd));
    const __m512 mv = _mm512_permutexvar_ps(_mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3), _mm512_castps128_ps512(dd));
    *dw = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sc8)));
    *mn = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(mv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn8))));
}

// Q6_K: one super-block -> w[4] (lane order LANE_T16), scales d*sc per 16.
A512 RK_INLINE void unpack_q6k(const uint8_t *p0, uint8_t *w, __m512 *dw) {
    const blk_q6_K *x = (const blk_q6_K *)p0;
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    // 16-bit shift counts per 128-bit lane
    const __m512i s_lo = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                          0x0004000400040004, 0x0004000400040004, 0x0004000400040004, 0x0004000400040004);
    const __m512i s_hi = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0, 0, 0, 0);
    __m512i X[4];
    for (int h = 0; h < 2; h++) {
        const __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
        const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * h)));
        X[2 * h] = _mm512_ternarylogic_epi32(_mm512_sllv_epi16(H, s_lo), m30, _mm512_and_si512(L, m4), 0xEA);
        X[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srlv_epi16(H, s_hi), m30, _mm512_and_si512(_mm512_srli_epi16(L, 4), m4), 0xEA);
    }
    __m512i W[4];
    transpose4(X, W);
    for (int m = 0; m < 4; m++) _mm512_store_si512(w + 64 * m, W[m]);
    const __m128i sc = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)x->scales), _mm_loadu_si128((const __m128i *)LANE_T16));
    *dw = _mm512_mul_ps(_mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(x->d))), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
}

// ---- packed weights -------------------------------------------------------------------------
// rk_pack stores each group of a row already in the lane order above, compactly, so that a
// product reads it with plain loads and masks: the shuffles, transposes and gathers of unpacking
// are paid once at load instead of once per row per call. Per group:
//   4/5-bit types: nibbles[256] (byte b of vector m < 4 holds w[m] | w[m+4] << 4), then for 5-bit
//     types 8 masks of 64 bits (bit b of mask m: 5th bit of w[m] byte b), then scales:
//     Q4_K/Q5_K: sc[16], min[16] (6-bit, lane order), d0, dmin0, d1, dmin1 (fp16);
//     legacy: d[16] (fp16, lane order), then for Q4_1/Q5_1 min[16] (fp16)
//   Q6_K: low nibbles[128] (w[2j] | w[2j+1] << 4), high bits[64] (2 bits of w[m] at bit 2m), sc[16] (int8, lane order), d (fp16)
//   Q8_0: w[512] (as w+128), d[16] (fp16)
// The last group of a row is zero-padded, so every group is full.
static size_t pgroup_bytes(int type) {
    switch (type) {
    case RK_Q4_K: return 256 + 40;
    case RK_Q5_K: return 256 + 64 + 40;
    case RK_Q6_K: return 128 + 64 + 16 + 2;
    case RK_Q8_0: return 512 + 32;
    default: return 256 + (FIVE(type) ? 64 : 0) + (HAS_MIN(type) ? 64 : 32);
    }
}

A512 RK_INLINE void punpack(int type, const uint8_t *p, uint8_t *w, __m512 *dw, __m512 *mn) {
    const __m512i m4 = _mm512_set1_epi8(15);
    if (type == RK_Q6_K) {
        const __m512i L0 = _mm512_loadu_si512(p), L1 = _mm512_loadu_si512(p + 64), H = _mm512_loadu_si512(p + 128);
        const __m512i m30 = _mm512_set1_epi8(0x30);
        // (a & m4) | (b & m30)
        _mm512_store_si512(w, _mm512_ternarylogic_epi32(_mm512_and_si512(L0, m4), _mm512_slli_epi16(H, 4), m30, 0xF8));
        _mm512_store_si512(w + 64, _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(L0, 4), m4), _mm512_slli_epi16(H, 2), m30, 0xF8));
        _mm512_store_si512(w + 128, _mm512_ternarylogic_epi32(_mm512_and_si512(L1, m4), H, m30, 0xF8));
        _mm512_store_si512(w + 192, _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(L1, 4), m4), _mm512_srli_epi16(H, 2), m30, 0xF8));
        const __m512 d = _mm512_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(rk_rd16(p + 208)))));
        *dw = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 192)))));
        return;
    }
    __m512i W[8];
    for (int m = 0; m < 4; m++) {
        const __m512i P = _mm512_loadu_si512(p + 64 * m);
        W[m] = _mm512_and_si512(P, m4);
        W[m + 4] = _mm512_and_si512(_mm512_srli_epi16(P, 4), m4);
    }
    const uint8_t *s = p + 256;
    if (FIVE(type) || type == RK_Q5_K) {
        const __m512i sixteen = _mm512_set1_epi8(16);
        for (int m = 0; m < 8; m++) {
            uint64_t k;
            memcpy(&k, s + 8 * m, 8);
            W[m] = _mm512_mask_add_epi8(W[m], (__mmask64)k, W[m], sixteen);
        }
        s += 64;
    }
    for (int m = 0; m < 8; m++) _mm512_store_si512(w + 64 * m, W[m]);
    if (IS_K(type)) {
        const __m128 dd = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(s + 32)));
        q45k_apply(_mm_loadu_si128((const __m128i *)s), _mm_loadu_si128((const __m128i *)(s + 16)), dd, dw, mn);
        return;
    }
    *dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)s));
    if (HAS_MIN(type)) *mn = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 32)));
}

// One group of original blocks (nv of a legacy group's 16 present; K-quants always whole) -> packed.
A512 static void pack_group(int type, const uint8_t *src, int nv, uint8_t *dst) {
    _Alignas(64) uint8_t w[512];
    __m512 dw, mn = _mm512_setzero_ps();
    if (type == RK_Q8_0) {
        unpack_legacy(type, src, nv, w, &dw, &mn);
        memcpy(dst, w, 512);
        _mm256_storeu_si256((__m256i *)(dst + 512), _mm512_cvtps_ph(dw, _MM_FROUND_TO_NEAREST_INT));
        return;
    }
    if (type == RK_Q6_K) {
        const blk_q6_K *x = (const blk_q6_K *)src;
        unpack_q6k(src, w, &dw);
        for (int b = 0; b < 64; b++) {
            for (int j = 0; j < 2; j++) dst[64 * j + b] = (uint8_t)((w[128 * j + b] & 15) | (w[128 * j + 64 + b] & 15) << 4);
            dst[128 + b] = (uint8_t)((w[b] >> 4) | (w[64 + b] >> 4) << 2 | (w[128 + b] >> 4) << 4 | (w[192 + b] >> 4) << 6);
        }
        for (int k = 0; k < 16; k++) dst[192 + k] = (uint8_t)x->scales[LANE_T16[k]];
        memcpy(dst + 208, &x->d, 2);
        return;
    }
    if (IS_K(type)) unpack_q45k(type, src, w, &dw, &mn);
    else unpack_legacy(type, src, nv, w, &dw, &mn);
    for (int m = 0; m < 4; m++)
        for (int b = 0; b < 64; b++) dst[64 * m + b] = (uint8_t)((w[64 * m + b] & 15) | (w[64 * (m + 4) + b] & 15) << 4);
    uint8_t *s = dst + 256;
    if (FIVE(type) || type == RK_Q5_K) {
        for (int m = 0; m < 8; m++) {
            uint64_t k = 0;
            for (int b = 0; b < 64; b++) k |= (uint64_t)((w[64 * m + b] >> 4) & 1) << b;
            memcpy(s + 8 * m, &k, 8);
        }
        s += 64;
    }
    if (IS_K(type)) {
        __m128i sc8, mn8;
        q45k_scales(src, tbytes(type), &sc8, &mn8);
        _mm_storeu_si128((__m128i *)s, sc8);
        _mm_storeu_si128((__m128i *)(s + 16), mn8);
        memcpy(s + 32, src, 4);
        memcpy(s + 36, src + tbytes(type), 4);
        return;
    }
    _mm256_storeu_si256((__m256i *)s, _mm512_cvtps_ph(dw, _MM_FROUND_TO_NEAREST_INT));
    if (HAS_MIN(type)) _mm256_storeu_si256((__m256i *)(s + 32), _mm512_cvtps_ph(mn, _MM_FROUND_TO_NEAREST_INT));
}

size_t rk_packed_row_size_avx512(int type, int K) {
    if (type != RK_Q4_0 && type != RK_Q4_1 && type != RK_Q5_0 && type != RK_Q5_1 && type != RK_Q8_0 && !IS_K(type)) return 0;
    const int ge = GELEM(type);
    return (size_t)((K + ge - 1) / ge) * pgroup_bytes(type);
}

A512 void rk_pack_rows_avx512(int type, const uint8_t *W, size_t rs, int r0, int r1, int K, uint8_t *dst) {
    const int ge = GELEM(type), gblk = GBLK(type), ng = (K + ge - 1) / ge, nblk = K / (ge / gblk);
    const size_t bb = tbytes(type), gb = pgroup_bytes(type), prs = (size_t)ng * gb;
    _Alignas(64) uint8_t tmp[2 * sizeof(blk_q5_K)];
    for (int r = r0; r < r1; r++)
        for (int g = 0; g < ng; g++) {
            const uint8_t *src = W + (size_t)r * rs + (size_t)g * gblk * bb;
            const int left = nblk - g * gblk;
            if (IS_K(type) && left < gblk) { // a lone last super-block: pad with an all-zero one
                memset(tmp, 0, sizeof tmp);
                memcpy(tmp, src, bb);
                src = tmp;
            }
            pack_group(type, src, left < 16 ? left : 16, dst + (size_t)r * prs + (size_t)g * gb);
        }
}

// ---- 8-lane tail groups (ymm): at most 8 legacy blocks, or the last Q4_K/Q5_K super-block ----

A512 RK_INLINE float hsum8(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

A512 RK_INLINE void transpose4y(const __m256i in[4], __m256i out[4]) {
    const __m256i t0 = _mm256_unpacklo_epi32(in[0], in[1]), t1 = _mm256_unpackhi_epi32(in[0], in[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(in[2], in[3]), t3 = _mm256_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
}

A512 RK_INLINE __m256i load2x16m(const uint8_t *p, size_t stride, int b0, int bstep, int nv) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_maskz_loadu_epi8(b0 < nv ? 0xffff : 0, p)),
                                   _mm_maskz_loadu_epi8(b0 + bstep < nv ? 0xffff : 0, p + stride), 1);
}

// The last nv <= 8 legacy blocks of a row -> w[8] of 32 bytes, lane k = block k (absent ones zero).
A512 RK_INLINE void unpack_legacy8(int type, const uint8_t *p0, int nv, uint8_t *w, __m256 *dw, __m256 *mn) {
    const size_t bb = tbytes(type), qo = lqs(type);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i idx = _mm256_mullo_epi32(lanes, _mm256_set1_epi32((int)bb));
    const __mmask8 valid = _mm256_cmplt_epi32_mask(lanes, _mm256_set1_epi32(nv));
    const __m256i hdr = _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), valid, idx, p0, 1);
    *dw = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(hdr));
    if (HAS_MIN(type)) *mn = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(hdr, 16)));
    if (type == RK_Q8_0) {
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        for (int h = 0; h < 2; h++) {
            __m256i A[4], B[4];
            for (int q = 0; q < 4; q++) A[q] = load2x16m(p0 + q * bb + qo + 16 * h, 4 * bb, q, 4, nv);
            transpose4y(A, B);
            for (int m = 0; m < 4; m++) _mm256_store_si256((__m256i *)(w + 32 * (4 * h + m)), _mm256_xor_si256(B[m], flip));
        }
        return;
    }
    __m256i A[4], B[4];
    for (int q = 0; q < 4; q++) A[q] = load2x16m(p0 + q * bb + qo, 4 * bb, q, 4, nv);
    transpose4y(A, B);
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i W[8];
    for (int m = 0; m < 4; m++) {
        W[m] = _mm256_and_si256(B[m], m4);
        W[m + 4] = _mm256_and_si256(_mm256_srli_epi32(B[m], 4), m4);
    }
    if (FIVE(type)) {
        const __m256i qh = _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), valid, idx, p0 + (HAS_MIN(type) ? 4 : 2), 1);
        const __m256i sixteen = _mm256_set1_epi8(16);
        const __m256i ctrl0 = _mm256_set_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0, 0x0c0c0c0c, 0x08080808, 0x04040404, 0);
        const __m256i bits_lo = _mm256_set1_epi32(0x08040201), bits_hi = _mm256_set1_epi32((int)0x80402010u);
RK_UNROLL
        for (int m = 0; m < 8; m++) {
            const __m256i sel = _mm256_shuffle_epi8(qh, _mm256_add_epi8(ctrl0, _mm256_set1_epi8((char)(m >> 1))));
            W[m] = _mm256_mask_add_epi8(W[m], _mm256_test_epi8_mask(sel, (m & 1) ? bits_hi : bits_lo), W[m], sixteen);
        }
    }
    for (int m = 0; m < 8; m++) _mm256_store_si256((__m256i *)(w + 32 * m), W[m]);
}

// The last Q4_K/Q5_K super-block alone -> w[8] of 32 bytes, lane order LANE_Q45K[0..7].
A512 RK_INLINE void unpack_q45k8(int type, const uint8_t *p0, uint8_t *w, __m256 *dw, __m256 *mn) {
    const size_t qo = type == RK_Q5_K ? 48 : 16;
    const __m512i cnt = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0), m4 = _mm512_set1_epi8(15);
    __m512i N[4], U[4];
    for (int k = 0; k < 4; k++) {
        const __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p0 + qo + 32 * k)));
        N[k] = _mm512_and_si512(_mm512_srlv_epi64(z, cnt), m4);
    }
    transpose4(N, U);
    __m256i W[8];
    for (int m = 0; m < 4; m++) {
        W[m] = _mm512_castsi512_si256(_mm512_shuffle_i64x2(U[m], U[m], 0x08));
        W[m + 4] = _mm512_castsi512_si256(_mm512_shuffle_i64x2(U[m], U[m], 0x0D));
    }
    if (type == RK_Q5_K) {
        const __m256i Q = _mm256_loadu_si256((const __m256i *)(p0 + 16));
        const __m256i J = _mm256_set_epi32((int)0x80808080, 0x20202020, 0x08080808, 0x02020202, 0x40404040, 0x10101010,
                                           0x04040404, 0x01010101);
        const __m256i sixteen = _mm256_set1_epi8(16);
RK_UNROLL
        for (int m = 0; m < 8; m++) {
            const __m256i sel = _mm256_permutexvar_epi32(_mm256_set1_epi32(m), Q);
            W[m] = _mm256_mask_add_epi8(W[m], _mm256_test_epi8_mask(sel, J), W[m], sixteen);
        }
    }
    for (int m = 0; m < 8; m++) _mm256_store_si256((__m256i *)(w + 32 * m), W[m]);
    const uint8_t *s = p0 + 4;
    const uint32_t a0 = rk_rd32(s), a1 = rk_rd32(s + 4), a2 = rk_rd32(s + 8);
    const __m128i sm = _mm_set_epi32((int)(((a2 >> 4) & 0x0f0f0f0fu) | ((a1 >> 2) & 0x30303030u)), (int)(a1 & 0x3f3f3f3fu),
                                     (int)((a2 & 0x0f0f0f0fu) | ((a0 >> 2) & 0x30303030u)), (int)(a0 & 0x3f3f3f3fu));
    // [sc0..7, m0..7] -> lane order, scales in bytes 0..7 and mins in 8..15
    const __m128i o = _mm_shuffle_epi8(sm, _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15));
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)rk_rd32(p0)));
    *dw = _mm256_mul_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(o)));
    *mn = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                                           _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(o, o)))));
}

A512 RK_INLINE void gunpack(int type, const uint8_t *p0, int nv, uint8_t *w, __m512 *dw, __m512 *mn) {
    if (type == RK_Q6_K) unpack_q6k(p0, w, dw);
    else if (IS_K(type)) unpack_q45k(type, p0, w, dw, mn);
    else unpack_legacy(type, p0, nv, w, dw, mn);
}

#define PF_AHEAD 32768
A512 RK_INLINE void gtile_any(int type, int pk, const uint8_t *W, size_t rs, int r0, int RM, int K, const rk_act *a,
                              int t0, int RN, float *y, int ldy) {
    const size_t bb = tbytes(type), pgb = pgroup_bytes(type);
    const int nm = NM(type), ge = GELEM(type), gblk = GBLK(type);
    const size_t gq = 64 * (size_t)nm; // quant bytes per group; then d, s, init (64 bytes each)
    const int nfull = K / ge, nblk = K / (ge / gblk);
    const int rem = K / (4 * nm) - nfull * 16; // activation blocks in the last, partial group
    const int tail8 = !pk && rem > 0 && rem <= 8 && type != RK_Q6_K;
    const uint8_t *xg[8], *wr[4];
    for (int j = 0; j < RN; j++) xg[j] = a->base + (size_t)(t0 + j) * a->stride;
    for (int i = 0; i < RM; i++) wr[i] = W + (size_t)(r0 + i) * rs;
    _Alignas(64) uint8_t wbuf[4][512];
    const uint8_t *wq[4];
    _Alignas(64) float acc[4][8][16];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) _mm512_store_ps(acc[i][j], _mm512_setzero_ps());
    for (int g = 0; g < nfull + (rem > 0 && !tail8); g++) {
        __m512 dw[4], mn[4];
        const int left = nblk - g * gblk; // a partial group (legacy only) reads just `left` blocks
        for (int i = 0; i < RM; i++) {
            wq[i] = wbuf[i];
            if (pk) {
                const uint8_t *src = wr[i] + (size_t)g * pgb;
                // With several tokens each row is compute-heavy enough that the hardware prefetcher
                // falls behind (one token is better left to it): ask for the stream PF_AHEAD bytes on,
                // into L2 only. Into L1 (T0), the prefetches wait on the few L1 miss buffers and the
                // compute waits with them: 4 tokens of Q5_0 cost 1.5x one token that way, 1.05x this way.
                if (RN > 1)
                    for (size_t o = 0; o < pgb; o += 64) _mm_prefetch((const char *)src + PF_AHEAD + o, _MM_HINT_T1);
                if (type == RK_Q8_0) { // already in place
                    wq[i] = src;
                    dw[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + 512)));
                } else {
                    punpack(type, src, wbuf[i], &dw[i], &mn[i]);
                }
                continue;
            }
            const uint8_t *src = wr[i] + (size_t)g * gblk * bb;
            if (left < gblk) gunpack(type, src, left, wbuf[i], &dw[i], &mn[i]);
            else gunpack(type, src, 16, wbuf[i], &dw[i], &mn[i]);
        }
        __m512i isum[4][8];
        for (int j = 0; j < RN; j++) {
            const __m512i init = HAS_OFF(type) ? _mm512_load_si512(xg[j] + gq + 128) : _mm512_setzero_si512();
            for (int i = 0; i < RM; i++) isum[i][j] = init;
        }
        for (int m = 0; m < nm; m++) {
            __m512i wm[4];
            for (int i = 0; i < RM; i++) wm[i] = _mm512_loadu_si512(wq[i] + 64 * m);
            for (int j = 0; j < RN; j++) {
                const __m512i xm = _mm512_load_si512(xg[j] + 64 * m);
                for (int i = 0; i < RM; i++) isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], wm[i], xm);
            }
        }
        for (int j = 0; j < RN; j++) {
            const __m512 dx = _mm512_load_ps((const float *)(xg[j] + gq));
            for (int i = 0; i < RM; i++) {
                __m512 v = _mm512_fmadd_ps(_mm512_mul_ps(dw[i], dx), _mm512_cvtepi32_ps(isum[i][j]), _mm512_load_ps(acc[i][j]));
                if (HAS_MIN(type)) v = _mm512_fmadd_ps(mn[i], _mm512_load_ps((const float *)(xg[j] + gq + 64)), v);
                _mm512_store_ps(acc[i][j], v);
            }
            xg[j] += gq + 192;
        }
    }
    __m256 tv[4][8];
    if (tail8) { // 8-lane group: 32-byte vectors, then d, s, init (32 bytes each)
        __m256 dw[4], mn[4];
        for (int i = 0; i < RM; i++) {
            const uint8_t *src = wr[i] + (size_t)nfull * gblk * bb;
            if (IS_K(type)) unpack_q45k8(type, src, wbuf[i], &dw[i], &mn[i]);
            else unpack_legacy8(type, src, rem, wbuf[i], &dw[i], &mn[i]);
        }
        __m256i isum[4][8];
        for (int j = 0; j < RN; j++) {
            const __m256i init = HAS_OFF(type) ? _mm256_load_si256((const __m256i *)(xg[j] + 256 + 64)) : _mm256_setzero_si256();
            for (int i = 0; i < RM; i++) isum[i][j] = init;
        }
        for (int m = 0; m < 8; m++) {
            __m256i wm[4];
            for (int i = 0; i < RM; i++) wm[i] = _mm256_load_si256((const __m256i *)(wbuf[i] + 32 * m));
            for (int j = 0; j < RN; j++) {
                const __m256i xm = _mm256_load_si256((const __m256i *)(xg[j] + 32 * m));
                for (int i = 0; i < RM; i++) isum[i][j] = _mm256_dpbusd_epi32(isum[i][j], wm[i], xm);
            }
        }
        for (int j = 0; j < RN; j++) {
            const __m256 dx = _mm256_load_ps((const float *)(xg[j] + 256));
            for (int i = 0; i < RM; i++) {
                __m256 v = _mm256_mul_ps(_mm256_mul_ps(dw[i], dx), _mm256_cvtepi32_ps(isum[i][j]));
                if (HAS_MIN(type)) v = _mm256_fmadd_ps(mn[i], _mm256_load_ps((const float *)(xg[j] + 256 + 32)), v);
                tv[i][j] = v;
            }
        }
    }
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) {
            float v = hsum16(_mm512_load_ps(acc[i][j]));
            if (tail8) v += hsum8(tv[i][j]);
            y[(size_t)(t0 + j) * ldy + r0 + i] = v;
        }
}

#define gtile(type, ...) gtile_any(type, 0, __VA_ARGS__)
#define ptile(type, ...) gtile_any(type, 1, __VA_ARGS__)

// ================================ float weights ==============================================

A512 RK_INLINE __m512 fload(int type, const uint8_t *row, int k, __mmask16 m) {
    if (type == RK_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + k);
    const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k);
    if (type == RK_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

A512 RK_INLINE void ftile(int type, const uint8_t *W, size_t rs, int r0, int RM, int K, const rk_act *a, int t0,
                          int RN, float *y, int ldy) {
    __m512 acc[4][4];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps();
    const float *x = (const float *)a->base;
    for (int k = 0; k < K; k += 16) {
        const __mmask16 m = (K - k >= 16) ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512 w[4];
        for (int i = 0; i < RM; i++) w[i] = fload(type, W + (size_t)(r0 + i) * rs, k, m);
        for (int j = 0; j < RN; j++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + (size_t)(t0 + j) * K + k);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm512_fmadd_ps(w[i], xv, acc[i][j]);
        }
    }
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) y[(size_t)(t0 + j) * ldy + r0 + i] = hsum16(acc[i][j]);
}

// ================================ drivers ====================================================

// Tokens in groups of RNB (then 4, 2, 1); within a group, rows in groups of RMB (then 1). Single
// tokens go one row at a time: one sequential stream per thread is what the hardware prefetcher
// follows best (interleaving rows halves the DRAM bandwidth we get).
#define DRIVER(name, TILE, TYPE, RMB, RNB)                                                                     \
    A512 static void name(const uint8_t *W, size_t rs, int r0, int r1, int K, const rk_act *a, int t0, int t1, \
                          float *y, int ldy) {                                                                 \
        SMALL_T_BY_ROW(TILE, TYPE, RNB, 3)                                                                     \
        int t = t0;                                                                                            \
        for (; t + RNB <= t1; t += RNB) {                                                                      \
            int r = r0;                                                                                        \
            for (; r + RMB <= r1; r += RMB) TILE(TYPE, W, rs, r, RMB, K, a, t, RNB, y, ldy);                   \
            for (; r < r1; r++) TILE(TYPE, W, rs, r, 1, K, a, t, RNB, y, ldy);                                 \
        }                                                                                                      \
        if (RNB > 4 && t + 4 <= t1) {                                                                          \
            int r = r0;                                                                                        \
            for (; r + RMB <= r1; r += RMB) TILE(TYPE, W, rs, r, RMB, K, a, t, 4, y, ldy);                     \
            for (; r < r1; r++) TILE(TYPE, W, rs, r, 1, K, a, t, 4, y, ldy);                                   \
            t += 4;                                                                                            \
        }                                                                                                      \
        for (; t + 2 <= t1; t += 2) {                                                                          \
            int r = r0;                                                                                        \
            for (; r + RMB <= r1; r += RMB) TILE(TYPE, W, rs, r, RMB, K, a, t, 2, y, ldy);                     \
            for (; r < r1; r++) TILE(TYPE, W, rs, r, 1, K, a, t, 2, y, ldy);                                   \
        }                                                                                                      \
        for (; t < t1; t++)                                                                                    \
            for (int r = r0; r < r1; r++) TILE(TYPE, W, rs, r, 1, K, a, t, 1, y, ldy);                         \
    }

DRIVER(mm_q4_0, gtile, RK_Q4_0, 2, 8)
DRIVER(mm_q4_1, gtile, RK_Q4_1, 2, 8)
DRIVER(mm_q5_0, gtile, RK_Q5_0, 2, 8)
DRIVER(mm_q5_1, gtile, RK_Q5_1, 2, 8)
DRIVER(mm_q8_0, gtile, RK_Q8_0, 2, 8)
DRIVER(mm_q4_k, gtile, RK_Q4_K, 2, 8)
DRIVER(mm_q5_k, gtile, RK_Q5_K, 2, 8)
DRIVER(mm_q6_k, gtile, RK_Q6_K, 2, 8)
DRIVER(pm_q4_0, ptile, RK_Q4_0, 2, 8)
DRIVER(pm_q4_1, ptile, RK_Q4_1, 2, 8)
DRIVER(pm_q5_0, ptile, RK_Q5_0, 2, 8)
DRIVER(pm_q5_1, ptile, RK_Q5_1, 2, 8)
DRIVER(pm_q8_0, ptile, RK_Q8_0, 2, 8)
DRIVER(pm_q4_k, ptile, RK_Q4_K, 2, 8)
DRIVER(pm_q5_k, ptile, RK_Q5_K, 2, 8)
DRIVER(pm_q6_k, ptile, RK_Q6_K, 2, 8)
DRIVER(mm_f32, ftile, RK_F32, 4, 4)
DRIVER(mm_f16, ftile, RK_F16, 4, 4)
DRIVER(mm_bf16, ftile, RK_BF16, 4, 4)

int rk_kernel_avx512(int type, rk_kernel *k) {
    k->G = 16;
    k->BE = 32;
    k->off = 0;
    k->lane = LANE_T16;
    k->lane8 = LANE_ID8;
    k->act = ACT_GRP;
    k->by_row = 0;
    k->halves = 0;
    switch (type) {
    case RK_Q4_0: k->fn = mm_q4_0; k->off = 8; return 1;
    case RK_Q4_1: k->fn = mm_q4_1; return 1;
    case RK_Q5_0: k->fn = mm_q5_0; k->off = 16; return 1;
    case RK_Q5_1: k->fn = mm_q5_1; return 1;
    case RK_Q8_0: k->fn = mm_q8_0; k->off = 128; return 1;
    case RK_Q4_K: k->fn = mm_q4_k; k->lane = k->lane8 = LANE_Q45K; return 1;
    case RK_Q5_K: k->fn = mm_q5_k; k->lane = k->lane8 = LANE_Q45K; return 1;
    case RK_Q6_K: k->fn = mm_q6_k; k->BE = 16; k->off = 32; k->lane8 = NULL; return 1;
    case RK_F32: k->fn = mm_f32; k->act = ACT_NONE; return 1;
    case RK_F16: k->fn = mm_f16; k->act = ACT_NONE; return 1;
    case RK_BF16: k->fn = mm_bf16; k->act = ACT_NONE; return 1;
    default: return 0;
    }
}

// Kernels over rk_pack's layout: the activations of a row's last group are a zero-padded full group.
int rk_kernel_avx512_packed(int type, rk_kernel *k) {
    if (!rk_kernel_avx512(type, k) || k->act != ACT_GRP) return 0;
    k->lane8 = NULL;
    switch (type) {
    case RK_Q4_0: k->fn = pm_q4_0; return 1;
    case RK_Q4_1: k->fn = pm_q4_1; return 1;
    case RK_Q5_0: k->fn = pm_q5_0; return 1;
    case RK_Q5_1: k->fn = pm_q5_1; return 1;
    case RK_Q8_0: k->fn = pm_q8_0; return 1;
    case RK_Q4_K: k->fn = pm_q4_k; return 1;
    case RK_Q5_K: k->fn = pm_q5_k; return 1;
    case RK_Q6_K: k->fn = pm_q6_k; return 1;
    default: return 0;
    }
}

#else
int rk_kernel_avx512(int type, rk_kernel *k) { (void)type; (void)k; return 0; }
int rk_kernel_avx512_packed(int type, rk_kernel *k) { (void)type; (void)k; return 0; }
size_t rk_packed_row_size_avx512(int type, int K) { (void)type; (void)K; return 0; }
void rk_pack_rows_avx512(int type, const uint8_t *W, size_t rs, int r0, int r1, int K, uint8_t *dst) {
    (void)type; (void)W; (void)rs; (void)r0; (void)r1; (void)K; (void)dst;
}
#endif
