/*
 * What the Swift core needs from C and Swift's standard library lacks: a cache prefetch hint,
 * a vector square root, a vector multiply-add that is fused where the target CPU has one, and
 * the size of the thread's CPU affinity mask. Static inline, so the Swift compiler inlines them
 * through the Clang importer; nothing here is exported from the shared library.
 */
#ifndef EMBEDREC_SHIMS_H
#define EMBEDREC_SHIMS_H

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Asks the CPU to start loading the cache line at p for writing (a hint, never a fault). */
static inline void embedrec_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

/* Asks the CPU to start loading the cache line at p into the core's L2 but not L1 (a hint). */
static inline void embedrec_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }

/* Tells the core it is in a spin-wait loop (x86 PAUSE, Arm YIELD): about 25 ns on the VMs
 * measured, and it yields the core's pipeline to a sibling hyperthread. */
static inline void embedrec_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * How many CPUs the calling thread may run on: the bits of its affinity mask (taskset, a
 * container's cpuset, a batch scheduler's allotment), or 0 when that cannot be read. Through
 * the raw system call because glibc declares sched_getaffinity and CPU_COUNT only under
 * _GNU_SOURCE, which a header imported into Swift cannot switch on for libc's own headers.
 */
static inline int embedrec_allowed_cpus(void) {
#if defined(__linux__) && defined(SYS_sched_getaffinity)
    unsigned long long mask[16] = {0}; /* 1,024 CPUs; more and the call fails: 0 */
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof(mask), mask);
    if (bytes <= 0) return 0;
    int n = 0;
    for (long i = 0; i < bytes / 8 && i < 16; i++) n += __builtin_popcountll(mask[i]);
    return n;
#else
    return 0;
#endif
}

typedef float embedrec_float8 __attribute__((ext_vector_type(8)));

/*
 * The correctly rounded square root of each of eight lanes. Swift's SIMD8<Float>.squareRoot()
 * runs lane by lane (a scalar sqrt, an errno check and a reinsert per lane); this is one
 * vsqrtps with AVX, two sqrtps on baseline x86-64. IEEE square root is exact, so the results
 * are the same bits either way.
 */
static inline embedrec_float8 embedrec_sqrt8(embedrec_float8 x) { return __builtin_elementwise_sqrt(x); }

/*
 * Whether the multiply-adds below are fused (one rounding): when the library is compiled for a
 * CPU that has FMA (the wheel's AVX2 + FMA build: the Clang importer sees the same target CPU
 * as swiftc, so __FMA__ is defined there). Only the networks' dense products use them
 * (TileKernels), so only they differ in the last bits between the two builds; SGD and Adam
 * matrix factorisation give the same bits in both.
 */
#if defined(__FMA__)
#define EMBEDREC_FUSED_MADD 1
#else
#define EMBEDREC_FUSED_MADD 0
#endif

/* acc + a * b in each of eight lanes, fused when EMBEDREC_FUSED_MADD, else a multiply and an add. */
static inline embedrec_float8 embedrec_madd8(embedrec_float8 acc, embedrec_float8 a, embedrec_float8 b) {
#if EMBEDREC_FUSED_MADD
    return __builtin_elementwise_fma(a, b, acc);
#else
    return acc + a * b;
#endif
}

/* acc + a * b for one float, fused exactly when embedrec_madd8 is: a lane of that, alone. */
static inline float embedrec_madd1(float acc, float a, float b) {
#if EMBEDREC_FUSED_MADD
    return __builtin_fmaf(a, b, acc);
#else
    return acc + a * b;
#endif
}

/* EMBEDREC_FUSED_MADD, for Swift (which does not import the macro's #if). */
static inline int embedrec_fused_madd(void) { return EMBEDREC_FUSED_MADD; }

#endif
