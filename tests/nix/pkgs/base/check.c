#include <stdio.h>
#include "base.h"
int main(void) { printf("base %d\n", util_twice(base_value())); return 0; }
