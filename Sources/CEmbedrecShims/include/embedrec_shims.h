/*
 * What the Swift core needs from C and Swift's standard library lacks: a cache prefetch hint.
 * Static inline, so the Swift compiler inlines it through the Clang importer; nothing here is
 * exported from the shared library.
 */
#ifndef EMBEDREC_SHIMS_H
#define EMBEDREC_SHIMS_H

/* Asks the CPU to start loading the cache line at p for writing (a hint, never a fault). */
static inline void embedrec_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

#endif
