#include "base.h"
int util_twice(int x) { return 2 * x + base_value() - 20; }
