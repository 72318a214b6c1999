// Persistent thread pool. Workers spin on a generation counter for a while after each job (a
// decode step issues hundreds of short jobs, so a futex/condvar round trip per job would cost more
// than the work), then block on a condition variable so an idle process uses no CPU.
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
    int ith;
    unsigned start_gen;
} worker_arg;

static struct {
    pthread_mutex_t lock; // one job (or resize) at a time: callers on different threads queue here
    pthread_mutex_t sleep_mx;
    pthread_cond_t sleep_cv;
    _Atomic unsigned gen; // bumped once per job; workers run the job when it changes
    _Atomic int done;     // workers finished with the current job
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

static void *worker_main(void *p) {
    worker_arg *a = (worker_arg *)p;
    const int ith = a->ith;
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
        P.fn(P.ctx, ith, P.nth);
        atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
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
            P.args[i].ith = i + 1;
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
    bump_and_wake();
    tl_in_job = 1;
    fn(ctx, 0, nth);
    tl_in_job = 0;
    // A worker may have been preempted (shared machine): stop burning the core after a while.
    for (unsigned i = 1; atomic_load_explicit(&P.done, memory_order_acquire) < nth - 1; i++) {
        cpu_relax();
        if (i > (1u << 16)) sched_yield();
    }
    pthread_mutex_unlock(&P.lock);
}
