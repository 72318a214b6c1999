// Causal grouped-query attention in fp32. Work items are (token, KV group) pairs (per head on the
// portable path), heaviest (latest token) first, handed out with an atomic counter. The arithmetic
// for a query depends only on its absolute position, never on T, so batched and one-at-a-time
// forwards agree bit for bit.
#include "internal.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

RK_NO_CONTRACT

// Shared scratch, serialised by g_lock; calls from inside a pool job use a per-thread one (see
// matmul.c).
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fbuf { float *p; size_t cap; } g_scratch; // cap in floats
static _Thread_local struct fbuf tl_scratch;

typedef struct {
    const float *q, *k, *v;
    float *out;
    int T, pos0, n_head, n_kv, hd, kv_stride, isa;
    float scale;
    float *scores;
    size_t per_thread; // floats of scratch per thread
    size_t ss;         // floats per score row
    int nscratch;
} att_job;

// ---- scalar (portable, and any head size) ------------------------------------------------------

static void head_scalar(const att_job *j, const float *q, const float *k, const float *v, float *o, int n, float *s) {
    const int hd = j->hd;
    float mx = -INFINITY;
    for (int p = 0; p < n; p++) {
        const float *kp = k + (size_t)p * j->kv_stride;
        float d = 0;
        for (int i = 0; i < hd; i++) d += q[i] * kp[i];
        s[p] = d * j->scale;
        if (s[p] > mx) mx = s[p];
    }
    float sum = 0;
    for (int p = 0; p < n; p++) {
        s[p] = expf(s[p] - mx);
        sum += s[p];
    }
    for (int i = 0; i < hd; i++) o[i] = 0;
    for (int p = 0; p < n; p++) {
        const float *vp = v + (size_t)p * j->kv_stride;
        for (int i = 0; i < hd; i++) o[i] += s[p] * vp[i];
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < hd; i++) o[i] *= inv;
}

#if RK_X86
// ---- AVX-512 -------------------------------------------------------------------------------------

RK_AVX512 static inline __m512 exp512(__m512 x) { // x <= 0; ~1 ulp
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f)); // keeps -inf out of the reduction; scalef gives 0
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n); // handles underflow to 0
}

