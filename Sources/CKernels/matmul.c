// rk_matmul: quantise the activations once, then hand out (row chunk x token chunk) tiles to the
// pool. Row chunks are sized to stay in L1 while every token of the token chunk uses them; token
// chunks are sized so their activations stay in L2.
#include "internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

// Serialises callers on different threads: the activation scratch is shared. A call made from
// inside a pool job (it then runs single-threaded) uses a per-thread scratch instead, so it
// never waits for that lock while the pool is held.
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scratch_buf { uint8_t *p; size_t cap; } g_scratch;
static _Thread_local struct scratch_buf tl_scratch;

static uint8_t *scratch(struct scratch_buf *b, size_t bytes) { // grow-only, 64-byte aligned
    if (bytes > b->cap) {
        free(b->p);
        size_t cap = bytes + bytes / 4;
        cap = (cap + 63) & ~(size_t)63;
        b->p = (uint8_t *)aligned_alloc(64, cap);
        b->cap = b->p ? cap : 0;
    }
    return b->p;
}

typedef struct {
    rk_kernel k;
    const uint8_t *W;
    size_t rs;
    int rows, K, T;
    const float *x;
    rk_act act;
    float *y;
    int rchunk, tchunk, nrc, ntc;
} mm_job;

static void quant_task(void *p, int ith, int nth) {
    mm_job *j = (mm_job *)p;
#if RK_X86
    const int t0 = (int)((int64_t)j->T * ith / nth), t1 = (int)((int64_t)j->T * (ith + 1) / nth);
    for (int t = t0; t < t1; t++) {
        uint8_t *dst = (uint8_t *)j->act.base + (size_t)t * j->act.stride;
        const float *xt = j->x + (size_t)t * j->K;
        if (j->k.act == ACT_Q8K) rk_quantize_act_q8k(xt, j->K, dst, &j->act);
        else rk_quantize_act_g(xt, j->K, dst, &j->k);
    }
#else
    (void)j; (void)ith; (void)nth;
#endif
}

// Tile i of a product: row chunk i % nrc of token chunk i / nrc.
static void mm_tile(const mm_job *j, int i) {
    const int tc = i / j->nrc, rc = i % j->nrc;
    const int r0 = rc * j->rchunk, r1 = r0 + j->rchunk < j->rows ? r0 + j->rchunk : j->rows;
    const int t0 = tc * j->tchunk, t1 = t0 + j->tchunk < j->T ? t0 + j->tchunk : j->T;
    j->k.fn(j->W, j->rs, r0, r1, j->K, &j->act, t0, t1, j->y, j->rows);
}

// The tiles of several products in one queue: threads take the next tile whichever product it is in.
#define RK_MAX_PRODUCTS 4
typedef struct {
    mm_job *jobs;
    int n;
    int start[RK_MAX_PRODUCTS + 1]; // first tile of each product; start[n] = all tiles
    _Atomic int next;
} many_job;

static void many_task(void *p, int ith, int nth) {
    (void)ith; (void)nth;
    many_job *m = (many_job *)p;
    for (;;) {
        const int i = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
        if (i >= m->start[m->n]) break;
        int s = 0;
        while (i >= m->start[s + 1]) s++;
        mm_tile(&m->jobs[s], i - m->start[s]);
    }
}

// ---- portable fallback (no AVX2): dequantise a row, float dot ----------------------------------

typedef struct {
    int type;
    const uint8_t *W;
    size_t rs;
    int rows, K, T;
    const float *x;
    float *y;
    float *buf; // K floats per thread
    int nbuf;
    _Atomic int next;
} gen_job;

static void gen_task(void *p, int ith, int nth) {
    (void)nth;
    gen_job *j = (gen_job *)p;
    if (ith >= j->nbuf) return; // pool grew since we sized the scratch: the others take the work
    float *w = j->buf + (size_t)ith * j->K;
    for (;;) {
        const int r = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (r >= j->rows) break;
        rk_dequantize_row(j->type, j->W + (size_t)r * j->rs, w, j->K);
        for (int t = 0; t < j->T; t++) {
            const float *x = j->x + (size_t)t * j->K;
            float s = 0;
            for (int k = 0; k < j->K; k++) s += w[k] * x[k];
            j->y[(size_t)t * j->rows + r] = s;
        }
    }
}

