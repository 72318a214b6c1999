// AVX2 + FMA tile kernels (Zen 3 and older Intel). Same structure as dot_avx512.c: one
// always-inline tile body per type, instantiated for several (rows x tokens) shapes, so the
// per-(row, token) arithmetic does not depend on the shape.
//
// Legacy blocks: 8 blocks interleaved per group (see ACT_GRP in internal.h), one block per int32
// lane; Q4_K/Q5_K the same way, a super-block's 8 sub-blocks as one group. Those types also have
// a packed form (rk_pack), the group stored as unpacking leaves it. Q6_K (activations as Q8_K-like
// 256-blocks): maddubs, then vpmaddwd with the sub-block scale, int32 sums over the 256-block.
#include "internal.h"

#if RK_X86
RK_NO_CONTRACT

#define A2 RK_AVX2

A2 RK_INLINE float hsum8(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

// ============================== legacy 32-element blocks ====================================
// Unsigned weights meet signed activations; products of 4 dword columns (8 for 4-bit weights) are
// summed in int16 before one vpmaddwd (|sum| <= 4*2*31*127, 8*2*15*127 < 2^15). Q8_0 uses the sign
// trick (|w| x sign(x, w)), as its |w| reaches 128 and vpmaddubsw would saturate.

static inline size_t lbytes(int type) {
    switch (type) {
    case RK_Q4_0: return sizeof(blk_q4_0);
    case RK_Q4_1: return sizeof(blk_q4_1);
    case RK_Q5_0: return sizeof(blk_q5_0);
    case RK_Q5_1: return sizeof(blk_q5_1);
    case RK_Q4_K: return sizeof(blk_q4_K);
    case RK_Q5_K: return sizeof(blk_q5_K);
    default: return sizeof(blk_q8_0);
    }
}
#define IS_K45(type) ((type) == RK_Q4_K || (type) == RK_Q5_K)
#define HAS_MIN(type) ((type) == RK_Q4_1 || (type) == RK_Q5_1 || IS_K45(type))
#define FIVE(type) ((type) == RK_Q5_0 || (type) == RK_Q5_1)
// Activation scales per 16-element half block for the legacy types (their weights' blocks are 32,
// and llama.cpp's Q8_0/Q8_1 activations are as fine); Q4_K/Q5_K keep one per 32, still finer than
// llama.cpp's Q8_K (256) and cheaper per token (one thread, 2048x1536 Q4_K, 8 tokens: 0.37 ->
// 0.32 ms). Relay's mean KL against llama.cpp's: scripts/fidelity.sh, README.
#define HALVES(type) (!IS_K45(type))
static inline size_t lqs(int type) { return type == RK_Q8_0 ? 2 : (HAS_MIN(type) ? 4 : 2) + (FIVE(type) ? 4 : 0); }

A2 RK_INLINE void transpose4(const __m256i in[4], __m256i out[4]) {
    const __m256i t0 = _mm256_unpacklo_epi32(in[0], in[1]), t1 = _mm256_unpackhi_epi32(in[0], in[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(in[2], in[3]), t3 = _mm256_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
}

// [16 bytes at p | 16 bytes at p + bb], reading only blocks b0, b0 + 1 below nv (others zero).
A2 RK_INLINE __m256i load2x16(const uint8_t *p, size_t bb, int b0, int nv) {
    if (nv >= 8)
        return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                       _mm_loadu_si128((const __m128i *)(p + bb)), 1);
    const __m128i on = _mm_set1_epi32(-1), off = _mm_setzero_si128();
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_maskload_epi32((const int *)p, b0 < nv ? on : off)),
                                   _mm_maskload_epi32((const int *)(p + bb), b0 + 1 < nv ? on : off), 1);
}

// 8x8 dword transpose: out[m] lane k = dword m of in[k].
A2 RK_INLINE void transpose8(const __m256i r[8], __m256i o[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int m = 0; m < 4; m++) {
        o[m] = _mm256_permute2x128_si256(u[m], u[m + 4], 0x20);
        o[m + 4] = _mm256_permute2x128_si256(u[m], u[m + 4], 0x31);
    }
}

