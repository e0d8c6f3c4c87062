int answer(void);
int greet(void) { return answer(); }
