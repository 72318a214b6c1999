// Run-time ISA selection. Detection runs once; the force flag is read on every query so that
// rk_force_avx2 takes effect immediately.
#include "internal.h"
#include <stdatomic.h>
#include <stdlib.h>

static _Atomic int g_detected = -1; // best ISA the CPU supports
static _Atomic int g_force = -1;    // -1: not yet read from the environment

static int detect(void) {
#if RK_X86
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")))
        return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        return 2;
    return 1;
#else
    return 0;
#endif
}

int rk_isa_hw(void) {
    int d = atomic_load_explicit(&g_detected, memory_order_relaxed);
    if (d < 0) {
        d = detect();
        atomic_store(&g_detected, d);
    }
    return d;
}

int rk_isa(void) {
    const int d = rk_isa_hw();
    int f = atomic_load_explicit(&g_force, memory_order_relaxed);
    if (f < 0) {
        const char *e = getenv("RELAY_FORCE_AVX2");
        f = (e && e[0] && e[0] != '0') ? 1 : 0;
        int expected = -1;
        atomic_compare_exchange_strong(&g_force, &expected, f);
        f = atomic_load(&g_force);
    }
    return (f && d > 1) ? 1 : d;
}

void rk_force_avx2(int on) { atomic_store(&g_force, on ? 1 : 0); }

const char *rk_isa_name(void) {
    switch (rk_isa()) {
    case 2: return "AVX-512 VNNI";
    case 1: return "AVX2";
    default: return "scalar";
    }
}
