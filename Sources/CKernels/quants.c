// Type table, scalar reference (de)quantisation, and activation quantisation for the integer dots.
#include "internal.h"
#include <math.h>

// --- fp16 / bf16 ------------------------------------------------------------------------------

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float rk_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) return u2f(sign | f2u((float)man * (1.0f / 16777216.0f))); // zero / subnormal
    if (exp == 31) return u2f(sign | 0x7f800000u | (man << 13));
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t rk_fp32_to_fp16(float f) { // round to nearest even
    const uint32_t x = f2u(f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) return (uint16_t)(sign | (uint32_t)lrintf(u2f(ax) * 16777216.0f));
    const uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}

static inline float bf16_to_fp32(uint16_t h) { return u2f((uint32_t)h << 16); }

static inline uint16_t fp32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64); // quiet NaN
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#define H2F rk_fp16_to_fp32

// --- Type table -------------------------------------------------------------------------------

int rk_type_supported(int type) {
    switch (type) {
    case RK_F32: case RK_F16: case RK_BF16:
    case RK_Q4_0: case RK_Q4_1: case RK_Q5_0: case RK_Q5_1: case RK_Q8_0:
    case RK_Q4_K: case RK_Q5_K: case RK_Q6_K:
        return 1;
    default:
        return 0;
    }
}

int64_t rk_block_size(int type) {
    switch (type) {
    case RK_F32: case RK_F16: case RK_BF16: return 1;
    case RK_Q4_0: case RK_Q4_1: case RK_Q5_0: case RK_Q5_1: case RK_Q8_0: return QK;
    case RK_Q2_K: case RK_Q3_K: case RK_Q4_K: case RK_Q5_K: case RK_Q6_K: return QKK;
    default: return 0;
    }
}

static size_t block_bytes(int type) {
    switch (type) {
    case RK_F32: return 4;
    case RK_F16: case RK_BF16: return 2;
    case RK_Q4_0: return sizeof(blk_q4_0);
    case RK_Q4_1: return sizeof(blk_q4_1);
    case RK_Q5_0: return sizeof(blk_q5_0);
    case RK_Q5_1: return sizeof(blk_q5_1);
    case RK_Q8_0: return sizeof(blk_q8_0);
    case RK_Q2_K: return sizeof(blk_q2_K);
    case RK_Q3_K: return sizeof(blk_q3_K);
    case RK_Q4_K: return sizeof(blk_q4_K);
    case RK_Q5_K: return sizeof(blk_q5_K);
    case RK_Q6_K: return sizeof(blk_q6_K);
    default: return 0;
    }
}

size_t rk_row_size(int type, int64_t n) {
    const int64_t bs = rk_block_size(type);
    if (bs <= 0 || n < 0 || n % bs) return 0;
    return (size_t)(n / bs) * block_bytes(type);
}

// --- Reference dequantisation -----------------------------------------------------------------