RK_AVX512 static inline float hsum512(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

// One (token, KV group) work item: every head of the group goes through each block of 16 keys
// (and of 16 values) while it is in L1, so the cache is read once per group, not once per head.
// S: G score rows of ss floats; A: per head two sets (even / odd positions) of hd accumulators.
RK_AVX512 static void group_avx512(const att_job *j, int t, int g, float *S, size_t ss, float *A) {
    const int G = j->n_head / j->n_kv, hd = j->hd, nc = hd / 16, n = j->pos0 + t + 1; // hd % 16 == 0
    const size_t ks = (size_t)j->kv_stride, qrow = (size_t)j->n_head * hd;
    const float *k = j->k + (size_t)g * hd, *v = j->v + (size_t)g * hd;
    const float *q0 = j->q + (size_t)t * qrow + (size_t)g * G * hd;
    float *o0 = j->out + (size_t)t * qrow + (size_t)g * G * hd;
    // Scores 16 keys at a time: one accumulator per key, then a transpose-and-add tree that treats
    // every key the same way (a partial last block repeats its last key), so a key's score does not
    // depend on where the block boundaries fall.
    const __m512 vscale = _mm512_set1_ps(j->scale);
    for (int p0 = 0; p0 < n; p0 += 16) {
        const __mmask16 m = (n - p0 >= 16) ? (__mmask16)0xffff : (__mmask16)((1u << (n - p0)) - 1);
        for (int hh = 0; hh < G; hh++) {
            const float *q = q0 + (size_t)hh * hd;
            __m512 a[16];
            for (int i = 0; i < 16; i++) {
                const float *kp = k + (size_t)(p0 + i < n ? p0 + i : n - 1) * ks;
                __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(q), _mm512_loadu_ps(kp));
                for (int c = 1; c < nc; c++) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(kp + 16 * c), acc);
                a[i] = acc;
            }
            __m512 b[8], c4[4];
            for (int i = 0; i < 8; i++) b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
            for (int i = 0; i < 4; i++) {
                const __m512d x0 = _mm512_castps_pd(b[2 * i]), x1 = _mm512_castps_pd(b[2 * i + 1]);
                c4[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x0, x1)), _mm512_castpd_ps(_mm512_unpackhi_pd(x0, x1)));
            }
            // c4[i], 128-bit lane l: partial sums (lane l) of keys 4i..4i+3
            const __m512 w01 = _mm512_add_ps(_mm512_shuffle_f32x4(c4[0], c4[1], 0x88), _mm512_shuffle_f32x4(c4[0], c4[1], 0xDD));
            const __m512 w23 = _mm512_add_ps(_mm512_shuffle_f32x4(c4[2], c4[3], 0x88), _mm512_shuffle_f32x4(c4[2], c4[3], 0xDD));
            const __m512 sum = _mm512_add_ps(_mm512_shuffle_f32x4(w01, w23, 0x88), _mm512_shuffle_f32x4(w01, w23, 0xDD));
            _mm512_mask_storeu_ps(S + hh * ss + p0, m, _mm512_mul_ps(sum, vscale));
        }
    }
    // softmax numerators and 1/sum per head
    float inv[64];
    for (int hh = 0; hh < G; hh++) {
        float *s = S + hh * ss;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        int p = 0;
        for (; p + 16 <= n; p += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + p));
        float mx = _mm512_reduce_max_ps(vmax);
        for (; p < n; p++) mx = s[p] > mx ? s[p] : mx;
        const __m512 vm = _mm512_set1_ps(mx);
        __m512 vsum = _mm512_setzero_ps();
        for (p = 0; p < n; p += 16) { // masked tail: same lane arithmetic
            const __mmask16 m = (n - p >= 16) ? (__mmask16)0xffff : (__mmask16)((1u << (n - p)) - 1);
            const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + p), vm));
            vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(m, e));
            _mm512_mask_storeu_ps(s + p, m, e);
        }
        inv[hh] = 1.0f / hsum512(vsum);
    }
    // weighted sum of v: accumulators for even and odd positions, 64 floats at a time
    memset(A, 0, sizeof(float) * 2 * (size_t)G * hd);
    for (int p0 = 0; p0 < n; p0 += 16) {
        const int p1 = p0 + 16 < n ? p0 + 16 : n;
        for (int hh = 0; hh < G; hh++) {
            const float *s = S + hh * ss;
            float *a0p = A + (size_t)hh * 2 * hd, *a1p = a0p + hd;
            for (int c0 = 0; c0 < nc; c0 += 4) {
                const int cn = nc - c0 < 4 ? nc - c0 : 4;
                __m512 a0[4], a1[4];
                for (int c = 0; c < cn; c++) {
                    a0[c] = _mm512_loadu_ps(a0p + 16 * (c0 + c));
                    a1[c] = _mm512_loadu_ps(a1p + 16 * (c0 + c));
                }
                const float *vb = v + 16 * c0;
                int pp = p0;
                for (; pp + 2 <= p1; pp += 2) {
                    const __m512 w0 = _mm512_set1_ps(s[pp]), w1 = _mm512_set1_ps(s[pp + 1]);
                    const float *v0 = vb + (size_t)pp * ks, *v1 = v0 + ks;
                    for (int c = 0; c < cn; c++) {
                        a0[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + 16 * c), a0[c]);
                        a1[c] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(v1 + 16 * c), a1[c]);
                    }
                }
                if (pp < p1) { // only at the very end: blocks start at even positions
                    const __m512 w0 = _mm512_set1_ps(s[pp]);
                    const float *v0 = vb + (size_t)pp * ks;
                    for (int c = 0; c < cn; c++) a0[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + 16 * c), a0[c]);
                }
                for (int c = 0; c < cn; c++) {
                    _mm512_storeu_ps(a0p + 16 * (c0 + c), a0[c]);
                    _mm512_storeu_ps(a1p + 16 * (c0 + c), a1[c]);
                }
            }
        }
    }
    for (int hh = 0; hh < G; hh++) {
        const float *a0p = A + (size_t)hh * 2 * hd, *a1p = a0p + hd;
        const __m512 vi = _mm512_set1_ps(inv[hh]);
        for (int c = 0; c < nc; c++)
            _mm512_storeu_ps(o0 + (size_t)hh * hd + 16 * c,
                             _mm512_mul_ps(_mm512_add_ps(_mm512_loadu_ps(a0p + 16 * c), _mm512_loadu_ps(a1p + 16 * c)), vi));
    }
}

