// Causal grouped-query attention in fp32. Work items are (token, head) pairs, heaviest (latest
// token) first, handed out with an atomic counter. The arithmetic for a query depends only on its
// absolute position, never on T, so batched and one-at-a-time forwards agree bit for bit.
#include "internal.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

RK_NO_CONTRACT

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static float *g_scores;
static size_t g_scores_cap; // floats

typedef struct {
    const float *q, *k, *v;
    float *out;
    int T, pos0, n_head, n_kv, hd, kv_stride, isa;
    float scale;
    float *scores;
    size_t per_thread; // floats of score scratch per thread
    int nscratch;
    _Atomic int next;
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

RK_AVX512 static void head_avx512(const att_job *j, const float *q, const float *k, const float *v, float *o, int n,
                                  float *s) {
    const int hd = j->hd, nc = hd / 16; // hd % 16 == 0
    const size_t ks = (size_t)j->kv_stride;
    __m512 qv[16];
    for (int c = 0; c < nc && c < 16; c++) qv[c] = _mm512_loadu_ps(q + 16 * c);
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int p = 0; p < n; p++) {
        const float *kp = k + (size_t)p * ks;
        __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kp));
        for (int c = 1; c < nc; c++)
            acc = _mm512_fmadd_ps(c < 16 ? qv[c] : _mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(kp + 16 * c), acc);
        s[p] = hsum512(acc) * j->scale;
    }
    // max
    int p = 0;
    for (; p + 16 <= n; p += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + p));
    float mx = _mm512_reduce_max_ps(vmax);
    for (; p < n; p++) mx = s[p] > mx ? s[p] : mx;
    // exp and sum, 16 at a time (masked tail: same lane arithmetic)
    const __m512 vm = _mm512_set1_ps(mx);
    __m512 vsum = _mm512_setzero_ps();
    for (p = 0; p < n; p += 16) {
        const __mmask16 m = (n - p >= 16) ? (__mmask16)0xffff : (__mmask16)((1u << (n - p)) - 1);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + p), vm));
        vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(m, e));
        _mm512_mask_storeu_ps(s + p, m, e);
    }
    const float inv = 1.0f / hsum512(vsum);
    // weighted sum of v: 4 chunks (64 floats) at a time, two accumulator sets (even / odd p)
    for (int c0 = 0; c0 < nc; c0 += 4) {
        const int cn = nc - c0 < 4 ? nc - c0 : 4;
        __m512 a0[4], a1[4];
        for (int c = 0; c < 4; c++) a0[c] = a1[c] = _mm512_setzero_ps();
        const float *vb = v + 16 * c0;
        int pp = 0;
        for (; pp + 2 <= n; pp += 2) {
            const __m512 w0 = _mm512_set1_ps(s[pp]), w1 = _mm512_set1_ps(s[pp + 1]);
            const float *v0 = vb + (size_t)pp * ks, *v1 = v0 + ks;
            for (int c = 0; c < cn; c++) {
                a0[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + 16 * c), a0[c]);
                a1[c] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(v1 + 16 * c), a1[c]);
            }
        }
        if (pp < n) {
            const __m512 w0 = _mm512_set1_ps(s[pp]);
            const float *v0 = vb + (size_t)pp * ks;
            for (int c = 0; c < cn; c++) a0[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + 16 * c), a0[c]);
        }
        const __m512 vi = _mm512_set1_ps(inv);
        for (int c = 0; c < cn; c++) _mm512_storeu_ps(o + 16 * (c0 + c), _mm512_mul_ps(_mm512_add_ps(a0[c], a1[c]), vi));
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

