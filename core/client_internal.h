/* Internals of the completion client, shared by the files that make up
 * the request pipeline (see docs/architecture.md for the picture):
 *
 *   request.c    llmc_request, the one reader of cache controls and the
 *                value view (jv) that lets it read a json-c object or
 *                the fast path's tokens alike
 *   controls.c   controls given outside the body (headers, tenant)
 *   calltypes.c  the call-type table: validation, key material, hit
 *                marking, streaming, proxy paths, one row per call type
 *   route.c      model -> provider, endpoint and credentials
 *   memo.c       exact request text -> prepared result
 *   call.c       the prepared call: prepare, lookup, execute, free
 *   embed.c      embeddings: one entry per input item
 *   upstream.c   the provider call (HTTP, streams) through the adapter
 *   stale.c      answering with entries past their freshness
 *   revalidate.c background refreshes (stale-while-revalidate)
 *   response.c   llmc_response
 *   client.c     llmc_client and the convenience wrappers
 * Not installed. */
#ifndef LLMC_CLIENT_INTERNAL_H
#define LLMC_CLIENT_INTERNAL_H

#include "internal.h"
#include "fastjson.h"
#include "net.h"

#include <json-c/json.h>

#define LLMC__JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---- cache controls ---- */
typedef struct llmc__controls {
    int no_cache;
    int no_store;
    int64_t ttl_ms;      /* LLMC_TTL_DEFAULT, 0 = never, > 0 */
    int64_t max_age_ms;  /* -1 = any */
    char *ns;            /* owned */
    int use_cache;       /* -1 unset, 0, 1 */
    char *key;           /* owned preset key */
    char *tenant;        /* owned; every key of the call lies in "tenant:" */
    /* Stale windows, ms: how long past its freshness an entry may answer
     * when the provider fails (stale-if-error) or at once while it is
     * refreshed (stale-while-revalidate); -1 = the cache's option. */
    int64_t sie_ms;
    int64_t swr_ms;
    char **api_headers;  /* owned name, value, ..., NULL (llmc_call_opts) */
    int semantic;        /* -1 unset, 0 (opted out), 1 */
    double sem_threshold; /* 0 unset; may only raise the configured one */
} llmc__controls;

void llmc__controls_init(llmc__controls *c);
void llmc__controls_free(llmc__controls *c);
/* Deep copy (strings duplicated). */
llmc_status llmc__controls_copy(llmc__controls *dst, const llmc__controls *src);

struct llmc_request {
    json_object *obj;
    llmc__controls ctl;
};

/* ---- a read-only view of a JSON value: a json-c object, or a token of
 * the fast path's document. Everything that reads a request (controls,
 * validation, routing) reads it through this view, so the fast path and
 * the json-c path cannot disagree about a rule. ---- */
typedef enum jv_kind {
    JV_ABSENT = 0, JV_NULL, JV_BOOL, JV_INT, JV_DOUBLE, JV_STRING, JV_OBJECT, JV_ARRAY
} jv_kind;

typedef struct llmc__jv {
    json_object *o;           /* json-c form, or */
    const llmc__fjdoc *d;     /* token form: d->t[i] */
    long i;                   /* -1 = absent (token form) */
    int absent;               /* json-c form: member not there */
} llmc__jv;

jv_kind llmc__jv_kind(const llmc__jv *v);
/* Member `name` of an object view (absent when not an object). */
llmc__jv llmc__jv_member(const llmc__jv *v, const char *name);
size_t llmc__jv_len(const llmc__jv *v);          /* array elements / string bytes */
int llmc__jv_bool(const llmc__jv *v);
/* Numbers: 1 = a number (*d always, *is_int and *i for integers). */
int llmc__jv_number(const llmc__jv *v, int *is_int, int64_t *i, double *d);
/* A string's decoded bytes (json-c: borrowed; tokens: appended to buf and
 * pointing into it). NULL when not a string, or a NUL inside (tokens). */
