/* Internal: RFC 8785 canonical JSON writer (see canon.c). */
#ifndef LLMC_CANON_H
#define LLMC_CANON_H

#include "internal.h"
/* The v1 key hashes its material; users of the canonicaliser that hash
 * get the helpers from here too. */
#include "hash.h"

struct json_object;

llmc_status llmc__canon_value(llmc_buf *b, const struct json_object *v);
llmc_status llmc__canon_string(llmc_buf *b, const char *s, size_t n);
llmc_status llmc__canon_double(llmc_buf *b, double d);
int llmc__canon_keycmp(const char *a, size_t al, const char *b, size_t bl);
/* Member filter: return 0 to drop the member; may replace *val. */
typedef int (*llmc__canon_filter)(void *ud, const char *key, struct json_object **val);
llmc_status llmc__canon_object_filtered(llmc_buf *b, const struct json_object *v,
                                        llmc__canon_filter filter, void *ud);

/* Fixed-width integer in RFC 8785 form (exact below 2^53, as a double
 * beyond, like the json-c path). */
llmc_status llmc__canon_int64(llmc_buf *b, int64_t i);

/* keys.c: the v1 exclusion list by name and length (user included). */
int llmc__key_param_excluded_n(const char *k, size_t n);
/* keys.c: the v1 material and key around a params object written by
 * `params` (LLMC_OK, or a status that fails the key). */
typedef llmc_status (*llmc__v1_params_fn)(void *ud, llmc_buf *m);
llmc_status llmc__v1_key(llmc_call_type call, const char *provider, const char *model,
                         const char *api_base, const char *ns, llmc__v1_params_fn params,
                         void *ud, llmc_buf *key, llmc_buf *material, llmc_err *err);

#endif
