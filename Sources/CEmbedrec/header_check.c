/* Compiles the public header as C (warnings are errors in the test build of the Python
 * package too), so a header that stops being valid C fails `swift build`. */
#include "embedrec.h"

_Static_assert(sizeof(int32_t) == 4, "int32_t must be 4 bytes");
_Static_assert(sizeof(EmbedrecModelHandle) == sizeof(void *), "handles are pointers");