const char *llmc__jv_string(const llmc__jv *v, llmc_buf *buf, size_t *len);
/* Visit each member once with the value json-c keeps for it (the last
 * of duplicates). cb returns non-OK to stop. LLMC_ENOTSUP: the token form
 * cannot say this as json-c would (duplicate or NUL-holding names). */
typedef llmc_status (*llmc__jv_member_cb)(void *ud, const char *name, const llmc__jv *v);
llmc_status llmc__jv_foreach(const llmc__jv *v, llmc__jv_member_cb cb, void *ud);

/* The one reader of LiteLLM's `caching` and `cache: {...}` members:
 * LLMC_OK (ctl filled), LLMC_EINVAL naming the member, or LLMC_ENOTSUP
 * when a token view cannot be read exactly (the caller parses with json-c
 * and reads again). */
llmc_status llmc__read_controls(const llmc__jv *root, llmc__controls *ctl, llmc_err *err);
/* Controls given outside the body (core/controls.c): llmc_call_opts read
 * and checked, then laid over the body's (they win; a tenant confines
 * the namespace and a preset key). */
typedef struct llmc__outer {
    int no_cache, no_store;
    int64_t max_age_ms; /* -1 = not given */
    int64_t ttl_ms;     /* -2 = not given */
    int64_t sie_ms, swr_ms; /* -1 = not given */
    const char *ns;
    const char *tenant;
    const char *const *api_headers;
} llmc__outer;
llmc_status llmc__read_outer(const llmc_call_opts *o, llmc__outer *oc, llmc_err *err);
llmc_status llmc__apply_outer(llmc__controls *ctl, const llmc__outer *oc);
/* A copy of a name, value, ..., NULL list (NULL for NULL); NULL with
 * *failed set when out of memory. */
char **llmc__headers_dup(const char *const *h, int *failed);
void llmc__headers_free(char **h);
/* The value of header `name` (case-insensitive) in such a list, or NULL. */
const char *llmc__headers_get(const char *const *h, const char *name);
/* "stream": true in the request. */
int llmc__wants_stream(const llmc__jv *root);

/* ---- call types ---- */
typedef struct llmc__route llmc__route;
typedef enum llmc__hit_mark {
    LLMC__HIT_SPLICE, /* "cache": true spliced into the stored body */
    LLMC__HIT_MERGE   /* items merged into a new body marked "cache": true */
} llmc__hit_mark;

typedef struct llmc_call llmc_call;

typedef struct llmc__calltype {
    llmc_call_type type;
    const char *name;          /* llmc_call_type_name */
    const char *what;          /* for messages: "chat completion" */
    uint32_t provider_flag;    /* LLMC_PROVIDER_* the executing provider needs */
    /* Request validation beyond "model": the members this call needs. */
    llmc_status (*validate)(const llmc__jv *root, llmc_err *err);
    /* Key material: 0 = the whole request is one entry; 1 = one entry per
     * item of "input". */
    int per_item;
    llmc__hit_mark hit;
    /* Streams: 1 = chunks are captured (assembled) on a miss and the
     * stored answer is replayed as chunks on a hit. */
    int streams;
    /* The proxy's paths for this call type (NULL-terminated). */
    const char *const *paths;
    const char *label;         /* metric label */
    /* Optional hooks, for call types whose wire format is not chat's.
     * Each may be NULL: chat's behaviour then applies. */
    /* The member that makes a request depend on state the provider holds
     * (never cached: a BYPASS), or NULL. */
    const char *(*never_cached)(const llmc__jv *root);
    /* Request members left out of the key besides the common ones. */
    const char *const *key_excluded;
    /* Call the provider (instead of llmc__call_upstream): *out = the
     * answer in the call type's own shape; cb receives its events as they
     * arrive. rt->api_headers carries the call's API headers. Used by
     * execute and by the background refresh. */
    llmc_status (*upstream)(llmc_client *c, json_object *req, const llmc__route *rt,
                            llmc_chunk_cb cb, void *ud, json_object **out, int *attempts,
                            llmc_err *err);
    /* Replay a stored answer as this API's stream events (the sink
     * borrows each; LLMC_ENOMEM, LLMC_EINVAL for a non-object). Every
     * replay (hit, stale answer, llmc_response_replay, an adapter that
     * could not stream) goes through llmc__replay_as, which reads this. */
    llmc_status (*replay)(json_object *resp, llmc_chunk_sink sink, void *ud);
    /* Worth storing (complete, not failed); streamed: it came as a
     * stream, and must have finished. */
    int (*storable)(json_object *resp, int streamed);
    /* Stream events are sent as SSE "event: <type>" lines, no [DONE]. */
    int typed_events;
    /* Request headers that are part of the request (NULL-terminated;
     * NULL = none): llmc_call_opts.api_headers may name only these. */
    const char *const *headers;
    /* The object the key strategy sees (a new reference), built from the
     * request and the call's controls (its API headers). */
    llmc_status (*key_request)(json_object *req, const llmc__controls *ctl, json_object **out,
                               llmc_err *err);
    /* Assemble the events llmc__call_upstream streams into the answer
     * that is stored (add: LLMC_ENOMEM only is fatal; result: NULL when
     * there is nothing). All four or none. */
    void *(*asm_new)(void);
    llmc_status (*asm_add)(void *a, json_object *ev);
    json_object *(*asm_result)(void *a);
    void (*asm_free)(void *a);
} llmc__calltype;