static int get_kernel(int isa, int type, rk_kernel *k) {
    if (isa >= 2 && rk_kernel_avx512(type, k)) return 1;
    if (isa >= 1 && rk_kernel_avx2(type, k)) return 1;
    return 0;
}

int rk_activation_block(int isa, int type) {
    if (isa > rk_isa_hw()) isa = rk_isa_hw();
    rk_kernel k;
    if (!rk_type_supported(type) || !get_kernel(isa, type, &k) || k.act == ACT_NONE) return 0;
    return k.act == ACT_Q8K ? QKK : (k.halves ? k.BE / 2 : k.BE);
}

// Points j at W (row stride rs), x and y for kernel k, and sizes its tiles for nth threads.
static void plan(mm_job *j, const rk_kernel *k, const uint8_t *W, size_t rs, int rows, int K, const float *x, int T, float *y, int nth) {
    j->k = *k;
    j->W = W;
    j->rs = rs;
    j->rows = rows;
    j->K = K;
    j->T = T;
    j->x = x;
    j->y = y;
    rk_act_layout(&j->act, k, K, k->act == ACT_NONE ? (const uint8_t *)x : NULL);
    // Token chunk: activations of the chunk fit comfortably in L2; a multiple of the kernels' 8.
    int tchunk = (int)((384 * 1024) / j->act.stride);
    if (tchunk < 8) tchunk = 8;
    tchunk &= ~7;
    if (tchunk >= T) tchunk = T;
    // Row chunk: ~16 KiB of weights (stays in L1 across the token chunk), but enough chunks to keep
    // every thread busy. Up to SMALL_T tokens the kernels take all tokens row by row, so there is no
    // reuse to keep and only balance matters; small chunks there also break each thread's weight
    // stream into pieces the prefetchers restart on (4 tokens of the 0.5B model at times cost 2.2x
    // one token with 16 KiB chunks, against 1.3-1.6x with these).
    int rchunk;
    if (T <= SMALL_T || k->by_row) {
        rchunk = rows / (nth * 8);
    } else {
        rchunk = (int)((16 * 1024) / rs);
        const int ntc = (T + tchunk - 1) / tchunk;
        const int want = nth * 4;
        if ((int64_t)ntc * ((rows + rchunk - 1) / (rchunk ? rchunk : 1)) < want) rchunk = rows * ntc / want;
    }
    rchunk = (rchunk + 3) & ~3;
    if (rchunk < 4) rchunk = 4;
    if (rchunk > rows) rchunk = rows;
    j->rchunk = rchunk;
    j->tchunk = tchunk;
    j->nrc = (rows + rchunk - 1) / rchunk;
    j->ntc = (T + tchunk - 1) / tchunk;
}

// Kernels that read the same quantised activations (the layout depends on these alone).
static int same_act(const rk_kernel *a, const rk_kernel *b) {
    if (a->act != b->act) return 0;
    if (a->act == ACT_GRP) return a->G == b->G && a->BE == b->BE && a->halves == b->halves && a->off == b->off && a->lane == b->lane && a->lane8 == b->lane8;
    return 1;
}

// Quantises j's input into buf (act.stride * T bytes), on the pool when it is large.
static void quantize(mm_job *j, uint8_t *buf, int nth) {
    j->act.base = buf;
    if (j->T * (int64_t)j->K >= 32768 && nth > 1) rk_parallel(quant_task, j);
    else quant_task(j, 0, 1);
}

// Runs the tiles of n planned (and quantised) products as one job: the threads meet once.
static void execute(mm_job *jobs, int n, int nth) {
    many_job m = {.jobs = jobs, .n = n};
    int64_t work = 0;
    m.start[0] = 0;
    for (int i = 0; i < n; i++) {
        m.start[i + 1] = m.start[i] + jobs[i].nrc * jobs[i].ntc;
        work += (int64_t)jobs[i].rows * jobs[i].K * jobs[i].T;
    }
    atomic_store_explicit(&m.next, 0, memory_order_relaxed);
    if (nth > 1 && work >= 65536) rk_parallel(many_task, &m);
    else many_task(&m, 0, 1);
}