// The 16-byte head of a Q4_K / Q5_K super-block (d, dmin, 6-bit scales) -> d*sc, -dmin*m by lane.
A2 RK_INLINE void q45k_scales(const uint8_t *p0, __m256 *dw, __m256 *mn) {
    const uint8_t *s = p0 + 4;
    const uint32_t a0 = rk_rd32(s), a1 = rk_rd32(s + 4), a2 = rk_rd32(s + 8);
    const __m128i sc = _mm_set_epi32(0, 0, (int)((a2 & 0x0f0f0f0fu) | ((a0 >> 2) & 0x30303030u)), (int)(a0 & 0x3f3f3f3fu));
    const __m128i mi = _mm_set_epi32(0, 0, (int)(((a2 >> 4) & 0x0f0f0f0fu) | ((a1 >> 2) & 0x30303030u)), (int)(a1 & 0x3f3f3f3fu));
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)rk_rd32(p0)));
    *dw = _mm256_mul_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc)));
    *mn = _mm256_sub_ps(_mm256_setzero_ps(),
                        _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mi))));
}

// Q4_K / Q5_K: one super-block -> w[8] (lane k = sub-block k), scales d*sc and mins -dmin*m.
A2 RK_INLINE void unpack_q45k(int type, const uint8_t *p0, uint8_t *w, __m256 *dw, __m256 *mn) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const uint8_t *qs = p0 + (type == RK_Q5_K ? 48 : 16);
    __m256i R[8], Wv[8];
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
        R[2 * c] = _mm256_and_si256(q, m4);
        R[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
    if (type == RK_Q5_K) { // element l of sub-block j: bit j of qh[l]
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(p0 + 16)), b4 = _mm256_set1_epi8(16);
        for (int j = 0; j < 8; j++) {
            const __m256i hb = (j <= 4) ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4);
            R[j] = _mm256_or_si256(R[j], _mm256_and_si256(hb, b4));
        }
    }
    transpose8(R, Wv);
    for (int m = 0; m < 8; m++) _mm256_store_si256((__m256i *)(w + 32 * m), Wv[m]);
    q45k_scales(p0, dw, mn);
}

// Low 16 bits of each dword of g, as 8 fp16 -> 8 floats.
A2 RK_INLINE __m256 half_lo(__m256i g) {
    const __m256i lo = _mm256_and_si256(g, _mm256_set1_epi32(0xffff));
    return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1)));
}

// Unpacks 8 consecutive blocks (nv of them present; the rest read as zero) into w (interleaved;
// for Q8_0: |w| then w), scales, mins.
A2 RK_INLINE void gunpack(int type, const uint8_t *p0, int nv, uint8_t *w, __m256 *dw, __m256 *mn) {
    if (IS_K45(type)) {
        unpack_q45k(type, p0, w, dw, mn);
        return;
    }
    const size_t bb = lbytes(type), qo = lqs(type);
    const __m256i blocks = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i idx = _mm256_mullo_epi32(blocks, _mm256_set1_epi32((int)bb));
    const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), blocks);
    const __m256i hdr = nv >= 8 ? _mm256_i32gather_epi32((const int *)p0, idx, 1)
                                : _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), (const int *)p0, idx, valid, 1);
    *dw = half_lo(hdr);
    if (HAS_MIN(type)) *mn = half_lo(_mm256_srli_epi32(hdr, 16));
    if (type == RK_Q8_0) {
        for (int h = 0; h < 2; h++) {
            __m256i A[4], B[4];
            for (int q = 0; q < 4; q++) A[q] = load2x16(p0 + 2 * q * bb + qo + 16 * h, bb, 2 * q, nv);
            transpose4(A, B);
            for (int m = 0; m < 4; m++) {
                _mm256_store_si256((__m256i *)(w + 32 * (4 * h + m)), _mm256_sign_epi8(B[m], B[m]));
                _mm256_store_si256((__m256i *)(w + 256 + 32 * (4 * h + m)), B[m]);
            }
        }
        return;
    }
    __m256i A[4], B[4];
    for (int q = 0; q < 4; q++) A[q] = load2x16(p0 + 2 * q * bb + qo, bb, 2 * q, nv);
    transpose4(A, B);
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i W[8];
    for (int m = 0; m < 4; m++) {
        W[m] = _mm256_and_si256(B[m], m4);
        W[m + 4] = _mm256_and_si256(_mm256_srli_epi32(B[m], 4), m4);
    }
    if (FIVE(type)) {
        const int *qhp = (const int *)(p0 + (HAS_MIN(type) ? 4 : 2));
        const __m256i qh = nv >= 8 ? _mm256_i32gather_epi32(qhp, idx, 1) : _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), qhp, idx, valid, 1);
        const __m256i sixteen = _mm256_set1_epi8(16);
        const __m256i ctrl0 = _mm256_set_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0, 0x0c0c0c0c, 0x08080808, 0x04040404, 0);
        const __m256i bits_lo = _mm256_set1_epi32(0x08040201), bits_hi = _mm256_set1_epi32((int)0x80402010u);
