// Persistent thread pool. Workers spin on a generation counter for a while after each job (a
// decode step issues hundreds of short jobs, so a futex/condvar round trip per job would cost more
// than the work), then block on a condition variable so an idle process uses no CPU.
// A job's parts (ith = 0..nth-1) are claimed, not assigned: the caller runs part 0, then every part
// no worker has claimed yet, and waits only for the parts workers are running. On a machine shared
// with other work a worker that is not scheduled costs nothing: with two busy loops beside it, a
// 21-token SmolLM2 answer took 1.39-3.26 s with fixed parts and 0.51-0.87 s with claimed ones
// (relay generate, 2 threads, 2-core AVX2 host).
#define _GNU_SOURCE
#include "internal.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define RK_MAX_THREADS 256

static inline void cpu_relax(void) {
#if RK_X86
    _mm_pause();
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct {
    unsigned start_gen;
} worker_arg;

static struct {
    pthread_mutex_t lock; // one job (or resize) at a time: callers on different threads queue here
    pthread_mutex_t sleep_mx;
    pthread_cond_t sleep_cv;
    _Atomic unsigned gen; // bumped once per job; workers run the job when it changes
    _Atomic uint64_t claim; // (job's gen << 32) | next unclaimed part
    _Atomic int done;     // parts workers finished in the current job
    _Atomic int sleepers; // workers blocked on sleep_cv
    _Atomic int quit;
    rk_task_fn fn;
    void *ctx;
    int nth;
    int nworkers;
    pthread_t tid[RK_MAX_THREADS];
    worker_arg args[RK_MAX_THREADS];
    uint64_t spin_ns;
} P = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .sleep_mx = PTHREAD_MUTEX_INITIALIZER,
    .sleep_cv = PTHREAD_COND_INITIALIZER,
    .nth = 1,
};

// Set while a thread runs a pool job, so nested rk_parallel calls run inline instead of deadlocking.
static _Thread_local int tl_in_job;

int rk_in_parallel(void) { return tl_in_job; }

// Claims the next part of job `g`: its index, or -1 when every part is taken or the job is over.
static int claim_part(unsigned g, int nth) {
    uint64_t cur = atomic_load_explicit(&P.claim, memory_order_acquire);
    for (;;) {
        if ((unsigned)(cur >> 32) != g || (int)(cur & 0xffffffffu) >= nth) return -1;
        if (atomic_compare_exchange_weak_explicit(&P.claim, &cur, cur + 1, memory_order_acq_rel, memory_order_acquire))
            return (int)(cur & 0xffffffffu);
    }
}

static void *worker_main(void *p) {
    worker_arg *a = (worker_arg *)p;
    unsigned seen = a->start_gen;
    tl_in_job = 1;
    for (;;) {
        unsigned g;
        uint64_t t0 = 0;
        for (unsigned i = 1;; i++) {
            g = atomic_load_explicit(&P.gen, memory_order_acquire);
            if (g != seen) break;
            cpu_relax();
            if ((i & 255) == 0) {
                uint64_t t = now_ns();
                if (t0 == 0) {
                    t0 = t;
                } else if (t - t0 > P.spin_ns) {
                    pthread_mutex_lock(&P.sleep_mx);
                    atomic_fetch_add(&P.sleepers, 1);
                    while ((g = atomic_load(&P.gen)) == seen)
                        pthread_cond_wait(&P.sleep_cv, &P.sleep_mx);
                    atomic_fetch_sub(&P.sleepers, 1);
                    pthread_mutex_unlock(&P.sleep_mx);
                    break;
                }
            }
        }
        seen = g;
        if (atomic_load_explicit(&P.quit, memory_order_acquire)) break;
        const int nth = __atomic_load_n(&P.nth, __ATOMIC_RELAXED);
        for (int ith; (ith = claim_part(g, nth)) >= 0;) {
            P.fn(P.ctx, ith, nth);   // set before the claim word was published, and kept until `done` counts this part
            atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
        }
    }
    return NULL;
}

static void bump_and_wake(void) {
    atomic_fetch_add(&P.gen, 1); // seq_cst: pairs with the sleepers increment in worker_main
    if (atomic_load(&P.sleepers) > 0) {
        pthread_mutex_lock(&P.sleep_mx);
        pthread_cond_broadcast(&P.sleep_cv);
        pthread_mutex_unlock(&P.sleep_mx);
    }
}

static void stop_workers(void) {
    if (P.nworkers == 0) return;
    atomic_store(&P.quit, 1);
    bump_and_wake();
    for (int i = 0; i < P.nworkers; i++) pthread_join(P.tid[i], NULL);
    atomic_store(&P.quit, 0);
    P.nworkers = 0;
}