RK_AVX2 static void head_avx2(const att_job *j, const float *q, const float *k, const float *v, float *o, int n,
                              float *s) {
    const int hd = j->hd, nc = hd / 8; // hd % 8 == 0
    const size_t ks = (size_t)j->kv_stride;
    for (int p = 0; p < n; p++) {
        const float *kp = k + (size_t)p * ks;
        __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(kp));
        for (int c = 1; c < nc; c++) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c), _mm256_loadu_ps(kp + 8 * c), acc);
        s[p] = hsum256(acc) * j->scale;
    }
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
    const float inv = 1.0f / hsum256(vsum);
    for (int c0 = 0; c0 < nc; c0 += 4) {
        const int cn = nc - c0 < 4 ? nc - c0 : 4;
        __m256 a0[4], a1[4];
        for (int c = 0; c < 4; c++) a0[c] = a1[c] = _mm256_setzero_ps();
        const float *vb = v + 8 * c0;
        int pp = 0;
        for (; pp + 2 <= n; pp += 2) {
            const __m256 w0 = _mm256_set1_ps(s[pp]), w1 = _mm256_set1_ps(s[pp + 1]);
            const float *v0 = vb + (size_t)pp * ks, *v1 = v0 + ks;
            for (int c = 0; c < cn; c++) {
                a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v0 + 8 * c), a0[c]);
                a1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(v1 + 8 * c), a1[c]);
            }
        }
        if (pp < n) {
            const __m256 w0 = _mm256_set1_ps(s[pp]);
            const float *v0 = vb + (size_t)pp * ks;
            for (int c = 0; c < cn; c++) a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v0 + 8 * c), a0[c]);
        }
        const __m256 vi = _mm256_set1_ps(inv);
        for (int c = 0; c < cn; c++) _mm256_storeu_ps(o + 8 * (c0 + c), _mm256_mul_ps(_mm256_add_ps(a0[c], a1[c]), vi));
    }
}
#endif

static void att_task(void *p, int ith, int nth) {
    (void)nth;
    att_job *j = (att_job *)p;
    if (ith >= j->nscratch) return; // pool grew since we sized the scratch: the others take the work
    float *s = j->scores + (size_t)ith * j->per_thread;
    const int total = j->T * j->n_head, group = j->n_head / j->n_kv;
    const size_t qrow = (size_t)j->n_head * j->hd;
    for (;;) {
        const int i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= total) break;
        const int t = j->T - 1 - i / j->n_head, h = i % j->n_head;
        const int n = j->pos0 + t + 1;
        const float *q = j->q + (size_t)t * qrow + (size_t)h * j->hd;
        const size_t koff = (size_t)(h / group) * j->hd;
        float *o = j->out + (size_t)t * qrow + (size_t)h * j->hd;
#if RK_X86
        if (j->isa >= 2 && j->hd % 16 == 0) { head_avx512(j, q, j->k + koff, j->v + koff, o, n, s); continue; }
        if (j->isa >= 1 && j->hd % 8 == 0) { head_avx2(j, q, j->k + koff, j->v + koff, o, n, s); continue; }
#endif
        head_scalar(j, q, j->k + koff, j->v + koff, o, n, s);
    }
}

void rk_attention_isa(int isa, const float *q, const float *k, const float *v, float *out, int T, int pos0,
                      int n_head, int n_kv, int hd, int kv_stride, float scale) {
    if (T <= 0 || n_head <= 0 || n_kv <= 0 || hd <= 0 || n_head % n_kv) return;
    if (isa > rk_isa_hw()) isa = rk_isa_hw();
    const int nth = rk_in_parallel() ? 1 : rk_threads_count();
    att_job j = {q, k, v, out, T, pos0, n_head, n_kv, hd, kv_stride, isa, scale, NULL, 0, nth, 0};
    j.per_thread = ((size_t)(pos0 + T) + 16 + 15) & ~(size_t)15;
    pthread_mutex_lock(&g_lock);
    const size_t need = j.per_thread * (size_t)nth;
    if (need > g_scores_cap) {
        free(g_scores);
        g_scores = (float *)aligned_alloc(64, ((need + need / 4) * 4 + 63) & ~(size_t)63);
        g_scores_cap = g_scores ? need + need / 4 : 0;
    }
    if (g_scores) {
        j.scores = g_scores;
        atomic_store_explicit(&j.next, 0, memory_order_relaxed);
        if (nth > 1 && (int64_t)T * n_head > 1) rk_parallel(att_task, &j);
        else att_task(&j, 0, 1);
    }
    pthread_mutex_unlock(&g_lock);
}

void rk_attention(const float *q, const float *k, const float *v, float *out, int T, int pos0, int n_head, int n_kv,
                  int hd, int kv_stride, float scale) {
    rk_attention_isa(rk_isa(), q, k, v, out, T, pos0, n_head, n_kv, hd, kv_stride, scale);
}
