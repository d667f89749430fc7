/* Small json-c helpers shared by the anthropic, gemini and ollama
 * adapters. Internal (llmc__ prefix), not installed.
 *
 * json-c's getters take non-const objects; requests reach the adapters
 * as const pointers, so these helpers cast once here instead of at every
 * call site. None of them modifies its input. */
#ifndef LLMC_PROVIDERS_XJSON_H
#define LLMC_PROVIDERS_XJSON_H

#include <json-c/json.h>
#include <stdint.h>

#include "llmcache/common.h"

/* Member `k` of `o` when `o` is an object, else NULL. Borrowed. */
json_object *llmc__xj_get(const json_object *o, const char *k);
/* Member `k` when it is a string (else NULL). Borrowed. */
const char *llmc__xj_str(const json_object *o, const char *k);
/* Member `k` as an integer when it is a number; *out untouched and 0
 * returned otherwise. */
int llmc__xj_int(const json_object *o, const char *k, int64_t *out);
/* 1 when `o` has member `k` and it is not JSON null. */
int llmc__xj_has(const json_object *o, const char *k);
/* Add a new reference of `v` to `o` under `k`. */
void llmc__xj_put_ref(json_object *o, const char *k, json_object *v);
/* Add a string member. */
void llmc__xj_put_str(json_object *o, const char *k, const char *s);
/* Add an integer member. */
void llmc__xj_put_int(json_object *o, const char *k, int64_t v);
/* Deep copy (NULL in, NULL out). */
json_object *llmc__xj_copy(const json_object *o);
/* Append a conversation turn {"role": role, field: items} to `turns`
 * (items is taken), merging it into the previous turn when that has the
 * same role: Anthropic and Gemini both want alternating roles, and a tool
 * result must join the turn right after the call. Empty items are
 * dropped. */
void llmc__xj_push_turn(json_object *turns, const char *role, const char *field,
                        json_object *items);
/* Parse a whole buffer; NULL when it is not one JSON value. */
json_object *llmc__xj_parse(const char *s, size_t len);
/* Compact serialisation, owned by `o`. */
const char *llmc__xj_dump(const json_object *o);
/* Append the text of an OpenAI content value (a string, or an array of
 * parts whose "text" members are concatenated) to *buf; returns 0, or -1
 * when a part is not text (image, audio ...) and `text_only` is set. */
int llmc__xj_content_text(const json_object *content, llmc_buf *buf, int text_only);
/* 1 when `k` is one of the NULL-terminated `list`. */
int llmc__xj_in(const char *const *list, const char *k);
/* Split "data:<mime>;base64,<data>": copies the media type into mime and
 * points *data into url. 0 when url is not such a data URL. */
int llmc__xj_data_url(const char *url, char *mime, size_t mime_cap, const char **data);
/* Case-insensitive substring test. */
int llmc__xj_ci_contains(const char *hay, const char *needle);
/* LLMC_EINVAL naming the first member of `req` that is in `unsupported`
 * and not null ("parameter \"x\" is not supported by the <provider>
 * adapter"), else LLMC_OK. */
llmc_status llmc__xj_refuse(const json_object *req, const char *const *unsupported,
                            const char *provider, llmc_err *err);
/* Copy each member of `req` that is in neither list into `body` (the
 * provider-specific parameters a caller passes through). */
void llmc__xj_passthrough(const json_object *req, const char *const *handled,
                          const char *const *unsupported, json_object *body);
/* The OpenAI image_url part's URL (string or {"url"}), or NULL. */
const char *llmc__xj_image_url(const json_object *part);

#endif
