/* llmcache: what a cache hit saved.
 *
 * A hit means an upstream call that was not made: its tokens were not
 * bought and its latency was not waited for. This header holds the three
 * pieces that turn a cached response into those figures, shared by the
 * client, the `llmcache` command, the proxy and the bindings:
 *
 *   - a price table (llmc_prices): US dollars per million input,
 *     cached-input and output tokens per model, loaded from the default
 *     file installed with the project (share/llmcache/prices.json) and
 *     overridden or extended by the operator;
 *   - llmc_saving_compute: the saving of one hit, from the cached
 *     response's OpenAI-format `usage` and the original call's latency;
 *   - a counter set (llmc_savings): savings summed per model, tenant and
 *     endpoint, for /metrics, dashboards and stats.
 *
 * Unknown models count tokens but not dollars: the saving says so
 * (`priced` = 0) and the counters count those hits apart. */
#ifndef LLMCACHE_SAVINGS_H
#define LLMCACHE_SAVINGS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Price table. */

typedef struct llmc_prices llmc_prices;

/* Dollars per million tokens of one model. */
typedef struct llmc_price {
    double input;        /* prompt tokens */
    double cached_input; /* prompt tokens the provider served from its own
                            prompt cache (equals input when it has none) */
    double output;       /* completion (and reasoning) tokens */
} llmc_price;

/* Environment variable naming a price file that replaces the default
 * table (the installed share/llmcache/prices.json). */
#define LLMC_PRICES_ENV "LLMCACHE_PRICES"

/* Path of the default price file: $LLMCACHE_PRICES when set and
 * non-empty, else the installed <datadir>/llmcache/prices.json. Static
 * or environment storage: do not free. */
LLMC_API const char *llmc_prices_default_path(void);

/* An empty table (every model unknown). NULL on allocation failure. */
LLMC_API llmc_prices *llmc_prices_new(void);

/* Load the default table (llmc_prices_default_path). A missing or
 * invalid file is an error naming the path and the problem: counting
 * dollars from a table that silently failed to load would show $0
 * saved. *out is owned by the caller (llmc_prices_free). */
LLMC_API llmc_status llmc_prices_load_default(llmc_prices **out, llmc_err *err);

/* Merge a price document over the table: `json` (len bytes, or
 * LLMC_ZSTR-style (size_t)-1 for NUL-terminated) is either a whole price
 * file ({"models": {...}, ...}) or just its models object
 * ({"gpt-4o": {"input": 2.5, "output": 10}, ...}). A model given replaces
 * that model's entry. Each entry needs "input"; "output" defaults to 0
 * (embedding models), "cached_input" to "input". Prices are finite
 * numbers >= 0 and <= 1e6. Unknown members of an entry are errors. On
 * error the table is unchanged and the message names the model and the
 * field. Not thread safe against lookups on the same table: build a table
 * before sharing it. */
LLMC_API llmc_status llmc_prices_merge_json(llmc_prices *p, const char *json, size_t len,
                                            llmc_err *err);

/* Merge a price file (as llmc_prices_merge_json) read from `path`. */
LLMC_API llmc_status llmc_prices_merge_file(llmc_prices *p, const char *path, llmc_err *err);

/* Load the default table, then merge `override` over it: NULL or "" =
 * none; text starting with '{' = a JSON document; else a path to a price
 * file. The one call the client, the command and the proxy use. */
LLMC_API llmc_status llmc_prices_load(const char *override, llmc_prices **out, llmc_err *err);

/* Look a model up: exact (case-insensitive) match first, then the longest
 * entry that the name extends with "-<date or version>" (starting with a
 * digit) or "-latest". A "provider/" prefix is ignored. 1 and *out filled
 * when found, 0 when the model is unknown. The canonical entry name is
 * stored in *matched when non-NULL (borrowed from the table). Thread
 * safe once the table is no longer modified. */
LLMC_API int llmc_prices_lookup(const llmc_prices *p, const char *model, llmc_price *out,
                                const char **matched);

/* Number of models in the table. */
LLMC_API size_t llmc_prices_count(const llmc_prices *p);
/* "as_of" and the first "sources" entry of the last merged file that had
 * them, or NULL. Borrowed. */