void rk_dequantize_row(int type, const void *src, float *y, int64_t n) {
    const uint8_t *p = (const uint8_t *)src;
    switch (type) {
    case RK_F32:
        memcpy(y, src, (size_t)n * 4);
        return;
    case RK_F16:
        for (int64_t i = 0; i < n; i++) y[i] = H2F(rk_rd16(p + 2 * i));
        return;
    case RK_BF16:
        for (int64_t i = 0; i < n; i++) y[i] = bf16_to_fp32(rk_rd16(p + 2 * i));
        return;
    case RK_Q4_0:
        for (int64_t b = 0; b < n / QK; b++, y += QK) {
            const blk_q4_0 *x = (const blk_q4_0 *)p + b;
            const float d = H2F(x->d);
            for (int j = 0; j < 16; j++) {
                y[j] = d * ((x->qs[j] & 15) - 8);
                y[j + 16] = d * ((x->qs[j] >> 4) - 8);
            }
        }
        return;
    case RK_Q4_1:
        for (int64_t b = 0; b < n / QK; b++, y += QK) {
            const blk_q4_1 *x = (const blk_q4_1 *)p + b;
            const float d = H2F(x->d), m = H2F(x->m);
            for (int j = 0; j < 16; j++) {
                y[j] = d * (x->qs[j] & 15) + m;
                y[j + 16] = d * (x->qs[j] >> 4) + m;
            }
        }
        return;
    case RK_Q5_0:
        for (int64_t b = 0; b < n / QK; b++, y += QK) {
            const blk_q5_0 *x = (const blk_q5_0 *)p + b;
            const float d = H2F(x->d);
            const uint32_t qh = rk_rd32(x->qh); // bit e is the 5th bit of element e
            for (int j = 0; j < 16; j++) {
                y[j] = d * ((int)((x->qs[j] & 15) | (((qh >> j) & 1) << 4)) - 16);
                y[j + 16] = d * ((int)((x->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
            }
        }
        return;
    case RK_Q5_1:
        for (int64_t b = 0; b < n / QK; b++, y += QK) {
            const blk_q5_1 *x = (const blk_q5_1 *)p + b;
            const float d = H2F(x->d), m = H2F(x->m);
            const uint32_t qh = rk_rd32(x->qh);
            for (int j = 0; j < 16; j++) {
                y[j] = d * ((x->qs[j] & 15) | (((qh >> j) & 1) << 4)) + m;
                y[j + 16] = d * ((x->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) + m;
            }
        }
        return;
    case RK_Q8_0:
        for (int64_t b = 0; b < n / QK; b++, y += QK) {
            const blk_q8_0 *x = (const blk_q8_0 *)p + b;
            const float d = H2F(x->d);
            for (int j = 0; j < 32; j++) y[j] = d * x->qs[j];
        }
        return;
    case RK_Q2_K:
        for (int64_t b = 0; b < n / QKK; b++) {
            const blk_q2_K *x = (const blk_q2_K *)p + b;
            const float d = H2F(x->d), dmin = H2F(x->dmin);
            for (int h = 0; h < 2; h++) { // two halves of 128: 32 bytes of qs, 4 shifts each
                const uint8_t *q = x->qs + 32 * h;
                for (int s = 0; s < 4; s++)
                    for (int g = 0; g < 2; g++) {
                        const uint8_t sc = x->scales[8 * h + 2 * s + g];
                        const float dl = d * (sc & 15), ml = dmin * (sc >> 4);
                        for (int l = 0; l < 16; l++) *y++ = dl * ((q[16 * g + l] >> (2 * s)) & 3) - ml;
                    }
            }
        }
        return;
    case RK_Q3_K:
        for (int64_t b = 0; b < n / QKK; b++) {
            const blk_q3_K *x = (const blk_q3_K *)p + b;
            const float d = H2F(x->d);
            int8_t sc[16];
            for (int j = 0; j < 16; j++) { // 4 low bits from bytes 0..7, 2 high bits from bytes 8..11
                const int lo = (j < 8) ? (x->scales[j] & 15) : (x->scales[j - 8] >> 4);
                const int hi = (x->scales[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
                sc[j] = (int8_t)((lo | (hi << 4)) - 32);
            }
            for (int h = 0; h < 2; h++) {
                const uint8_t *q = x->qs + 32 * h;
                for (int s = 0; s < 4; s++)
                    for (int g = 0; g < 2; g++) {
                        const float dl = d * sc[8 * h + 2 * s + g];
                        const uint8_t mbit = (uint8_t)(1u << (4 * h + s));
                        for (int l = 0; l < 16; l++) {
                            const int v = ((q[16 * g + l] >> (2 * s)) & 3) - ((x->hmask[16 * g + l] & mbit) ? 0 : 4);
                            *y++ = dl * v;
                        }
                    }
            }
        }
        return;
    case RK_Q4_K:
        for (int64_t b = 0; b < n / QKK; b++) {
            const blk_q4_K *x = (const blk_q4_K *)p + b;
            const float d = H2F(x->d), dmin = H2F(x->dmin);
            uint8_t sc[8], m[8];
            rk_kscales(x->scales, sc, m);
            for (int c = 0; c < 4; c++) { // 32 bytes of qs: low nibbles, then high nibbles
                const uint8_t *q = x->qs + 32 * c;
                for (int l = 0; l < 32; l++) *y++ = d * sc[2 * c] * (q[l] & 15) - dmin * m[2 * c];
                for (int l = 0; l < 32; l++) *y++ = d * sc[2 * c + 1] * (q[l] >> 4) - dmin * m[2 * c + 1];
            }
        }
        return;
    case RK_Q5_K:
        for (int64_t b = 0; b < n / QKK; b++) {
            const blk_q5_K *x = (const blk_q5_K *)p + b;
            const float d = H2F(x->d), dmin = H2F(x->dmin);
            uint8_t sc[8], m[8];
            rk_kscales(x->scales, sc, m);
            for (int c = 0; c < 4; c++) {
                const uint8_t *q = x->qs + 32 * c;
                for (int l = 0; l < 32; l++)
                    *y++ = d * sc[2 * c] * ((q[l] & 15) | (((x->qh[l] >> (2 * c)) & 1) << 4)) - dmin * m[2 * c];
                for (int l = 0; l < 32; l++)
                    *y++ = d * sc[2 * c + 1] * ((q[l] >> 4) | (((x->qh[l] >> (2 * c + 1)) & 1) << 4)) -
                           dmin * m[2 * c + 1];
            }
        }
        return;
    case RK_Q6_K:
        for (int64_t b = 0; b < n / QKK; b++) {
            const blk_q6_K *x = (const blk_q6_K *)p + b;
            const float d = H2F(x->d);
            for (int h = 0; h < 2; h++, y += 128) {
                const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
                const int8_t *sc = x->scales + 8 * h;
                for (int l = 0; l < 32; l++) {
                    const int g = l / 16;
                    y[l] = d * sc[g] * ((int)((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
                    y[l + 32] = d * sc[g + 2] * ((int)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    y[l + 64] = d * sc[g + 4] * ((int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    y[l + 96] = d * sc[g + 6] * ((int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }
        }
        return;
    default:
        for (int64_t i = 0; i < n; i++) y[i] = 0;
        return;
    }
}

// --- Simple reference quantisers (test data; not tuned for quality) ---------------------------

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline int rnd(float v) { return (int)lrintf(v); }

// Returns the value with the largest magnitude (keeping its sign).
static float signed_absmax(const float *x, int n) {
    float m = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(m)) m = x[i];
    return m;
}

static void q_legacy(int type, const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK) {
        uint8_t q[32];
        float d, m = 0;
        const int bits5 = (type == RK_Q5_0 || type == RK_Q5_1);
        const int nmax = bits5 ? 31 : 15;
        if (type == RK_Q4_0 || type == RK_Q5_0) {
            const float amax = signed_absmax(x, 32);
            const uint16_t dh = rk_fp32_to_fp16(amax / -(float)((nmax + 1) / 2));
            d = H2F(dh);
            const float id = d != 0 ? 1.0f / d : 0;
            for (int j = 0; j < 32; j++) q[j] = (uint8_t)clampi(rnd(x[j] * id) + (nmax + 1) / 2, 0, nmax);
            memcpy(dst, &dh, 2);
        } else if (type == RK_Q4_1 || type == RK_Q5_1) {
            float lo = x[0], hi = x[0];
            for (int j = 1; j < 32; j++) { lo = fminf(lo, x[j]); hi = fmaxf(hi, x[j]); }
            const uint16_t dh = rk_fp32_to_fp16((hi - lo) / nmax), mh = rk_fp32_to_fp16(lo);
            d = H2F(dh);
            m = H2F(mh);
            const float id = d != 0 ? 1.0f / d : 0;
            for (int j = 0; j < 32; j++) q[j] = (uint8_t)clampi(rnd((x[j] - m) * id), 0, nmax);
            memcpy(dst, &dh, 2);
            memcpy(dst + 2, &mh, 2);
        } else { // Q8_0
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
            const uint16_t dh = rk_fp32_to_fp16(amax / 127);
            d = H2F(dh);
            const float id = d != 0 ? 1.0f / d : 0;
            memcpy(dst, &dh, 2);
            for (int j = 0; j < 32; j++) dst[2 + j] = (uint8_t)(int8_t)clampi(rnd(x[j] * id), -128, 127);
            dst += sizeof(blk_q8_0);
            continue;
        }
        const size_t hdr = (type == RK_Q4_0 || type == RK_Q5_0) ? 2 : 4;
        uint8_t *qs = dst + hdr + (bits5 ? 4 : 0);
        for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | ((q[j + 16] & 15) << 4));
        if (bits5) {
            uint32_t qh = 0;
            for (int j = 0; j < 32; j++) qh |= (uint32_t)(q[j] >> 4) << j;
            memcpy(dst + hdr, &qh, 4);
        }
        dst += block_bytes(type);
    }
}

// Q4_K / Q5_K: per 32 a scale and a min, themselves quantised to 6 bits against d / dmin.
static void q_k45(int type, const float *x, uint8_t *dst, int64_t nb) {
    const int nmax = type == RK_Q5_K ? 31 : 15;
    for (int64_t b = 0; b < nb; b++, x += QKK) {
        float scale[8], mn[8], maxs = 0, maxm = 0;
        for (int j = 0; j < 8; j++) {
            float lo = 0, hi = x[32 * j]; // the minimum is stored as a non-negative offset
            for (int l = 0; l < 32; l++) { lo = fminf(lo, x[32 * j + l]); hi = fmaxf(hi, x[32 * j + l]); }
            scale[j] = (hi - lo) / nmax;
            mn[j] = -lo;
            maxs = fmaxf(maxs, scale[j]);
            maxm = fmaxf(maxm, mn[j]);
        }
        const uint16_t dh = rk_fp32_to_fp16(maxs / 63), dmh = rk_fp32_to_fp16(maxm / 63);
        const float d = H2F(dh), dmin = H2F(dmh);
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = (uint8_t)(d > 0 ? clampi(rnd(scale[j] / d), 0, 63) : 0);
            m[j] = (uint8_t)(dmin > 0 ? clampi(rnd(mn[j] / dmin), 0, 63) : 0);
        }
        uint8_t s12[12];
        for (int j = 0; j < 4; j++) {
            s12[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
            s12[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
            s12[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
        }
        uint8_t q[256];
        for (int j = 0; j < 8; j++) {
            const float ds = d * sc[j], dm = dmin * m[j];
            for (int l = 0; l < 32; l++)
                q[32 * j + l] = (uint8_t)(ds > 0 ? clampi(rnd((x[32 * j + l] + dm) / ds), 0, nmax) : 0);
        }
        if (type == RK_Q4_K) {
            blk_q4_K *o = (blk_q4_K *)dst;
            o->d = dh; o->dmin = dmh;
            memcpy(o->scales, s12, 12);
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) o->qs[32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
        } else {
            blk_q5_K *o = (blk_q5_K *)dst;
            o->d = dh; o->dmin = dmh;
            memcpy(o->scales, s12, 12);
            memset(o->qh, 0, 32);
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) {
                    const uint8_t a = q[64 * c + l], bb = q[64 * c + 32 + l];
                    o->qs[32 * c + l] = (uint8_t)((a & 15) | ((bb & 15) << 4));
                    o->qh[l] |= (uint8_t)(((a >> 4) << (2 * c)) | ((bb >> 4) << (2 * c + 1)));
                }
        }
        dst += block_bytes(type);
    }
}

static void q_q6k(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QKK) {
        float scale[16], amax = 0;
        for (int g = 0; g < 16; g++) {
            scale[g] = signed_absmax(x + 16 * g, 16) / -32.0f;
            amax = fmaxf(amax, fabsf(scale[g]));
        }
        const uint16_t dh = rk_fp32_to_fp16(amax / 127);
        const float d = H2F(dh);
        blk_q6_K *o = (blk_q6_K *)dst;
        uint8_t q[256];
        for (int g = 0; g < 16; g++) {
            o->scales[g] = (int8_t)(d > 0 ? clampi(rnd(scale[g] / d), -128, 127) : 0);
            const float ds = d * o->scales[g];
            for (int l = 0; l < 16; l++)
                q[16 * g + l] = (uint8_t)(ds != 0 ? clampi(rnd(x[16 * g + l] / ds) + 32, 0, 63) : 32);
        }
        o->d = dh;
        for (int h = 0; h < 2; h++) {
            const uint8_t *qq = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                o->ql[64 * h + l] = (uint8_t)((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
                o->ql[64 * h + l + 32] = (uint8_t)((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
                o->qh[32 * h + l] = (uint8_t)((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) |
                                              ((qq[l + 96] >> 4) << 6));
            }
        }
        dst += sizeof(blk_q6_K);
    }
}

size_t rk_quantize_row_ref(int type, const float *x, void *dst, int64_t n) {
    const size_t bytes = rk_row_size(type, n);
    if (!bytes || !rk_type_supported(type)) return 0;
    uint8_t *o = (uint8_t *)dst;
    switch (type) {
    case RK_F32: memcpy(o, x, (size_t)n * 4); break;
    case RK_F16:
        for (int64_t i = 0; i < n; i++) { uint16_t h = rk_fp32_to_fp16(x[i]); memcpy(o + 2 * i, &h, 2); }
        break;
    case RK_BF16:
        for (int64_t i = 0; i < n; i++) { uint16_t h = fp32_to_bf16(x[i]); memcpy(o + 2 * i, &h, 2); }
        break;
    case RK_Q4_0: case RK_Q4_1: case RK_Q5_0: case RK_Q5_1: case RK_Q8_0:
        q_legacy(type, x, o, n / QK);
        break;
    case RK_Q4_K: case RK_Q5_K: q_k45(type, x, o, n / QKK); break;
    case RK_Q6_K: q_q6k(x, o, n / QKK); break;
    default: return 0;
    }
    return bytes;
}

// --- Activation quantisation ------------------------------------------------------------------

static inline size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

void rk_act_layout(rk_act *a, const rk_kernel *k, int K, const uint8_t *base) {
    a->base = base;
    a->off_d = a->off_s = 0;
    if (k->act == ACT_Q8K) {
        a->off_d = (size_t)K;
        a->off_s = a->off_d + 4 * (size_t)(K / QKK);
        a->stride = align64(a->off_s + 2 * (size_t)(K / 16));
    } else if (k->act == ACT_GRP) {
        const size_t full = (size_t)(K / k->BE / k->G);
        a->stride = align64(rk_group_bytes(k, (int)full * k->G + rk_tail_lanes(k, K)));
    } else {
        a->stride = (size_t)K * 4;
    }
}

#if RK_X86
RK_AVX2 static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

RK_AVX2 static inline int hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

// 32 floats -> 32 int8 (round to nearest even), returns their sum.
RK_AVX2 static inline int quant32(const float *x, float id, int8_t *q) {
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
    const int sum = hsum8i(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    return sum;
}

RK_AVX2 static inline __m256 absmax16(const float *x) {
    const __m256 sm = _mm256_set1_ps(-0.0f);
    return _mm256_max_ps(_mm256_andnot_ps(sm, _mm256_loadu_ps(x)), _mm256_andnot_ps(sm, _mm256_loadu_ps(x + 8)));
}

RK_AVX2 static inline __m256 absmax32(const float *x) { return _mm256_max_ps(absmax16(x), absmax16(x + 16)); }

// 16 floats -> 16 int8, returns their sum.
RK_AVX2 static inline int quant16(const float *x, float id, int8_t *q) {
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
    const int sum = hsum8i(_mm256_add_epi32(i0, i1));
    const __m256i p16 = _mm256_packs_epi32(i0, i1); // [i0 0-3, i1 0-3 | i0 4-7, i1 4-7]
    __m128i p = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
    p = _mm_shuffle_epi32(p, _MM_SHUFFLE(3, 1, 2, 0));
    _mm_storeu_si128((__m128i *)q, p);
    return sum;
}

RK_AVX2 void rk_quantize_act_g(const float *x, int K, uint8_t *dst, const rk_kernel *kern) {
    const int BE = kern->BE, nb = K / BE, off = kern->off;
    for (int b0 = 0; b0 < nb;) {
        const int tail = nb - b0 < kern->G;
        const int G = tail ? rk_tail_lanes(kern, K) : kern->G;
        const uint8_t *lane = G != kern->G ? kern->lane8 : kern->lane;
        const size_t gb = rk_group_bytes(kern, G);
        uint8_t *o = dst;
        float *dv = (float *)(o + (size_t)G * BE), *sv = dv + (kern->halves ? 2 : 1) * G;
        int32_t *iv = (int32_t *)(sv + G);
        const int n = tail ? nb - b0 : G;
        if (n < G) memset(o, 0, gb);
        dst += gb;
        for (int k = 0; k < n; k++) {
            const float *xb = x + (size_t)(b0 + k) * BE;
            const int p = lane[k];
            if (kern->halves) { // BE == 32
                int8_t q[32];
                float d[2];
                int sum[2];
                for (int h = 0; h < 2; h++) {
                    const float amax = hmax8(absmax16(xb + 16 * h));
                    d[h] = amax / 127.0f;
                    sum[h] = quant16(xb + 16 * h, amax > 0 ? 127.0f / amax : 0.0f, q + 16 * h);
                }
                for (int j = 0; j < 8; j++) memcpy(o + (size_t)G * 4 * j + 4 * p, q + 4 * j, 4);
                dv[p] = d[0];
                dv[G + p] = d[1];
                sv[p] = d[0] * (float)sum[0] + d[1] * (float)sum[1];
                iv[p] = -off * sum[0];
                iv[G + p] = -off * sum[1];
                continue;
            }
            const float amax = hmax8(BE == 32 ? absmax32(xb) : absmax16(xb));
            const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
            int8_t q[32];
            const int sum = BE == 32 ? quant32(xb, id, q) : quant16(xb, id, q);
            for (int j = 0; j < BE / 4; j++) memcpy(o + (size_t)G * 4 * j + 4 * p, q + 4 * j, 4);
            dv[p] = d;
            sv[p] = d * (float)sum;
            iv[p] = -off * sum;
        }
        b0 += n;
    }
}

RK_AVX2 void rk_quantize_act_q8k(const float *x, int K, uint8_t *dst, const rk_act *L) {
    int8_t *qs = (int8_t *)dst;
    float *dv = (float *)(dst + L->off_d);
    int16_t *bs = (int16_t *)(dst + L->off_s);
    for (int b = 0; b < K / QKK; b++) {
        const float *xb = x + QKK * b;
        __m256 m = absmax32(xb);
        for (int j = 1; j < 8; j++) m = _mm256_max_ps(m, absmax32(xb + 32 * j));
        const float amax = hmax8(m);
        const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        int8_t *q = qs + QKK * b;
        for (int j = 0; j < 8; j++) quant32(xb + 32 * j, id, q + 32 * j);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[16 * g + l];
            bs[16 * b + g] = (int16_t)s;
        }
        dv[b] = d;
    }
}
#endif