void rk_threads_init(int n) {
    if (n < 1) n = 1;
    if (n > RK_MAX_THREADS) n = RK_MAX_THREADS;
    pthread_mutex_lock(&P.lock);
    if (P.spin_ns == 0) {
        const char *e = getenv("RELAY_SPIN_US");
        long us = e ? atol(e) : 2000;
        if (us < 1) us = 1;
        P.spin_ns = (uint64_t)us * 1000u;
    }
    if (n != P.nth || P.nworkers != n - 1) {
        stop_workers();
        __atomic_store_n(&P.nth, n, __ATOMIC_RELAXED);
        unsigned g = atomic_load(&P.gen);
        for (int i = 0; i < n - 1; i++) {
            P.args[i].start_gen = g;
            if (pthread_create(&P.tid[i], NULL, worker_main, &P.args[i]) != 0) {
                __atomic_store_n(&P.nth, i + 1, __ATOMIC_RELAXED); // run with what we have
                break;
            }
            P.nworkers = i + 1;
        }
    }
    pthread_mutex_unlock(&P.lock);
}

int rk_threads_count(void) { return __atomic_load_n(&P.nth, __ATOMIC_RELAXED); }

void rk_parallel(rk_task_fn fn, void *ctx) {
    if (tl_in_job) { // nested: the pool is busy with our caller
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&P.lock);
    const int nth = P.nth;
    if (nth <= 1) {
        tl_in_job = 1;
        fn(ctx, 0, 1);
        tl_in_job = 0;
        pthread_mutex_unlock(&P.lock);
        return;
    }
    P.fn = fn;
    P.ctx = ctx;
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    const unsigned g = atomic_load(&P.gen) + 1;
    atomic_store_explicit(&P.claim, ((uint64_t)g << 32) | 1u, memory_order_release);   // part 0 is the caller's
    bump_and_wake();
    tl_in_job = 1;
    fn(ctx, 0, nth);
    // The parts no worker has started: a worker not scheduled yet must not hold the job up.
    int mine = 1;
    for (int ith; (ith = claim_part(g, nth)) >= 0; mine++) fn(ctx, ith, nth);
    tl_in_job = 0;
    // Then only the parts workers are running (a worker preempted mid-part is waited for).
    for (unsigned i = 1; atomic_load_explicit(&P.done, memory_order_acquire) < nth - mine; i++) {
        cpu_relax();
        if (i > (1u << 16)) sched_yield();
    }
    pthread_mutex_unlock(&P.lock);
}

// ---- Read bandwidth: each thread sums its slice of a buffer with 256-bit loads ----

typedef struct {
    const float *p;
    size_t n;          // floats
    float sums[RK_MAX_THREADS];
} read_job;

static void read_range(const read_job *j, int ith, int nth, size_t *a, size_t *b) {
    const size_t per = (j->n / (size_t)nth) & ~(size_t)31;
    *a = per * (size_t)ith;
    *b = ith == nth - 1 ? j->n : *a + per;
}

#if RK_X86
RK_AVX2 static void read_task_avx2(void *ctx, int ith, int nth) {
    read_job *j = ctx;
    size_t a, b;
    read_range(j, ith, nth, &a, &b);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = a; i < b; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(j->p + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(j->p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(j->p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(j->p + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    j->sums[ith] = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
#endif

static void read_task(void *ctx, int ith, int nth) {
    read_job *j = ctx;
    size_t a, b;
    read_range(j, ith, nth, &a, &b);
    float s = 0;
    for (size_t i = a; i < b; i++) s += j->p[i];
    j->sums[ith] = s;
}

double rk_read_bandwidth(size_t bytes, int repetitions) {
    const size_t n = (bytes / sizeof(float)) & ~(size_t)31;
    float *p = aligned_alloc(64, n * sizeof(float));
    if (!p) return 0;
    for (size_t i = 0; i < n; i++) p[i] = (float)(i & 7);   // touch every page before timing
    read_job j = {p, n, {0}};
    double best = 0;
    for (int r = 0; r < repetitions; r++) {
        const uint64_t t0 = now_ns();
#if RK_X86
        rk_parallel(rk_isa_hw() >= 1 ? read_task_avx2 : read_task, &j);
#else
        rk_parallel(read_task, &j);
#endif
        const double s = (double)(now_ns() - t0) / 1e9;
        if (s > 0 && (double)(n * sizeof(float)) / s > best) best = (double)(n * sizeof(float)) / s;
    }
    volatile float keep = j.sums[0];   // the sums are the loop's result: keep the compiler from dropping it
    (void)keep;
    free(p);
    return best;
}