RK_UNROLL
        for (int m = 0; m < 8; m++) {
            const __m256i sel = _mm256_shuffle_epi8(qh, _mm256_add_epi8(ctrl0, _mm256_set1_epi8((char)(m >> 1))));
            const __m256i bits = (m & 1) ? bits_hi : bits_lo;
            const __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(sel, bits), bits);
            W[m] = _mm256_or_si256(W[m], _mm256_and_si256(on, sixteen));
        }
    }
    for (int m = 0; m < 8; m++) _mm256_store_si256((__m256i *)(w + 32 * m), W[m]);
}

// ---- packed weights (rk_pack) ------------------------------------------------------------------
// A group (8 legacy blocks, or one Q4_K/Q5_K super-block) stored as gunpack leaves it, so that a
// product reads it with loads and masks: the gathers, transposes and stores of unpacking are paid
// once at load instead of once per row per call. Per group:
//   4/5-bit types: nibbles[128] (byte b of vector m < 4: w[m] | w[m+4] << 4), for 5-bit types
//     high[32] (bit m of byte b: the 5th bit of w[m] byte b), then Q4_K/Q5_K the file's 16-byte
//     head (d, dmin, scales); legacy d[8] (fp16, lane order), Q4_1/Q5_1 then m[8]
//   Q8_0: w[256] (signed, lane order), d[8] (fp16)
// A group takes as many bytes as in the file, and a row's partial last legacy group stays as in
// the file (it is unpacked per call, as unpacked rows are), so a packed row is the file's row.
static inline size_t phead(int type) {
    return type == RK_Q8_0 ? 256 : 128 + ((FIVE(type) || type == RK_Q5_K) ? 32 : 0);
}
// Bytes of a group, packed or in the file.
static inline size_t group_bytes(int type) { return (IS_K45(type) ? 1 : 8) * lbytes(type); }

A2 RK_INLINE void pscales(int type, const uint8_t *p, __m256 *dw, __m256 *mn) {
    const uint8_t *s = p + phead(type);
    if (IS_K45(type)) {
        q45k_scales(s, dw, mn);
        return;
    }
    *dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)s));
    if (HAS_MIN(type)) *mn = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 16)));
}

// Vector m of a packed group: what gunpack stores at w + 32 m (for Q8_0 the signed w).
A2 RK_INLINE __m256i pvec(int type, const uint8_t *p, int m) {
    if (type == RK_Q8_0) return _mm256_loadu_si256((const __m256i *)(p + 32 * m));
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i P = _mm256_loadu_si256((const __m256i *)(p + 32 * (m & 3)));
    __m256i w = m < 4 ? _mm256_and_si256(P, m4) : _mm256_and_si256(_mm256_srli_epi16(P, 4), m4);
    if (FIVE(type) || type == RK_Q5_K) {
        const __m256i H = _mm256_loadu_si256((const __m256i *)(p + 128));
        const __m256i hb = (m <= 4) ? _mm256_slli_epi16(H, 4 - m) : _mm256_srli_epi16(H, m - 4);
        w = _mm256_or_si256(w, _mm256_and_si256(hb, _mm256_set1_epi8(16)));
    }
    return w;
}

