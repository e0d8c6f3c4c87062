#include <base.h>
#include "mid.h"
int mid_value(void) { return util_twice(base_value()) + 1; }