/* A member name the call type keeps out of the key (keys.c). */
int llmc__calltype_key_excluded(llmc_call_type t, const char *name);

/* The messages row's hooks (core/calltype_messages.c). */
llmc_status llmc__messages_upstream(llmc_client *c, json_object *req, const llmc__route *rt,
                                    llmc_chunk_cb cb, void *ud, json_object **out,
                                    int *attempts, llmc_err *err);
int llmc__messages_storable(json_object *resp, int streamed);
llmc_status llmc__messages_key_request(json_object *req, const llmc__controls *ctl,
                                       json_object **out, llmc_err *err);
void *llmc__messages_asm_new(void);
llmc_status llmc__messages_asm_add(void *a, json_object *ev);
json_object *llmc__messages_asm_result(void *a);
void llmc__messages_asm_free(void *a);
llmc_status llmc__validate_messages(const llmc__jv *root, llmc_err *err);

const llmc__calltype *llmc__calltype_of(llmc_call_type t);


/* ---- routing ---- */
/* A model of the client's list (llmc_client_add_model). */
typedef struct llmc__model {
    char *name, *target, *api_base, *api_key, *api_version;
} llmc__model;

struct llmc__route {
    const llmc__model *alias;      /* the listed model, or NULL */
    const llmc_provider_ops *ops;  /* the provider the model resolves to */
    const llmc_provider_ops *exec; /* the one that answers */
    char model[256];
    char base[512];
    const char *api_base;          /* normalised, or NULL */
    const char *api_base_for_key;  /* NULL when the provider's default */
    const char *api_key;           /* borrowed from the request or options */
    const char *api_version;
    /* The call's API headers for the adapter (llmc_provider_call). */
    const char *const *api_headers;
};

/* Strings routing reads from a token view are decoded into these
 * (thread-local) buffers; `declined` is set when one cannot be read as
 * json-c would. */
#define LLMC__VIEW_STRS 8
typedef struct llmc__reqview {
    llmc__jv root;
    llmc_buf *strs;            /* LLMC__VIEW_STRS buffers (token form) */
    int nstr;
    int declined;
} llmc__reqview;

llmc_status llmc__resolve_route(llmc_client *c, const llmc__calltype *ct, llmc__reqview *rv,
                        llmc__route *rt, llmc_err *err);

/* ---- the client ---- */
typedef struct llmc__memo llmc__memo;
typedef struct llmc__reval llmc__reval;