// ---- AVX2 ----------------------------------------------------------------------------------------

RK_AVX2 static inline __m256 exp256(__m256 x) { // x <= 0
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f)); // keeps 2^n normal; e^-87 is negligible next to e^0
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

RK_AVX2 static inline float hsum256(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

// As group_avx512, with 8-key score blocks.
RK_AVX2 static void group_avx2(const att_job *j, int t, int g, float *S, size_t ss, float *A) {
    const int G = j->n_head / j->n_kv, hd = j->hd, nc = hd / 8, n = j->pos0 + t + 1; // hd % 8 == 0
    const size_t ks = (size_t)j->kv_stride, qrow = (size_t)j->n_head * hd;
    const float *k = j->k + (size_t)g * hd, *v = j->v + (size_t)g * hd;
    const float *q0 = j->q + (size_t)t * qrow + (size_t)g * G * hd;
    float *o0 = j->out + (size_t)t * qrow + (size_t)g * G * hd;
    const __m256 vscale = _mm256_set1_ps(j->scale);
    for (int p0 = 0; p0 < n; p0 += 8) {
        for (int hh = 0; hh < G; hh++) {
            const float *q = q0 + (size_t)hh * hd;
            __m256 a[8];
            for (int i = 0; i < 8; i++) {
                const float *kp = k + (size_t)(p0 + i < n ? p0 + i : n - 1) * ks;
                __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(kp));
                for (int c = 1; c < nc; c++) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c), _mm256_loadu_ps(kp + 8 * c), acc);
                a[i] = acc;
            }
            __m256 b[4], c2[2];
            for (int i = 0; i < 4; i++) b[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
            for (int i = 0; i < 2; i++) {
                const __m256d x0 = _mm256_castps_pd(b[2 * i]), x1 = _mm256_castps_pd(b[2 * i + 1]);
                c2[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x0, x1)), _mm256_castpd_ps(_mm256_unpackhi_pd(x0, x1)));
            }
            const __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(c2[0], c2[1], 0x20), _mm256_permute2f128_ps(c2[0], c2[1], 0x31));
            float tmp[8];
            _mm256_storeu_ps(tmp, _mm256_mul_ps(sum, vscale));
            float *s = S + hh * ss;
            for (int i = 0; i < 8 && p0 + i < n; i++) s[p0 + i] = tmp[i];
        }
    }
    float inv[64];
    for (int hh = 0; hh < G; hh++) {
        float *s = S + hh * ss;
        float mx = -INFINITY;
        for (int p = 0; p < n; p++) mx = s[p] > mx ? s[p] : mx;
        const __m256 vm = _mm256_set1_ps(mx);
        __m256 vsum = _mm256_setzero_ps();
        int p = 0;
        for (; p + 8 <= n; p += 8) {
            const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + p), vm));
            vsum = _mm256_add_ps(vsum, e);
            _mm256_storeu_ps(s + p, e);
        }
        if (p < n) { // tail through a padded copy: same lane arithmetic
            float tmp[8];
            for (int i = 0; i < 8; i++) tmp[i] = (p + i < n) ? s[p + i] : mx;
            __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(tmp), vm));
            _mm256_storeu_ps(tmp, e);
            for (int i = n - p; i < 8; i++) tmp[i] = 0;
            vsum = _mm256_add_ps(vsum, _mm256_loadu_ps(tmp));
            for (int i = 0; p + i < n; i++) s[p + i] = tmp[i];
        }
        inv[hh] = 1.0f / hsum256(vsum);
    }
    memset(A, 0, sizeof(float) * 2 * (size_t)G * hd);
    for (int p0 = 0; p0 < n; p0 += 16) {
        const int p1 = p0 + 16 < n ? p0 + 16 : n;
        for (int hh = 0; hh < G; hh++) {
            const float *s = S + hh * ss;
            float *a0p = A + (size_t)hh * 2 * hd, *a1p = a0p + hd;
            for (int c0 = 0; c0 < nc; c0 += 4) {
                const int cn = nc - c0 < 4 ? nc - c0 : 4;
                __m256 a0[4], a1[4];
                for (int c = 0; c < cn; c++) {
                    a0[c] = _mm256_loadu_ps(a0p + 8 * (c0 + c));
                    a1[c] = _mm256_loadu_ps(a1p + 8 * (c0 + c));
                }
                const float *vb = v + 8 * c0;
                int pp = p0;
                for (; pp + 2 <= p1; pp += 2) {
                    const __m256 w0 = _mm256_set1_ps(s[pp]), w1 = _mm256_set1_ps(s[pp + 1]);
                    const float *v0 = vb + (size_t)pp * ks, *v1 = v0 + ks;
                    for (int c = 0; c < cn; c++) {
                        a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v0 + 8 * c), a0[c]);
                        a1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(v1 + 8 * c), a1[c]);
                    }
                }
                if (pp < p1) {
                    const __m256 w0 = _mm256_set1_ps(s[pp]);
                    const float *v0 = vb + (size_t)pp * ks;
                    for (int c = 0; c < cn; c++) a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v0 + 8 * c), a0[c]);
                }
                for (int c = 0; c < cn; c++) {
                    _mm256_storeu_ps(a0p + 8 * (c0 + c), a0[c]);
                    _mm256_storeu_ps(a1p + 8 * (c0 + c), a1[c]);
                }
            }
        }
    }
    for (int hh = 0; hh < G; hh++) {
        const float *a0p = A + (size_t)hh * 2 * hd, *a1p = a0p + hd;
        const __m256 vi = _mm256_set1_ps(inv[hh]);
        for (int c = 0; c < nc; c++)
            _mm256_storeu_ps(o0 + (size_t)hh * hd + 8 * c,
                             _mm256_mul_ps(_mm256_add_ps(_mm256_loadu_ps(a0p + 8 * c), _mm256_loadu_ps(a1p + 8 * c)), vi));
    }
}
#endif

