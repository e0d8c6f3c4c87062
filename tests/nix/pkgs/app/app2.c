#include <stdio.h>
#include <base.h>
#include <mid.h>
int extra_value(void);
int main(void) { printf("app2 %d %d %d\n", mid_value(), base_value(), extra_value()); return 0; }
