/* Fixture: a perfectly good shared object that is not an llmcache plugin
 * (no llmc_plugin_entry). */
__attribute__((visibility("default"))) int not_a_plugin(void);
__attribute__((visibility("default"))) int not_a_plugin(void) { return 42; }