// One whole group of the file -> packed.
A2 static void pack_group(int type, const uint8_t *src, uint8_t *dst) {
    _Alignas(64) uint8_t w[512];
    __m256 dw, mn = _mm256_setzero_ps();
    gunpack(type, src, 8, w, &dw, &mn);
    if (type == RK_Q8_0) {
        memcpy(dst, w + 256, 256);
    } else {
        const __m256i m4 = _mm256_set1_epi8(15), b4 = _mm256_set1_epi8(16);
        __m256i W[8], H = _mm256_setzero_si256();
        for (int m = 0; m < 8; m++) W[m] = _mm256_load_si256((const __m256i *)(w + 32 * m));
        for (int c = 0; c < 4; c++)
            _mm256_storeu_si256((__m256i *)(dst + 32 * c),
                                _mm256_or_si256(_mm256_and_si256(W[c], m4), _mm256_slli_epi16(_mm256_and_si256(W[c + 4], m4), 4)));
        if (FIVE(type) || type == RK_Q5_K) { // bit 4 of w[m] -> bit m (pvec's shifts, reversed)
            for (int m = 0; m < 8; m++) {
                const __m256i hb = _mm256_and_si256(W[m], b4);
                H = _mm256_or_si256(H, m <= 4 ? _mm256_srli_epi16(hb, 4 - m) : _mm256_slli_epi16(hb, m - 4));
            }
            _mm256_storeu_si256((__m256i *)(dst + 128), H);
        }
    }
    uint8_t *s = dst + phead(type);
    if (IS_K45(type)) {
        memcpy(s, src, 16);
        return;
    }
    _mm_storeu_si128((__m128i *)s, _mm256_cvtps_ph(dw, _MM_FROUND_TO_NEAREST_INT)); // exact: dw came from fp16
    if (HAS_MIN(type)) _mm_storeu_si128((__m128i *)(s + 16), _mm256_cvtps_ph(mn, _MM_FROUND_TO_NEAREST_INT));
}

static int packable(int type) {
    return type == RK_Q4_0 || type == RK_Q4_1 || type == RK_Q5_0 || type == RK_Q5_1 || type == RK_Q8_0 || IS_K45(type);
}

_Static_assert(128 + 16 == 8 * sizeof(blk_q4_0) && 128 + 32 == 8 * sizeof(blk_q4_1) && 128 + 32 + 16 == 8 * sizeof(blk_q5_0) &&
                   128 + 32 + 32 == 8 * sizeof(blk_q5_1) && 256 + 16 == 8 * sizeof(blk_q8_0) && 128 + 16 == sizeof(blk_q4_K) &&
                   128 + 32 + 16 == sizeof(blk_q5_K), "a packed group takes the file's bytes");

size_t rk_packed_row_size_avx2(int type, int K) { return packable(type) ? rk_row_size(type, K) : 0; }

// Every group goes to its own offset in the file (rs: the file's row size, also the packed one's).
A2 void rk_pack_rows_avx2(int type, const uint8_t *W, size_t rs, int r0, int r1, int K, uint8_t *dst) {
    const int nb = K / QK;
    const size_t gb = group_bytes(type);
    for (int r = r0; r < r1; r++)
        for (int b = 0, g = 0; b < nb; b += 8, g++) {
            const size_t at = (size_t)r * rs + (size_t)g * gb;
            if (nb - b < 8) memcpy(dst + at, W + at, (size_t)(nb - b) * lbytes(type));
            else pack_group(type, W + at, dst + at);
        }
}

