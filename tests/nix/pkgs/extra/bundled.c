/* A bundled copy of libbase.so.1, as packages sometimes ship: whichever run-path directory
   comes first provides it. */
int base_value(void) { return 20; }