// Quantises x for kernel k and runs it over W (row stride rs) on the pool.
static void run(const rk_kernel *k, const uint8_t *W, size_t rs, int rows, int K, const float *x, int T, float *y,
                struct scratch_buf *sb, int nth) {
    mm_job j;
    plan(&j, k, W, rs, rows, K, x, T, y, nth);
    if (k->act != ACT_NONE) {
        uint8_t *buf = scratch(sb, j.act.stride * (size_t)T);
        if (!buf) return;
        quantize(&j, buf, nth);
    }
    execute(&j, 1, nth);
}

void rk_matmul_isa(int isa, int type, const void *W, int rows, int K, const float *x, int T, float *y) {
    if (rows <= 0 || T <= 0) return;
    if (isa > rk_isa_hw()) isa = rk_isa_hw();
    const size_t rs = rk_row_size(type, K);
    if (!rs || !rk_type_supported(type)) return;
    const int nested = rk_in_parallel();
    const int nth = nested ? 1 : rk_threads_count();
    struct scratch_buf *sb = nested ? &tl_scratch : &g_scratch;
    if (!nested) pthread_mutex_lock(&g_lock);
    rk_kernel k;
    if (get_kernel(isa, type, &k)) {
        run(&k, (const uint8_t *)W, rs, rows, K, x, T, y, sb, nth);
    } else {
        gen_job g = {type, (const uint8_t *)W, rs, rows, K, T, x, y, NULL, nth, 0};
        g.buf = (float *)scratch(sb, (size_t)K * 4 * (size_t)nth);
        if (g.buf) rk_parallel(gen_task, &g);
    }
    if (!nested) pthread_mutex_unlock(&g_lock);
}

void rk_matmul(int type, const void *W, int rows, int K, const float *x, int T, float *y) {
    rk_matmul_isa(rk_isa(), type, W, rows, K, x, T, y);
}

// ---- packed weights ---------------------------------------------------------------------------

// A packed copy is read by the kernel of the ISA that packed it: the plain functions use
// rk_isa(), so rk_force_avx2 must not change while packed copies are in use.
static int get_packed_kernel(int isa, int type, rk_kernel *k) {
    if (isa > rk_isa_hw()) isa = rk_isa_hw();
    if (isa >= 2) return rk_kernel_avx512_packed(type, k);
    return isa == 1 && rk_kernel_avx2_packed(type, k);
}

size_t rk_packed_row_size_isa(int isa, int type, int K) {
    if (isa > rk_isa_hw()) isa = rk_isa_hw();
    rk_kernel k;
    if (!rk_row_size(type, K) || !get_packed_kernel(isa, type, &k)) return 0;
    return isa >= 2 ? rk_packed_row_size_avx512(type, K) : rk_packed_row_size_avx2(type, K);
}

size_t rk_packed_row_size(int type, int K) { return rk_packed_row_size_isa(rk_isa(), type, K); }

typedef struct { int isa, type, rows, K; const uint8_t *W; uint8_t *dst; size_t rs; } pack_job;

static void pack_task(void *p, int ith, int nth) {
    pack_job *j = (pack_job *)p;
    const int r0 = (int)((int64_t)j->rows * ith / nth), r1 = (int)((int64_t)j->rows * (ith + 1) / nth);
    if (j->isa >= 2) rk_pack_rows_avx512(j->type, j->W, j->rs, r0, r1, j->K, j->dst);
    else rk_pack_rows_avx2(j->type, j->W, j->rs, r0, r1, j->K, j->dst);
}

void rk_pack_isa(int isa, int type, const void *W, int rows, int K, void *dst) {
    if (isa > rk_isa_hw()) isa = rk_isa_hw();
    pack_job j = {isa, type, rows, K, (const uint8_t *)W, (uint8_t *)dst, rk_row_size(type, K)};
    if (!rk_packed_row_size_isa(isa, type, K)) return;
    if (rk_in_parallel()) pack_task(&j, 0, 1);
    else rk_parallel(pack_task, &j);
}

