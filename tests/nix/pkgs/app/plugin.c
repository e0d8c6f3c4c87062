int core_value(void);
int plugin_value(void) { return core_value() + 2; }