// Work units of one row: (token, KV group) pairs where a grouped kernel fits the head size, else
// (token, head) pairs on the portable path.
static int att_grouped(const att_job *j) {
#if RK_X86
    return (j->isa >= 2 && j->hd % 16 == 0) || (j->isa >= 1 && j->hd % 8 == 0);
#else
    (void)j;
    return 0;
#endif
}

static int att_units(const att_job *j) { return j->T * (att_grouped(j) ? j->n_kv : j->n_head); }

static void att_unit(const att_job *j, int i, float *S) {
    const int G = j->n_head / j->n_kv;
    const size_t qrow = (size_t)j->n_head * j->hd;
    const int per_t = att_units(j) / j->T;
    const int t = j->T - 1 - i / per_t, u = i % per_t; // latest (heaviest) tokens first
#if RK_X86
    if (att_grouped(j)) {
        float *A = S + (size_t)G * j->ss;
        if (j->isa >= 2 && j->hd % 16 == 0) group_avx512(j, t, u, S, j->ss, A);
        else group_avx2(j, t, u, S, j->ss, A);
        return;
    }
#endif
    const int n = j->pos0 + t + 1;
    const size_t koff = (size_t)(u / G) * j->hd;
    head_scalar(j, j->q + (size_t)t * qrow + (size_t)u * j->hd, j->k + koff, j->v + koff,
                j->out + (size_t)t * qrow + (size_t)u * j->hd, n, S);
}

// The units of several rows (sequences of one forward) in one queue: the threads meet once a layer.
typedef struct {
    att_job *rows;
    int n;
    int *start; // first unit of each row; start[n] = all units
    _Atomic int next;
} att_many;

