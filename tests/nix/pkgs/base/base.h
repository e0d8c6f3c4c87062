int base_value(void);
int util_twice(int x);