struct llmc_client {
    llmc_cache *cache;
    llmc__memo *memo;          /* NULL when disabled or no cache */
    llmc_options *opts;
    llmc__http *http;          /* NULL when libcurl is not built in */
    llmc_err http_err;         /* why http is NULL */
    llmc__http_config http_cfg;
    const llmc_provider_ops *forced;
    char *key_strategy;        /* NULL = the cache's */
    int scope_by_user;         /* -1 = the cache's */
    llmc_key_fn key_fn;
    void *key_ud;
    int request_credentials;   /* use the request's api_key, api_base, ... */
    int models_only;           /* serve listed models (and mock_response) only */
    llmc__model *models;
    size_t n_models;
    llmc__prices_slot prices;  /* what hits saved, in dollars */
    llmc__reval *reval;        /* background refreshes */
    struct llmc__sem *sem;     /* semantic lookups (semantic.c), NULL = off */
};

const llmc__model *llmc__client_model(const llmc_client *c, const char *name);

/* Caching on for these controls (the cache's mode and use-cache). */
int llmc__caching_on(const llmc_client *c, const llmc__controls *ctl);
const llmc_key_strategy_ops *llmc__client_key_strategy(const llmc_client *c);
int llmc__client_scope_by_user(const llmc_client *c);

/* ---- memo ---- */
#define LLMC__MEMO_MAX_KEY 256
#define LLMC__MEMO_MAX_MODEL 256
#define LLMC__MEMO_MAX_TEXT (64 * 1024) /* bigger requests are not memoised */

/* What a prepared text resolved to. */
typedef struct llmc__memo_val {
    const llmc_provider_ops *ops;
    int no_cache, no_store, stream;
    int64_t ttl_ms, max_age_ms;
    int64_t sie_ms, swr_ms;
    char key[LLMC__MEMO_MAX_KEY];
    size_t klen;
    char model[LLMC__MEMO_MAX_MODEL];
} llmc__memo_val;

llmc_status llmc__memo_new(size_t slots, llmc__memo **out);
void llmc__memo_free(llmc__memo *m);
/* `salt` is everything besides the text the key depends on that can
 * change between calls (the namespace given outside the body). */
/* On a hit, fills *out's scalars and writes the key and model to `key`
 * and `model` (LLMC__MEMO_MAX_KEY / LLMC__MEMO_MAX_MODEL bytes); out->key
 * and out->model are not touched. */
int llmc__memo_get(llmc__memo *m, llmc_call_type call, const char *text, size_t len,
                   const char *salt, llmc__memo_val *out, char *key, char *model);
void llmc__memo_put(llmc__memo *m, llmc_call_type call, const char *text, size_t len,
                    const char *salt, const llmc__memo_val *v);

/* ---- responses ---- */
struct llmc_response {
    char *text;
    size_t text_len;
    json_object *json;         /* lazily parsed on hits */
    char *key;
    int hit;
    int stored;
    int64_t age_ms;
    const char *provider;      /* static (registry table) */
    char *model;
    int attempts;
    size_t n_items;
    char **item_keys;
    unsigned char *item_hits;
    /* For llmc_response_saved: set on (partial) hits. */
    llmc_client *client;
    int64_t upstream_ms;       /* the original call's latency, 0 unknown */
    int64_t hit_tokens;        /* embeddings: tokens of the items that hit */
    int coalesced;             /* a hit found by waiting for another's call */
    int semantic;              /* a semantic hit: key is the matched entry's */
    double similarity;
    llmc_call_type call;       /* how to replay it (RAW: as chat) */
    int stale;                 /* answered from an entry past its freshness */
};

llmc_response *llmc__response_new(void);
/* A hit: the stored body with "cache":true spliced in, one allocation;
 * NULL when the body is not an object or out of memory. */
llmc_response *llmc__response_hit(const char *body, size_t blen, const char *key,
                                  size_t klen, const char *model, const char *provider,
                                  int64_t age);
int llmc__body_is_object(const char *b, size_t n);
llmc_status llmc__response_from_obj(json_object *o, const char *key, const char *model,
                                    const char *provider, llmc_response **out,
                                    llmc_err *err);

/* ---- upstream ---- */
/* Call the provider. Non-streamed: *out = normalised response. Streamed
 * (cb non-NULL): chunks go to cb as they arrive and *out = the assembled
 * response (only when the stream completed). `input` replaces "input"
 * (embeddings: the missing items). */