// Group b (blocks b..b+7) of RM rows for RN tokens into acc, from the rows unpacked into wbuf
// (inbuf) or read packed.
A2 RK_INLINE void lgroup(int type, int inbuf, int b, int nb, const uint8_t *const *wr, int RM, int RN, const uint8_t **xg,
                         float acc[4][8][8], uint8_t wbuf[4][512]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 dw[4], mn[4];
    const uint8_t *pg[4];
    const int nv = nb - b < 8 ? nb - b : 8;
    for (int i = 0; i < RM; i++) {
        // Packed or not, a group starts at the same offset (packed groups keep the file's size).
        const uint8_t *g = wr[i] + (size_t)(b / 8) * group_bytes(type);
        if (inbuf) {
            gunpack(type, g, nv, wbuf[i], &dw[i], &mn[i]);
        } else {
            pg[i] = g;
            // As on AVX-512 (dot_avx512.c): with several tokens the stream is asked for 32 KiB
            // on, into L2; one token is left to the hardware prefetcher.
            if (RN >= 2)
                for (size_t o = 0; o < group_bytes(type); o += 64) _mm_prefetch((const char *)g + 32768 + o, _MM_HINT_T1);
            pscales(type, g, &dw[i], &mn[i]);
        }
    }
    // Legacy types: half h of every block (elements 16h..16h+15) has its own activation scale
    // (halves); Q4_K/Q5_K: one scale per block of 32 (see rk_kernel_avx2).
    const int NH = HALVES(type) ? 2 : 1;
    const size_t s_at = 256 + 32 * (size_t)NH; // the group's layout: quants, d[NH][8], s[8], init[NH][8]
RK_UNROLL
    for (int h = 0; h < NH; h++) {
        const int m0 = 8 / NH * h, m1 = m0 + 8 / NH;
        __m256i isum[4][8];
        for (int j = 0; j < RN; j++) {
            const __m256i init = HAS_MIN(type) ? _mm256_setzero_si256()
                                               : _mm256_load_si256((const __m256i *)(xg[j] + s_at + 32 + 32 * h));
            for (int i = 0; i < RM; i++) isum[i][j] = init;
        }
        if (type == RK_Q8_0) {
RK_UNROLL
            for (int m = m0; m < m1; m++) {
                __m256i aw[4], sw[4];
                for (int i = 0; i < RM; i++) {
                    sw[i] = inbuf ? _mm256_load_si256((const __m256i *)(wbuf[i] + 256 + 32 * m)) : pvec(type, pg[i], m);
                    aw[i] = inbuf ? _mm256_load_si256((const __m256i *)(wbuf[i] + 32 * m)) : _mm256_sign_epi8(sw[i], sw[i]);
                }
                for (int j = 0; j < RN; j++) {
                    const __m256i xm = _mm256_load_si256((const __m256i *)(xg[j] + 32 * m));
                    for (int i = 0; i < RM; i++)
                        isum[i][j] = _mm256_add_epi32(
                            isum[i][j], _mm256_madd_epi16(_mm256_maddubs_epi16(aw[i], _mm256_sign_epi8(xm, sw[i])), ones));
                }
            }
        } else {
            const int I16 = (type == RK_Q4_0 || type == RK_Q4_1 || type == RK_Q4_K) ? 8 : 4;
            __m256i s16[4][8];
RK_UNROLL
            for (int m = m0; m < m1; m++) {
                __m256i wm[4];
                for (int i = 0; i < RM; i++)
                    wm[i] = inbuf ? _mm256_load_si256((const __m256i *)(wbuf[i] + 32 * m)) : pvec(type, pg[i], m);
                for (int j = 0; j < RN; j++) {
                    const __m256i xm = _mm256_load_si256((const __m256i *)(xg[j] + 32 * m));
                    for (int i = 0; i < RM; i++) {
                        const __m256i p = _mm256_maddubs_epi16(wm[i], xm);
                        s16[i][j] = ((m - m0) % I16 == 0) ? p : _mm256_add_epi16(s16[i][j], p);
                    }
                }
                if ((m - m0) % I16 == I16 - 1 || m == m1 - 1)
                    for (int i = 0; i < RM; i++)
                        for (int j = 0; j < RN; j++) isum[i][j] = _mm256_add_epi32(isum[i][j], _mm256_madd_epi16(s16[i][j], ones));
            }
        }
        for (int j = 0; j < RN; j++) {
            const __m256 dx = _mm256_load_ps((const float *)(xg[j] + 256 + 32 * h));
            for (int i = 0; i < RM; i++)
                _mm256_store_ps(acc[i][j], _mm256_fmadd_ps(_mm256_mul_ps(dw[i], dx), _mm256_cvtepi32_ps(isum[i][j]),
                                                           _mm256_load_ps(acc[i][j])));
        }
    }
    for (int j = 0; j < RN; j++) {
        if (HAS_MIN(type))
            for (int i = 0; i < RM; i++)
                _mm256_store_ps(acc[i][j], _mm256_fmadd_ps(mn[i], _mm256_load_ps((const float *)(xg[j] + s_at)),
                                                           _mm256_load_ps(acc[i][j])));
        xg[j] += s_at + 32 + 32 * (size_t)NH;
    }
}

