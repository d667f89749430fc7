/* llmcache: option lists.
 *
 * Options configure caches (and clients) the same way URL query options
 * do: `local://?max_entries=1000` and an option list holding
 * max_entries=1000 mean the same thing. Values are kept as strings and
 * validated by whoever consumes them, so an error names the option. */
#ifndef LLMCACHE_OPTIONS_H
#define LLMCACHE_OPTIONS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct llmc_options llmc_options;

/* Create an empty option list. Returns NULL on allocation failure.
 * Free with llmc_options_free. */
LLMC_API llmc_options *llmc_options_new(void);
/* Free an option list. NULL is accepted. */
LLMC_API void llmc_options_free(llmc_options *o);
/* Deep copy. Returns NULL on allocation failure or if `o` is NULL. */
LLMC_API llmc_options *llmc_options_dup(const llmc_options *o);

/* Set `name` to a copy of `value`, replacing an earlier value. Names are
 * case-insensitive. LLMC_EINVAL for an empty name or NULL value. */
LLMC_API llmc_status llmc_options_set(llmc_options *o, const char *name,
                                      const char *value);
/* Set `name` to the decimal form of `value`. */
LLMC_API llmc_status llmc_options_set_int(llmc_options *o, const char *name,
                                          int64_t value);
/* Remove `name`; LLMC_MISS if it was not set. */
LLMC_API llmc_status llmc_options_unset(llmc_options *o, const char *name);

/* The value of `name`, or NULL. The pointer lives until the option is
 * replaced or the list is freed. `o` may be NULL. */
LLMC_API const char *llmc_options_get(const llmc_options *o, const char *name);
/* Number of options and the i-th name/value (in insertion order). */
LLMC_API size_t llmc_options_count(const llmc_options *o);
LLMC_API const char *llmc_options_name_at(const llmc_options *o, size_t i);
LLMC_API const char *llmc_options_value_at(const llmc_options *o, size_t i);

/* Typed getters for components. If `name` is unset, *out = def and OK.
 * If set but not an integer in [min, max] (or not a boolean: 1/0,
 * true/false, yes/no, on/off), LLMC_EINVAL with a message naming the
 * option and the accepted range in `err`. */
LLMC_API llmc_status llmc_options_get_i64(const llmc_options *o, const char *name,
                                          int64_t min, int64_t max, int64_t def,
                                          int64_t *out, llmc_err *err);
LLMC_API llmc_status llmc_options_get_bool(const llmc_options *o, const char *name,
                                           int def, int *out, llmc_err *err);

/* Parse a whole decimal integer in [min, max]; `what` names it in the
 * error message. Shared by every component so errors read the same. */
LLMC_API llmc_status llmc_parse_i64(const char *s, const char *what, int64_t min,
                                    int64_t max, int64_t *out, llmc_err *err);

#ifdef __cplusplus
}
#endif
#endif