llmc_status llmc__call_upstream(llmc_client *c, llmc_call_type call, json_object *req,
                                json_object *input, const llmc__route *rt, llmc_chunk_cb cb,
                                void *ud, json_object **out, int *attempts, llmc_err *err);
/* The request as the provider gets it (controls, credentials, transport
 * removed; `input` replaces "input"), the request's extra headers (when
 * the client takes request credentials), the per-call HTTP settings. */
json_object *llmc__upstream_body(json_object *req, int keep_mock, json_object *input);
llmc_status llmc__add_extra_headers(json_object *req, llmc_http_request *hr, llmc_err *err);
void llmc__call_http_config(llmc_client *c, json_object *req, llmc__http_config *hc);
/* Upstream time of a miss, stored with the entry so a hit can report what
 * it saved: whole ms since t0 (llmc_mono_ns), at least 1 (0 = unknown). */
int64_t llmc__upstream_ms_since(uint64_t t0);
/* Replay a stored response to cb as chunks (as call type `call`'s
 * events). */
llmc_status llmc__replay_to(json_object *resp, llmc_chunk_cb cb, void *ud, llmc_err *err);
llmc_status llmc__replay_as(llmc_call_type call, json_object *resp, llmc_chunk_cb cb, void *ud,
                            llmc_err *err);

/* ---- the prepared call ---- */
typedef struct llmc__embed llmc__embed;

struct llmc_call {
    llmc_client *c;
    const llmc__calltype *ct;
    const char *text;          /* borrowed request text, or NULL */
    size_t len;
    json_object *obj;          /* the parsed request (owned or borrowed) */
    int obj_owned;
    llmc__controls ctl;
    int caching;
    int stream;                /* the request asked for a stream */
    const llmc_provider_ops *ops;
    int lease_held;            /* lease_token is ours: drop it when done */
    struct llmc__lease_hold *lease_hold; /* its renewals while upstream */
    int coalesced;             /* answering from another process's call */
    int no_wait;               /* llmc_call_set_coalesce(k, 0) */
    char model[256];
    llmc_buf key;              /* a computed key (chat/text; embeddings: item 0's) */
    const char *kp;            /* the key: key.data, or kin (from the memo) */
    size_t kl;
    char kin[LLMC__MEMO_MAX_KEY];
    int looked_up;
    /* The lookup reached the cache and failed (a stalled server timed
     * out): this call does not store either, so it waits for the cache
     * once, whichever thread executes it. */
    int read_failed;
    const char *bypass;        /* the member that keeps it out of the cache */
    int fast;                  /* prepared from tokens */
    int memo;                  /* prepared from the memo */
    llmc__embed *emb;
    /* Stale serving (core/stale.c): the stale answer kept by a lookup
     * for a provider failure (stale-if-error), and 1 once the call
     * answers from a stale entry. */
    llmc_response *stale;
    int serving_stale;
    int64_t stale_age_ms;
    char lease_token[LLMC_LEASE_TOKEN_LEN + 1];
    struct llmc__semcall *sem; /* the semantic step's findings (semantic_call.c) */
};

/* call_coalesce.c: before going upstream on a miss, wait for an
 * identical call of another process (lease.h). LLMC_MISS: go upstream
 * (holding the lease when k->lease_held); LLMC_OK: answered from the
 * cache (*o, or replayed to cb); else an error (cb cancelled). done()
 * drops a held lease, after the store. */
llmc_status llmc__call_coalesce(llmc_call *k, llmc_chunk_cb cb, void *ud, llmc_response **o,
                                llmc_err *err);
void llmc__call_coalesce_done(llmc_call *k);

/* Prepare into storage the caller owns (released with
 * llmc__call_release; nothing to release after a failure). */
llmc_status llmc__call_prepare_text(llmc_call *k, llmc_client *c, llmc_call_type type,
                                    const char *json, size_t len, const llmc_call_opts *opts,
                                    llmc_err *err);