void rk_pack(int type, const void *W, int rows, int K, void *dst) { rk_pack_isa(rk_isa(), type, W, rows, K, dst); }

void rk_matmul_packed_isa(int isa, int type, const void *P, int rows, int K, const float *x, int T, float *y) {
    if (rows <= 0 || T <= 0) return;
    const size_t rs = rk_packed_row_size_isa(isa, type, K);
    rk_kernel k;
    if (!rs || !get_packed_kernel(isa, type, &k)) return;
    const int nested = rk_in_parallel();
    struct scratch_buf *sb = nested ? &tl_scratch : &g_scratch;
    if (!nested) pthread_mutex_lock(&g_lock);
    run(&k, (const uint8_t *)P, rs, rows, K, x, T, y, sb, nested ? 1 : rk_threads_count());
    if (!nested) pthread_mutex_unlock(&g_lock);
}

void rk_matmul_packed(int type, const void *P, int rows, int K, const float *x, int T, float *y) {
    rk_matmul_packed_isa(rk_isa(), type, P, rows, K, x, T, y);
}

// ---- several products over one input -----------------------------------------------------------

void rk_matmul_many(const rk_product *p, int n, int K, const float *x, int T) {
    if (T <= 0 || n <= 0) return;
    rk_kernel k[RK_MAX_PRODUCTS];
    size_t rs[RK_MAX_PRODUCTS];
    int ok = n <= RK_MAX_PRODUCTS;
    for (int i = 0; ok && i < n; i++) {
        ok = p[i].rows > 0;
        if (p[i].packed) {
            rs[i] = rk_packed_row_size(p[i].type, K);
            ok = ok && rs[i] && get_packed_kernel(rk_isa(), p[i].type, &k[i]);
        } else {
            rs[i] = rk_row_size(p[i].type, K);
            ok = ok && rs[i] && rk_type_supported(p[i].type) && get_kernel(rk_isa(), p[i].type, &k[i]);
        }
    }
    if (!ok) { // one at a time (the portable fallback, or more products than one job holds)
        for (int i = 0; i < n; i++) {
            if (p[i].packed) rk_matmul_packed(p[i].type, p[i].W, p[i].rows, K, x, T, p[i].y);
            else rk_matmul(p[i].type, p[i].W, p[i].rows, K, x, T, p[i].y);
        }
        return;
    }
    const int nested = rk_in_parallel();
    const int nth = nested ? 1 : rk_threads_count();
    struct scratch_buf *sb = nested ? &tl_scratch : &g_scratch;
    if (!nested) pthread_mutex_lock(&g_lock);
    mm_job jobs[RK_MAX_PRODUCTS];
    size_t at[RK_MAX_PRODUCTS], bytes = 0;
    int source[RK_MAX_PRODUCTS]; // the earlier product whose quantised input product i reads, or i
    for (int i = 0; i < n; i++) {
        plan(&jobs[i], &k[i], (const uint8_t *)p[i].W, rs[i], p[i].rows, K, x, T, p[i].y, nth);
        source[i] = i;
        for (int e = 0; e < i; e++)
            if (source[e] == e && same_act(&k[e], &k[i])) { source[i] = e; break; }
        at[i] = bytes;
        if (k[i].act != ACT_NONE && source[i] == i) bytes += (jobs[i].act.stride * (size_t)T + 63) & ~(size_t)63;
    }
    uint8_t *buf = bytes ? scratch(sb, bytes) : NULL;
    if (!bytes || buf) {
        for (int i = 0; i < n; i++) {
            if (k[i].act == ACT_NONE) continue;
            if (source[i] == i) quantize(&jobs[i], buf + at[i], nth);
            else jobs[i].act.base = jobs[source[i]].act.base;
        }
        execute(jobs, n, nth);
    }
    if (!nested) pthread_mutex_unlock(&g_lock);
}
