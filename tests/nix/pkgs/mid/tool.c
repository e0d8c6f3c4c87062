#include <stdio.h>
#include <base.h>
#include "mid.h"
int main(void) { printf("mid %d %d\n", mid_value(), base_value()); return 0; }