A2 RK_INLINE void ltile_any(int type, int packed, const uint8_t *W, size_t rs, int r0, int RM, int K, const rk_act *a, int t0,
                            int RN, float *y, int ldy) {
    const int nb = K / QK;
    const uint8_t *xg[8], *wr[4];
    for (int j = 0; j < RN; j++) xg[j] = a->base + (size_t)(t0 + j) * a->stride;
    for (int i = 0; i < RM; i++) wr[i] = W + (size_t)(r0 + i) * rs;
    _Alignas(64) uint8_t wbuf[4][512];
    _Alignas(64) float acc[4][8][8];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) _mm256_store_ps(acc[i][j], _mm256_setzero_ps());
    // The last group of a packed row is in the file's format when it is partial (legacy types).
    const int nfull = packed ? nb / 8 * 8 : nb;
    for (int b = 0; b < nfull; b += 8) lgroup(type, !packed, b, nb, wr, RM, RN, xg, acc, wbuf);
    if (nfull < nb) lgroup(type, 1, nfull, nb, wr, RM, RN, xg, acc, wbuf);
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) y[(size_t)(t0 + j) * ldy + r0 + i] = hsum8(_mm256_load_ps(acc[i][j]));
}

A2 RK_INLINE void ltile(int type, const uint8_t *W, size_t rs, int r0, int RM, int K, const rk_act *a, int t0, int RN,
                        float *y, int ldy) {
    ltile_any(type, 0, W, rs, r0, RM, K, a, t0, RN, y, ldy);
}
A2 RK_INLINE void ptile(int type, const uint8_t *W, size_t rs, int r0, int RM, int K, const rk_act *a, int t0, int RN,
                        float *y, int ldy) {
    ltile_any(type, 1, W, rs, r0, RM, K, a, t0, RN, y, ldy);
}

// ================================ Q6_K =======================================================

typedef struct {
    __m128i sc8;  // int8 scales
    __m256i sc16; // the scales as int16 (for the offset correction)
    __m256 d;
} krow;

A2 RK_INLINE void kprep(const uint8_t *blk, krow *o) {
    const blk_q6_K *x = (const blk_q6_K *)blk;
    o->sc8 = _mm_loadu_si128((const __m128i *)x->scales);
    o->sc16 = _mm256_cvtepi8_epi16(o->sc8);
    o->d = _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(x->d)));
}

// int16 scales for 32-element piece e (0..7) of a super-block: per 16, [s_2e x8, s_2e+1 x8].
A2 RK_INLINE __m256i kscale(const krow *r, int e) {
    const char a = (char)(2 * e), b = (char)(2 * e + 1);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(r->sc8, _mm_setr_epi8(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b)));
}

// Unsigned quants of the 32-element piece e (0..7) of a super-block.
A2 RK_INLINE __m256i kquants(const uint8_t *blk, int e) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const blk_q6_K *x = (const blk_q6_K *)blk;
    const int h = e >> 2, k = e & 3;
    const __m256i L = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32 * (k & 1)));
    const __m256i H = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
    const __m256i m30 = _mm256_set1_epi8(0x30);
    const __m256i lo = (k < 2) ? _mm256_and_si256(L, m4) : _mm256_and_si256(_mm256_srli_epi16(L, 4), m4);
    __m256i hi;
    switch (k) {
    case 0: hi = _mm256_slli_epi16(H, 4); break;
    case 1: hi = _mm256_slli_epi16(H, 2); break;
    case 2: hi = H; break;
    default: hi = _mm256_srli_epi16(H, 2); break;
    }
    return _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
}

// `type` is always Q6_K; the parameter keeps the drivers' tile signature.
A2 RK_INLINE void ktile(int type, const uint8_t *W, size_t rs, int r0, int RM, int K, const rk_act *a, int t0,
                        int RN, float *y, int ldy) {
    (void)type;
    __m256 acc[4][8];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) acc[i][j] = _mm256_setzero_ps();
    const int nsb = K / QKK;
    for (int sb = 0; sb < nsb; sb++) {
        krow R[4];
        const uint8_t *blk[4];
        for (int i = 0; i < RM; i++) {
            blk[i] = W + (size_t)(r0 + i) * rs + (size_t)sb * sizeof(blk_q6_K);
            kprep(blk[i], &R[i]);
        }
        __m256i isum[4][8];
        for (int i = 0; i < RM; i++)
            for (int j = 0; j < RN; j++) isum[i][j] = _mm256_setzero_si256();
RK_UNROLL
        for (int e = 0; e < 8; e++) {
            __m256i U[4], S[4];
            for (int i = 0; i < RM; i++) {
                U[i] = kquants(blk[i], e);
                S[i] = kscale(&R[i], e);
            }
            for (int j = 0; j < RN; j++) {
                const __m256i X = _mm256_loadu_si256(
                    (const __m256i *)(a->base + (size_t)(t0 + j) * a->stride + (size_t)sb * QKK + 32 * e));
                for (int i = 0; i < RM; i++)
                    isum[i][j] = _mm256_add_epi32(isum[i][j], _mm256_madd_epi16(_mm256_maddubs_epi16(U[i], X), S[i]));
            }
        }
        for (int j = 0; j < RN; j++) {
            const uint8_t *base = a->base + (size_t)(t0 + j) * a->stride;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(base + a->off_s + 32 * (size_t)sb));
            const __m256 dx = _mm256_set1_ps(((const float *)(base + a->off_d))[sb]);
            for (int i = 0; i < RM; i++) { // quants stored +32: subtract 32 * scale * block sums
                const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, R[i].sc16), 5);
                const __m256i s = _mm256_sub_epi32(isum[i][j], corr);
                acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), dx), R[i].d, acc[i][j]);
            }
        }
    }
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) y[(size_t)(t0 + j) * ldy + r0 + i] = hsum8(acc[i][j]);
}

