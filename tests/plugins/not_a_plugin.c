/* A shared object without mspt_plugin_init: the host must refuse it. */
int not_a_plugin_answer(void);
int not_a_plugin_answer(void) { return 42; }
