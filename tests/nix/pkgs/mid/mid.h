int mid_value(void);