// ================================ float weights ==============================================

A2 RK_INLINE __m256 fload(int type, const uint8_t *row, int k) {
    if (type == RK_F32) return _mm256_loadu_ps((const float *)row + k);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + k));
    if (type == RK_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

A2 RK_INLINE void ftile(int type, const uint8_t *W, size_t rs, int r0, int RM, int K, const rk_act *a, int t0,
                        int RN, float *y, int ldy) {
    __m256 acc[4][4];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) acc[i][j] = _mm256_setzero_ps();
    const float *x = (const float *)a->base;
    const int esz = type == RK_F32 ? 4 : 2;
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 w[4];
        for (int i = 0; i < RM; i++) w[i] = fload(type, W + (size_t)(r0 + i) * rs, k);
        for (int j = 0; j < RN; j++) {
            const __m256 xv = _mm256_loadu_ps(x + (size_t)(t0 + j) * K + k);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm256_fmadd_ps(w[i], xv, acc[i][j]);
        }
    }
    if (k < K) { // tail: zero-padded copies, same lane arithmetic as a full step
        const int n = K - k;
        __m256 w[4];
        for (int i = 0; i < RM; i++) {
            uint8_t tmp[32] = {0};
            memcpy(tmp, W + (size_t)(r0 + i) * rs + (size_t)k * esz, (size_t)n * esz);
            w[i] = fload(type, tmp, 0);
        }
        for (int j = 0; j < RN; j++) {
            float tx[8] = {0};
            memcpy(tx, x + (size_t)(t0 + j) * K + k, (size_t)n * 4);
            const __m256 xv = _mm256_loadu_ps(tx);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm256_fmadd_ps(w[i], xv, acc[i][j]);
        }
    }
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) y[(size_t)(t0 + j) * ldy + r0 + i] = hsum8(acc[i][j]);
}

// ================================ drivers ====================================================

// Every tile goes row by row, its tokens in near-equal groups of at most RNB: with 16 registers, two
// rows at a time spill, and on Qwen 1.5B 9, 16 and 64 positions cost 264-288, 402-439 and
// 1,485-1,601 ms with 2x4 tiles against 184-190, 296-316 and 1,251-1,328 ms row by row (relay bench
// --verify-counts, AVX2 EPYC). Both take up to 8 tokens per unpack (ltile: 5 positions 100-104 ms
// against 112-142 with 3+2). Their inner loops are unrolled by hand (RK_UNROLL): left to the
// compiler, ktile's was not from 4 tokens on, and a 2048x1536 Q6_K product on one thread cost
// 0.47 ms for 5 tokens in 2+2+1 tiles against 0.28 ms as one unrolled 5-wide tile.
#define DRIVER(name, TILE, TYPE, RNB)                                                                          \
    A2 static void name(const uint8_t *W, size_t rs, int r0, int r1, int K, const rk_act *a, int t0, int t1,   \
                        float *y, int ldy) BY_ROW(TILE, TYPE, RNB, 1 << 30)

