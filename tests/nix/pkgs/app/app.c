#include <stdio.h>
#include <base.h>
#include <mid.h>
int core_value(void);
int extra_value(void);
int main(void) {
    printf("app %d %d %d %d\n", core_value(), mid_value(), util_twice(1), extra_value());
    return 0;
}
