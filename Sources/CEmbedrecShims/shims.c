/* The shims are header-only (static inline); this file makes the target a C module. */
#include "embedrec_shims.h"