llmc_status llmc__call_prepare_req(llmc_call *k, llmc_client *c, llmc_call_type type,
                                   const llmc_request *req, const llmc_call_opts *opts,
                                   llmc_err *err);
void llmc__call_release(llmc_call *k);

/* Keys of a parsed request (`item` non-NULL: that embedding item). */
llmc_status llmc__compute_key(llmc_client *c, const llmc__calltype *ct, json_object *req,
                              json_object *item, const llmc__route *rt,
                              const llmc__controls *ctl, llmc_buf *key, llmc_buf *material,
                              llmc_err *err);

/* embed.c */
llmc_status llmc__embed_prepare(llmc_call *k, const llmc__route *rt, llmc_err *err);
llmc_status llmc__embed_lookup(llmc_call *k, llmc_response **out, llmc_err *err);
llmc_status llmc__embed_execute(llmc_call *k, const llmc__route *rt, llmc_response **out,
                                llmc_err *err);
size_t llmc__embed_count(const llmc_call *k);
json_object *llmc__embed_item(const llmc_call *k, size_t i);
const char *llmc__embed_key(const llmc_call *k, size_t i);
void llmc__embed_free(llmc__embed *e);
/* Hit items whose stored vector text was served as is (not parsed),
 * process-wide (for tests). */
uint64_t llmc__embed_verbatim_items(void);

/* stale.c: serving entries past their freshness. */
/* LLMC_ENTRY_STALE when the call accepts stale entries at all. */
unsigned llmc__stale_lookup_flags(const llmc_call *k);
/* A lookup found r, stale by lk->stale_ms: LLMC_OK to answer with it
 * now (stale-while-revalidate: r is marked and a refresh started), or
 * LLMC_MISS (r kept for a provider failure, or freed). */
llmc_status llmc__stale_found(llmc_call *k, const llmc_lookup *lk, llmc_response *r);
/* How long past its TTL a store by this call keeps the entry, ms. */
int64_t llmc__stale_keep_ms(const llmc_call *k);
/* Counts the chunks an upstream stream delivered (a stale answer can
 * replace a stream only before its first chunk). */
typedef struct llmc__stale_tap {
    llmc_chunk_cb cb;
    void *ud;
    size_t n;
} llmc__stale_tap;
int llmc__stale_tap_cb(void *ud, struct json_object *chunk);
/* The provider failed with st: LLMC_OK with the kept stale answer in *o
 * (replayed to cb) when the failure is one stale-if-error covers and
 * nothing was streamed yet; else st unchanged. */
llmc_status llmc__stale_fallback(llmc_call *k, llmc_status st, llmc_chunk_cb cb, void *ud,
                                 size_t delivered, llmc_response **o, llmc_err *err);

/* revalidate.c: background refreshes (stale-while-revalidate). */
llmc__reval *llmc__reval_new(void);
/* Waits for the running refreshes, then frees. NULL accepted. */
void llmc__reval_free(llmc__reval *rv);
/* Start one background refresh of k's entry, whose stale copy was
 * created at created_ms, unless one of that key is running, one started
 * after created_ms stored its answer, or too many run: 1 started, 0
 * not. */
int llmc__reval_start(llmc_call *k, int64_t created_ms);
/* semantic_call.c: after an exact miss (LLMC_OK with a semantic hit, or
 * LLMC_MISS), and after an answer was stored. */
llmc_status llmc__semantic_lookup(llmc_call *k, llmc_chunk_cb cb, void *ud, llmc_response **out,
                                  llmc_err *err);
void llmc__semantic_stored(llmc_call *k, const llmc_response *r);
void llmc__semcall_free(struct llmc__semcall *sc);

/* Per-thread scratch of the hit path. */
typedef struct llmc__scratch {
    llmc_lookup lookup;
    llmc_buf strs[LLMC__VIEW_STRS];
} llmc__scratch;

llmc__scratch *llmc__scratch_get(void);
llmc_lookup *llmc__thread_lookup(void);

/* Parse request text into a json-c object (which must be an object). */
llmc_status llmc__parse_request_text(const char *json, size_t len, json_object **out,
                                     llmc_err *err);

#endif