static void att_task(void *p, int ith, int nth) {
    (void)nth;
    att_many *m = (att_many *)p;
    if (ith >= m->rows[0].nscratch) return; // pool grew since we sized the scratch: the others take the work
    float *S = m->rows[0].scores + (size_t)ith * m->rows[0].per_thread;
    int r = 0;
    for (;;) {
        const int i = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
        if (i >= m->start[m->n]) break;
        while (i >= m->start[r + 1]) r++;
        att_unit(&m->rows[r], i - m->start[r], S);
    }
}

static void rk_attention_rows_isa(int isa, const rk_attention_row *rows, int n, int n_head, int n_kv, int hd, int kv_stride, float scale) {
    if (n <= 0 || n_head <= 0 || n_kv <= 0 || hd <= 0 || n_head % n_kv || n_head / n_kv > 64) return;
    if (isa > rk_isa_hw()) isa = rk_isa_hw();
    const int nested = rk_in_parallel();
    const int nth = nested ? 1 : rk_threads_count();
    struct fbuf *sb = nested ? &tl_scratch : &g_scratch;
    att_job one[1];
    int one_start[2];
    att_job *jobs = n == 1 ? one : malloc(sizeof(att_job) * (size_t)n);
    int *start = n == 1 ? one_start : malloc(sizeof(int) * (size_t)(n + 1));
    if (!jobs || !start) { if (n > 1) { free(jobs); free(start); } return; }
    // per thread: G score rows (long enough for the longest row), then 2*G*hd accumulators
    const int G = n_head / n_kv;
    int longest = 0;
    for (int r = 0; r < n; r++)
        if (rows[r].pos0 + rows[r].T > longest) longest = rows[r].pos0 + rows[r].T;
    const size_t ss = ((size_t)longest + 16 + 15) & ~(size_t)15;
    const size_t per_thread = (G * ss + 2 * (size_t)G * hd + 15) & ~(size_t)15;
    if (!nested) pthread_mutex_lock(&g_lock);
    const size_t need = per_thread * (size_t)nth;
    if (need > sb->cap) { // grow-only
        free(sb->p);
        sb->p = (float *)aligned_alloc(64, ((need + need / 4) * 4 + 63) & ~(size_t)63);
        sb->cap = sb->p ? need + need / 4 : 0;
    }
    if (sb->p) {
        start[0] = 0;
        for (int r = 0; r < n; r++) {
            jobs[r] = (att_job){rows[r].q, rows[r].k, rows[r].v, rows[r].out, rows[r].T > 0 ? rows[r].T : 0, rows[r].pos0,
                                n_head, n_kv, hd, kv_stride, isa, scale, sb->p, per_thread, ss, nth};
            start[r + 1] = start[r] + (jobs[r].T > 0 ? att_units(&jobs[r]) : 0);
        }
        att_many m = {jobs, n, start, 0};
        if (nth > 1 && start[n] > 1) rk_parallel(att_task, &m);
        else att_task(&m, 0, 1);
    }
    if (!nested) pthread_mutex_unlock(&g_lock);
    if (n > 1) { free(jobs); free(start); }
}

void rk_attention_rows(const rk_attention_row *rows, int n, int n_head, int n_kv, int hd, int kv_stride, float scale) {
    rk_attention_rows_isa(rk_isa(), rows, n, n_head, n_kv, hd, kv_stride, scale);
}

void rk_attention_isa(int isa, const float *q, const float *k, const float *v, float *out, int T, int pos0,
                      int n_head, int n_kv, int hd, int kv_stride, float scale) {
    if (T <= 0) return;
    const rk_attention_row row = {q, k, v, out, T, pos0};
    rk_attention_rows_isa(isa, &row, 1, n_head, n_kv, hd, kv_stride, scale);
}

void rk_attention(const float *q, const float *k, const float *v, float *out, int T, int pos0, int n_head, int n_kv,
                  int hd, int kv_stride, float scale) {
    rk_attention_isa(rk_isa(), q, k, v, out, T, pos0, n_head, n_kv, hd, kv_stride, scale);
}