DRIVER(mm_q4_0, ltile, RK_Q4_0, 8)
DRIVER(mm_q4_1, ltile, RK_Q4_1, 8)
DRIVER(mm_q5_0, ltile, RK_Q5_0, 8)
DRIVER(mm_q5_1, ltile, RK_Q5_1, 8)
DRIVER(mm_q8_0, ltile, RK_Q8_0, 8)
DRIVER(mm_q4_k, ltile, RK_Q4_K, 8)
DRIVER(mm_q5_k, ltile, RK_Q5_K, 8)
DRIVER(mm_q6_k, ktile, RK_Q6_K, 8)
DRIVER(mp_q4_0, ptile, RK_Q4_0, 8)
DRIVER(mp_q4_1, ptile, RK_Q4_1, 8)
DRIVER(mp_q5_0, ptile, RK_Q5_0, 8)
DRIVER(mp_q5_1, ptile, RK_Q5_1, 8)
DRIVER(mp_q8_0, ptile, RK_Q8_0, 8)
DRIVER(mp_q4_k, ptile, RK_Q4_K, 8)
DRIVER(mp_q5_k, ptile, RK_Q5_K, 8)
DRIVER(mm_f32, ftile, RK_F32, 4)
DRIVER(mm_f16, ftile, RK_F16, 4)
DRIVER(mm_bf16, ftile, RK_BF16, 4)

int rk_kernel_avx2(int type, rk_kernel *k) {
    static const uint8_t LANE8[8] = {0, 4, 1, 5, 2, 6, 3, 7}; // block -> lane of the 4x4 transposes
    static const uint8_t LANE_ID[8] = {0, 1, 2, 3, 4, 5, 6, 7}; // 8x8 transpose of Q4_K/Q5_K
    k->G = 8;
    k->BE = 32;
    k->off = 0;
    k->lane = LANE8;
    k->lane8 = NULL;
    k->by_row = 1;
    k->halves = HALVES(type); // the activation layout lgroup reads
    switch (type) {
    case RK_Q4_0: k->fn = mm_q4_0; k->act = ACT_GRP; k->off = 8; return 1;
    case RK_Q4_1: k->fn = mm_q4_1; k->act = ACT_GRP; return 1;
    case RK_Q5_0: k->fn = mm_q5_0; k->act = ACT_GRP; k->off = 16; return 1;
    case RK_Q5_1: k->fn = mm_q5_1; k->act = ACT_GRP; return 1;
    case RK_Q8_0: k->fn = mm_q8_0; k->act = ACT_GRP; return 1;
    case RK_Q4_K: k->fn = mm_q4_k; k->act = ACT_GRP; k->lane = LANE_ID; return 1;
    case RK_Q5_K: k->fn = mm_q5_k; k->act = ACT_GRP; k->lane = LANE_ID; return 1;
    case RK_Q6_K: k->fn = mm_q6_k; k->act = ACT_Q8K; return 1;
    case RK_F32: k->fn = mm_f32; k->act = ACT_NONE; return 1;
    case RK_F16: k->fn = mm_f16; k->act = ACT_NONE; return 1;
    case RK_BF16: k->fn = mm_bf16; k->act = ACT_NONE; return 1;
    default: return 0;
    }
}

// The kernel of rk_pack_rows_avx2's layout: the same activations, arithmetic and results.
int rk_kernel_avx2_packed(int type, rk_kernel *k) {
    if (!packable(type) || !rk_kernel_avx2(type, k)) return 0;
    switch (type) {
    case RK_Q4_0: k->fn = mp_q4_0; break;
    case RK_Q4_1: k->fn = mp_q4_1; break;
    case RK_Q5_0: k->fn = mp_q5_0; break;
    case RK_Q5_1: k->fn = mp_q5_1; break;
    case RK_Q8_0: k->fn = mp_q8_0; break;
    case RK_Q4_K: k->fn = mp_q4_k; break;
    default: k->fn = mp_q5_k; break;
    }
    return 1;
}

#else
int rk_kernel_avx2(int type, rk_kernel *k) { (void)type; (void)k; return 0; }
int rk_kernel_avx2_packed(int type, rk_kernel *k) { (void)type; (void)k; return 0; }
size_t rk_packed_row_size_avx2(int type, int K) { (void)type; (void)K; return 0; }
void rk_pack_rows_avx2(int type, const uint8_t *W, size_t rs, int r0, int r1, int K, uint8_t *dst) {
    (void)type; (void)W; (void)rs; (void)r0; (void)r1; (void)K; (void)dst;
}
#endif