LLMC_API const char *llmc_prices_as_of(const llmc_prices *p);
LLMC_API const char *llmc_prices_source(const llmc_prices *p);

/* Free a table. NULL is accepted. */
LLMC_API void llmc_prices_free(llmc_prices *p);

/* ------------------------------------------------------------------ */
/* The saving of one hit. */

#define LLMC_SAVING_MODEL_MAX 128

typedef struct llmc_saving {
    uint64_t input_tokens;        /* usage.prompt_tokens (embeddings too) */
    uint64_t cached_input_tokens; /* ...of which the provider had cached */
    uint64_t output_tokens;       /* usage.completion_tokens */
    uint64_t tokens;              /* usage.total_tokens (input + output
                                     when absent) */
    double usd;                   /* what the call cost; 0 when !priced */
    int priced;                   /* 1: the model is in the price table */
    int has_usage;                /* 0: the response had no usage (a
                                     stream stored without it) */
    int64_t upstream_ms;          /* the original call's latency; 0 =
                                     unknown (stored before it was kept) */
    char model[LLMC_SAVING_MODEL_MAX]; /* the response's "model" (else the
                                          fallback), truncated */
} llmc_saving;

/* The saving of serving `body` (an OpenAI-format response, as stored in
 * the cache: chat, text or embeddings) from the cache. The model is the
 * body's top-level "model", else `fallback_model` (may be NULL). Tokens
 * come from the top-level "usage" member (a stored embedding item's
 * top-level "prompt_tokens" counts too). `prices` may be NULL (nothing
 * priced). Never fails on odd input: a body that is not a JSON object, or
 * has no usage, gives zero tokens and has_usage 0; negative or
 * non-integer counts are ignored. Thread safe. */
LLMC_API void llmc_saving_compute(const llmc_prices *prices, const char *body, size_t len,
                                  const char *fallback_model, int64_t upstream_ms,
                                  llmc_saving *out);

/* Dollars for token counts of `model` (0 and *priced = 0 when unknown;
 * priced may be NULL). cached_input is the part of input the provider
 * served from its own prompt cache. */
LLMC_API double llmc_prices_cost(const llmc_prices *p, const char *model, uint64_t input,
                                 uint64_t cached_input, uint64_t output, int *priced);

/* ------------------------------------------------------------------ */
/* Counters: savings summed per (model, tenant, endpoint). */

typedef struct llmc_savings llmc_savings;

typedef struct llmc_savings_row {
    const char *model, *tenant, *endpoint; /* borrowed, valid in the callback */
    uint64_t hits;
    uint64_t tokens, input_tokens, cached_input_tokens, output_tokens;
    uint64_t unpriced_hits; /* hits whose model has no price */
    uint64_t untimed_hits;  /* hits whose original latency is unknown */
    double usd;
    double seconds;         /* upstream time saved */
} llmc_savings_row;

/* New counters holding at most `max_rows` distinct (model, tenant,
 * endpoint) rows (0 = 1024); further combinations are summed into one
 * row labelled "(other)" in all three places, so label values sent by
 * clients cannot grow memory without bound. NULL on allocation failure. */
LLMC_API llmc_savings *llmc_savings_new(size_t max_rows);
LLMC_API void llmc_savings_free(llmc_savings *s);

/* Count one hit. NULL or "" labels count as "-". Labels are copied.
 * Thread safe (one mutex; a hash lookup and a few additions inside). */
LLMC_API void llmc_savings_add(llmc_savings *s, const char *model, const char *tenant,
                               const char *endpoint, const llmc_saving *v);

/* Visit every row, under the counters' lock: the callback must not call
 * back into `s`. Rows come in insertion order. */
typedef void (*llmc_savings_cb)(void *ud, const llmc_savings_row *row);
LLMC_API void llmc_savings_foreach(llmc_savings *s, llmc_savings_cb cb, void *ud);

/* The sum of every row (labels NULL). */
LLMC_API void llmc_savings_total(llmc_savings *s, llmc_savings_row *out);

/* Zero every counter (rows are kept). */
LLMC_API void llmc_savings_reset(llmc_savings *s);

#ifdef __cplusplus
}
#endif
#endif
