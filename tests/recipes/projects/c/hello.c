#include <stdio.h>
int greet(void);
int main(void) { printf("%d\n", greet()); return 0; }
