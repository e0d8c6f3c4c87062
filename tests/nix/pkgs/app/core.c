#include <mid.h>
int core_value(void) { return mid_value() * 10; }
