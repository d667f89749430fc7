/* Helpers shared by the client and provider suites (static inline so each
 * suite stays one file plus this header). */
#ifndef LLMC_CLIENT_TEST_UTIL_H
#define LLMC_CLIENT_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fake_provider.h"
#include "llmcache/llmcache.h"

/* Parse JSON text or fail the test. Caller puts. */
static inline json_object *tu_parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    ck_assert_msg(o != NULL, "not JSON: %s", s);
    return o;
}

/* A member by dotted path ("choices.0.message.content"); NULL if absent. */
static inline json_object *tu_get(json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            char *end;
            long i = strtol(t, &end, 10);
            o = *end ? NULL : json_object_array_get_idx(o, (size_t)i);
        } else if (json_object_is_type(o, json_type_object)) {
            json_object *v = NULL;
            o = json_object_object_get_ex(o, t, &v) ? v : NULL;
        } else {
            o = NULL;
        }
    }
    return o;
}

static inline const char *tu_str(json_object *o, const char *path)
{
    json_object *v = tu_get(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static inline int64_t tu_int(json_object *o, const char *path)
{
    json_object *v = tu_get(o, path);
    return v ? json_object_get_int64(v) : -999999;
}

/* A cache opened from url with query ("a=1&b=2") appended to its own
 * query, or the test fails with the open's message. */
static inline llmc_cache *tu_cache_open_query(const char *url, const char *query)
{
    size_t n = strlen(url) + strlen(query) + 2;
    char *u = malloc(n);
    ck_assert_ptr_nonnull(u);
    snprintf(u, n, "%s%s%s", url, strchr(url, '?') ? "&" : "?", query);
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_status st = llmc_cache_open(u, NULL, &c, &e);
    free(u);
    ck_assert_msg(st == LLMC_OK, "%s", e.msg);
    return c;
}

/* A client with the given "name=value" options (NULL-terminated). */
static inline llmc_client *tu_client(llmc_cache *cache, const char *const *kv)
{
    llmc_options *o = llmc_options_new();
    for (size_t i = 0; kv && kv[i]; i += 2)
        ck_assert_int_eq(llmc_options_set(o, kv[i], kv[i + 1]), LLMC_OK);
    llmc_client *c = NULL;
    llmc_err e;
    llmc_status st = llmc_client_new(cache, o, &c, &e);
    ck_assert_msg(st == LLMC_OK, "client: %s", e.msg);
    llmc_options_free(o);
    return c;
}

/* One chat completion, plain or streamed, and what came of it: for tests
 * that run calls on threads of their own (tu_call_run as the body). */
typedef struct tu_call {
    llmc_client *cl;
    const char *body;
    int stream;
    llmc_status st;
    int hit, coalesced, stored, chunks;
    char text[600]; /* the answer's content, or the error message */
} tu_call;

static inline int tu_call_chunk(void *ud, struct json_object *chunk)
{
    (void)chunk;
    ((tu_call *)ud)->chunks++;
    return 0;
}

static inline void tu_call_run(tu_call *c)
{
    llmc_response *r = NULL;
    llmc_err e;
    if (c->stream)
        c->st = llmc_completion_stream_json(c->cl, c->body, LLMC_ZSTR, tu_call_chunk, c, &r, &e);
    else
        c->st = llmc_completion_json(c->cl, c->body, LLMC_ZSTR, &r, &e);
    if (c->st == LLMC_OK) {
        c->hit = llmc_response_cache_hit(r);
        c->coalesced = llmc_response_coalesced(r);
        c->stored = llmc_response_cache_stored(r);
        const char *t = llmc_response_content(r);
        snprintf(c->text, sizeof c->text, "%s", t ? t : "");
    } else {
        snprintf(c->text, sizeof c->text, "%s", e.msg);
    }
    llmc_response_free(r);
}

/* Body of a recorded request, parsed. Caller puts. */
static inline json_object *tu_body(const fp_request *r)
{
    ck_assert_ptr_nonnull(r);
    return tu_parse(r->body);
}

/* Collects stream chunks. */
typedef struct tu_chunks {
    json_object *arr;
    int stop_after; /* 0 = never */
} tu_chunks;

static inline int tu_chunk_cb(void *ud, struct json_object *chunk)
{
    tu_chunks *c = ud;
    if (!c->arr)
        c->arr = json_object_new_array();
    json_object_array_add(c->arr, json_object_get(chunk));
    if (c->stop_after && (int)json_object_array_length(c->arr) >= c->stop_after)
        return 1;
    return 0;
}

static inline size_t tu_nchunks(const tu_chunks *c)
{
    return c->arr ? json_object_array_length(c->arr) : 0;
}

/* Concatenate choices[0].delta.<field> over the chunks. */
static inline void tu_join(const tu_chunks *c, const char *field, char *out, size_t outsz,
                           int *pieces)
{
    out[0] = '\0';
    if (pieces)
        *pieces = 0;
    size_t used = 0;
    for (size_t i = 0; i < tu_nchunks(c); i++) {
        char path[64];
        snprintf(path, sizeof path, "choices.0.delta.%s", field);
        const char *s = tu_str(json_object_array_get_idx(c->arr, i), path);
        if (s) {
            used += (size_t)snprintf(out + used, used < outsz ? outsz - used : 0, "%s", s);
            if (pieces && *s)
                (*pieces)++;
        }
    }
}

/* The chunks' "type" members, space-separated (typed stream events);
 * with runs, a run of one type is written once (replays split text into
 * their own number of deltas). */
static inline void tu_types(const tu_chunks *c, char *out, size_t n, int runs)
{
    size_t used = 0;
    const char *prev = NULL;
    out[0] = '\0';
    for (size_t i = 0; i < tu_nchunks(c); i++) {
        const char *t = tu_str(json_object_array_get_idx(c->arr, i), "type");
        if (runs && t && prev && strcmp(t, prev) == 0)
            continue;
        used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%s", i ? " " : "", t);
        prev = t;
    }
}

static inline void tu_chunks_free(tu_chunks *c)
{
    if (c->arr)
        json_object_put(c->arr);
    c->arr = NULL;
}

#endif
