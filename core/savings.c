/* What a cache hit saved: the price table, the saving of one hit and the
 * per (model, tenant, endpoint) counters. See include/llmcache/savings.h. */
#include "internal.h"
#include "fastjson.h"
#include "textmemo.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

/* ------------------------------------------------------------------ */
/* Price table: entries sorted by lower-cased name, so a lookup is a
 * binary search per candidate name. */

typedef struct price_entry {
    char *name; /* lower-cased */
    llmc_price price;
} price_entry;

struct llmc_prices {
    price_entry *e;
    size_t n, cap;
    char *as_of;
    char *source;
};

const char *llmc_prices_default_path(void)
{
    const char *env = getenv(LLMC_PRICES_ENV);
    if (env && *env)
        return env;
    return LLMC_DATA_DIR "/prices.json";
}

llmc_prices *llmc_prices_new(void)
{
    return calloc(1, sizeof(llmc_prices));
}

void llmc_prices_free(llmc_prices *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->e[i].name);
    free(p->e);
    free(p->as_of);
    free(p->source);
    free(p);
}

size_t llmc_prices_count(const llmc_prices *p)
{
    return p ? p->n : 0;
}

const char *llmc_prices_as_of(const llmc_prices *p)
{
    return p ? p->as_of : NULL;
}

const char *llmc_prices_source(const llmc_prices *p)
{
    return p ? p->source : NULL;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const price_entry *)a)->name, ((const price_entry *)b)->name);
}

/* Binary search for a lower-cased name of n bytes. */
static const price_entry *find_exact(const llmc_prices *p, const char *name, size_t n)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *en = p->e[mid].name;
        int c = strncmp(en, name, n);
        if (c == 0)
            c = en[n] == '\0' ? 0 : 1;
        if (c == 0)
            return &p->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int price_value(json_object *v, double *out)
{
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return -1;
    double d = json_object_get_double(v);
    if (!isfinite(d) || d < 0 || d > 1e6)
        return -1;
    *out = d;
    return 0;
}

/* One model entry -> *pr; -1 with a message naming the field. */
static llmc_status parse_entry(const char *model, json_object *o, llmc_price *pr, llmc_err *err)
{
    if (!json_object_is_type(o, json_type_object))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "price of model \"%s\" must be an object like {\"input\": 2.5, "
                            "\"output\": 10}",
                            model);
    int have_in = 0, have_cached = 0;
    memset(pr, 0, sizeof *pr);
    json_object_object_foreach(o, k, v)
    {
        double *dst;
        if (strcmp(k, "input") == 0) {
            dst = &pr->input;
            have_in = 1;
        } else if (strcmp(k, "cached_input") == 0) {
            dst = &pr->cached_input;
            have_cached = 1;
        } else if (strcmp(k, "output") == 0) {
            dst = &pr->output;
        } else {
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "price of model \"%s\": unknown field \"%s\" (known: input, "
                                "cached_input, output)",
                                model, k);
        }
        if (price_value(v, dst) != 0)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "price of model \"%s\": field \"%s\" must be a number of "
                                "dollars per million tokens, >= 0 and <= 1000000",
                                model, k);
    }
    if (!have_in)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "price of model \"%s\": field \"input\" is missing", model);
    if (!have_cached)
        pr->cached_input = pr->input;
    return LLMC_OK;
}

static char *lower_dup(const char *s)
{
    char *d = llmc__strdup(s);
    for (char *q = d; q && *q; q++)
        *q = (char)tolower((unsigned char)*q);
    return d;
}

llmc_status llmc_prices_merge_json(llmc_prices *p, const char *json, size_t len, llmc_err *err)
{
    if (!p || !json)
        return llmc_err_set(err, LLMC_EINVAL, 0, "price table or document is NULL");
    if (len == (size_t)-1)
        len = strlen(json);
    if (len > INT32_MAX)
        return llmc_err_set(err, LLMC_EINVAL, 0, "price document too large");
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    if (je == json_tokener_continue) {
        /* Bare documents end where the text ends. */
        json_object_put(root);
        root = json_tokener_parse_ex(tok, "", -1);
        je = json_tokener_get_error(tok);
    }
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || je != json_tokener_success) {
        json_object_put(root);
        return llmc_err_set(err, LLMC_EINVAL, 0, "price document is not valid JSON: %s",
                            json_tokener_error_desc(je));
    }
    while (used < len && isspace((unsigned char)json[used]))
        used++;
    if (used < len) {
        json_object_put(root);
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "price document: unexpected text after the JSON value");
    }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return llmc_err_set(err, LLMC_EINVAL, 0, "price document must be a JSON object");
    }
    json_object *models = root, *v, *mv;
    const char *as_of = NULL, *source = NULL;
    if (json_object_object_get_ex(root, "models", &mv)) {
        models = mv;
        if (!json_object_is_type(models, json_type_object)) {
            json_object_put(root);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "price document: \"models\" must be an object of model -> "
                                "price");
        }
        if (json_object_object_get_ex(root, "as_of", &v) && json_object_is_type(v, json_type_string))
            as_of = json_object_get_string(v);
        if (json_object_object_get_ex(root, "sources", &v) &&
            json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0 &&
            json_object_is_type(json_object_array_get_idx(v, 0), json_type_string))
            source = json_object_get_string(json_object_array_get_idx(v, 0));
    }
    /* Validate everything first: a bad entry leaves the table as it was. */
    size_t add = 0;
    llmc_status st = LLMC_OK;
    {
        json_object_object_foreach(models, k, val)
        {
            llmc_price pr;
            if (!*k) {
                st = llmc_err_set(err, LLMC_EINVAL, 0, "price document: empty model name");
                break;
            }
            if ((st = parse_entry(k, val, &pr, err)) != LLMC_OK)
                break;
            add++;
        }
    }
    if (st == LLMC_OK && p->n + add > p->cap) {
        size_t nc = p->n + add;
        price_entry *ne = realloc(p->e, nc * sizeof *ne);
        if (!ne)
            st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        else {
            p->e = ne;
            p->cap = nc;
        }
    }
    if (st == LLMC_OK) {
        json_object_object_foreach(models, k, val)
        {
            llmc_price pr;
            parse_entry(k, val, &pr, NULL);
            char *lk = lower_dup(k);
            if (!lk) {
                st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
                break;
            }
            /* Linear: tables are small and merged once. */
            size_t i;
            for (i = 0; i < p->n; i++)
                if (strcmp(p->e[i].name, lk) == 0)
                    break;
            if (i < p->n) {
                free(lk);
                p->e[i].price = pr;
            } else {
                p->e[p->n].name = lk;
                p->e[p->n].price = pr;
                p->n++;
            }
        }
        qsort(p->e, p->n, sizeof *p->e, entry_cmp);
        if (as_of) {
            free(p->as_of);
            p->as_of = llmc__strdup(as_of);
        }
        if (source) {
            free(p->source);
            p->source = llmc__strdup(source);
        }
    }
    json_object_put(root);
    return st;
}

llmc_status llmc_prices_merge_file(llmc_prices *p, const char *path, llmc_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return llmc_err_set(err, LLMC_EIO, errno, "price file %s: %s", path, strerror(errno));
    llmc_buf b = LLMC_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > (64u << 20)) {
            fclose(f);
            llmc_buf_free(&b);
            return llmc_err_set(err, LLMC_EINVAL, 0, "price file %s: larger than 64 MiB", path);
        }
        llmc_buf_append(&b, chunk, n);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        llmc_buf_free(&b);
        return llmc_err_set(err, LLMC_EIO, 0, "price file %s: read error", path);
    }
    llmc_err e2;
    llmc_err_clear(&e2);
    llmc_status st = llmc_prices_merge_json(p, b.data ? b.data : "", b.len, &e2);
    llmc_buf_free(&b);
    if (st != LLMC_OK)
        return llmc_err_set(err, st, 0, "price file %s: %s", path, e2.msg);
    return LLMC_OK;
}

llmc_status llmc_prices_load_default(llmc_prices **out, llmc_err *err)
{
    *out = NULL;
    llmc_prices *p = llmc_prices_new();
    if (!p)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc_prices_merge_file(p, llmc_prices_default_path(), err);
    if (st != LLMC_OK) {
        llmc_prices_free(p);
        return st;
    }
    *out = p;
    return LLMC_OK;
}

llmc_status llmc_prices_load(const char *override, llmc_prices **out, llmc_err *err)
{
    llmc_status st = llmc_prices_load_default(out, err);
    if (st != LLMC_OK || !override || !*override)
        return st;
    const char *s = override;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '{') {
        llmc_err e2;
        llmc_err_clear(&e2);
        st = llmc_prices_merge_json(*out, override, (size_t)-1, &e2);
        if (st != LLMC_OK)
            llmc_err_set(err, st, 0, "prices override: %s", e2.msg);
    } else {
        st = llmc_prices_merge_file(*out, override, err);
    }
    if (st != LLMC_OK) {
        llmc_prices_free(*out);
        *out = NULL;
    }
    return st;
}

/* Does the rest after "<entry>-" look like a snapshot of the entry? */
static int version_suffix(const char *rest)
{
    return isdigit((unsigned char)rest[0]) || strcmp(rest, "latest") == 0;
}

int llmc_prices_lookup(const llmc_prices *p, const char *model, llmc_price *out,
                       const char **matched)
{
    if (!p || !model || p->n == 0)
        return 0;
    const char *slash = strrchr(model, '/');
    if (slash)
        model = slash + 1;
    char buf[LLMC_SAVING_MODEL_MAX];
    size_t n = strlen(model);
    if (n == 0 || n >= sizeof buf)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)model[i]);
    buf[n] = '\0';
    const price_entry *e = find_exact(p, buf, n);
    /* Longest entry the name extends with a version: cut at each '-'
     * from the right. */
    for (size_t i = n; !e && i-- > 0;)
        if (buf[i] == '-' && i > 0 && version_suffix(buf + i + 1))
            e = find_exact(p, buf, i);
    if (!e)
        return 0;
    if (out)
        *out = e->price;
    if (matched)
        *matched = e->name;
    return 1;
}

double llmc_prices_cost(const llmc_prices *p, const char *model, uint64_t input,
                        uint64_t cached_input, uint64_t output, int *priced)
{
    llmc_price pr;
    int ok = llmc_prices_lookup(p, model, &pr, NULL);
    if (priced)
        *priced = ok;
    if (!ok)
        return 0;
    if (cached_input > input)
        cached_input = input;
    return ((double)(input - cached_input) * pr.input + (double)cached_input * pr.cached_input +
            (double)output * pr.output) /
           1e6;
}

/* ------------------------------------------------------------------ */
/* The saving of one hit. */

typedef struct usage_in {
    int64_t prompt, completion, total, cached, item_prompt;
    int has_prompt, has_completion, has_total, has_item_prompt;
} usage_in;

/* Token counts beyond this are not counts (json-c saturates overflowing
 * integers at INT64_MAX). */
#define MAX_COUNT ((int64_t)1 << 50)

/* The Messages API's usage (input_tokens / output_tokens, as the
 * Responses API's): its input_tokens leaves out the tokens read from or
 * written to Anthropic's prompt cache, which the prompt counts. */
static void messages_cache(usage_in *u, int has_read, int64_t cache_read, int has_creation,
                           int64_t cache_creation)
{
    if (!has_read && !has_creation)
        return;
    u->prompt += cache_read + cache_creation;
    u->cached = cache_read;
}

static int fj_count(const llmc__fjdoc *d, long tok, int64_t *out)
{
    int is_int;
    int64_t i;
    double dv;
    if (tok < 0 || !llmc__fj_number(d, (size_t)tok, &is_int, &i, &dv) || !is_int || i < 0 ||
        i > MAX_COUNT)
        return 0;
    *out = i;
    return 1;
}

/* 1 handled (model copied into `model`), 0 declined (json-c decides). */
static int usage_fast(const char *body, size_t len, usage_in *u, char *model, size_t msz)
{
    /* The request's document may still be in use by the caller. */
    llmc__fjdoc *d = llmc__fj_thread_doc_slot(LLMC__FJ_DOC_AUX);
    if (!d || !llmc__fj_parse(d, body, len))
        return 0;
    long m = llmc__fj_member(d, 0, "model");
    if (m >= 0 && d->t[m].type == LLMC__FJ_STR) {
        llmc_buf mb = LLMC_BUF_INIT;
        if (llmc__fj_string(d, (size_t)m, 1, &mb) && mb.len > 0)
            snprintf(model, msz, "%s", mb.data);
        llmc_buf_free(&mb);
    }
    u->has_item_prompt = fj_count(d, llmc__fj_member(d, 0, "prompt_tokens"), &u->item_prompt);
    long us = llmc__fj_member(d, 0, "usage");
    if (us < 0 || d->t[us].type != LLMC__FJ_OBJ)
        return 1;
    u->has_prompt = fj_count(d, llmc__fj_member(d, (size_t)us, "prompt_tokens"), &u->prompt);
    u->has_completion =
        fj_count(d, llmc__fj_member(d, (size_t)us, "completion_tokens"), &u->completion);
    u->has_total = fj_count(d, llmc__fj_member(d, (size_t)us, "total_tokens"), &u->total);
    long det = llmc__fj_member(d, (size_t)us, "prompt_tokens_details");
    /* The Responses and Messages APIs name them input_tokens / output_tokens. */
    int from_input = 0;
    if (!u->has_prompt && !u->has_completion) {
        u->has_prompt = fj_count(d, llmc__fj_member(d, (size_t)us, "input_tokens"), &u->prompt);
        u->has_completion =
            fj_count(d, llmc__fj_member(d, (size_t)us, "output_tokens"), &u->completion);
        det = llmc__fj_member(d, (size_t)us, "input_tokens_details");
        from_input = u->has_prompt;
    }
    if (det >= 0 && d->t[det].type == LLMC__FJ_OBJ)
        fj_count(d, llmc__fj_member(d, (size_t)det, "cached_tokens"), &u->cached);
    if (from_input) {
        int64_t rd = 0, cr = 0;
        int hr = fj_count(d, llmc__fj_member(d, (size_t)us, "cache_read_input_tokens"), &rd);
        int hc = fj_count(d, llmc__fj_member(d, (size_t)us, "cache_creation_input_tokens"), &cr);
        messages_cache(u, hr, rd, hc, cr);
    }
    return 1;
}

static int jc_count(json_object *o, const char *name, int64_t *out)
{
    json_object *v;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_int))
        return 0;
    int64_t i = json_object_get_int64(v);
    if (i < 0 || i > MAX_COUNT)
        return 0;
    *out = i;
    return 1;
}

static void usage_slow(const char *body, size_t len, usage_in *u, char *model, size_t msz)
{
    if (len > INT32_MAX)
        return;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return;
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return;
    }
    json_object *v, *us, *det;
    if (json_object_object_get_ex(o, "model", &v) && json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) > 0)
        snprintf(model, msz, "%s", json_object_get_string(v));
    u->has_item_prompt = jc_count(o, "prompt_tokens", &u->item_prompt);
    if (json_object_object_get_ex(o, "usage", &us)) {
        u->has_prompt = jc_count(us, "prompt_tokens", &u->prompt);
        u->has_completion = jc_count(us, "completion_tokens", &u->completion);
        u->has_total = jc_count(us, "total_tokens", &u->total);
        const char *details = "prompt_tokens_details";
        int from_input = 0;
        if (!u->has_prompt && !u->has_completion) {
            /* The Responses (and Messages) API's names. */
            u->has_prompt = jc_count(us, "input_tokens", &u->prompt);
            u->has_completion = jc_count(us, "output_tokens", &u->completion);
            details = "input_tokens_details";
            from_input = u->has_prompt;
        }
        if (json_object_is_type(us, json_type_object) &&
            json_object_object_get_ex(us, details, &det))
            jc_count(det, "cached_tokens", &u->cached);
        if (from_input) {
            int64_t rd = 0, cr = 0;
            int hr = jc_count(us, "cache_read_input_tokens", &rd);
            int hc = jc_count(us, "cache_creation_input_tokens", &cr);
            messages_cache(u, hr, rd, hc, cr);
        }
    }
    json_object_put(o);
}

/* What a body says (its usage and model). Every hit of an entry reads
 * the same body, so a body this thread read before is not tokenised
 * again (textmemo.h: exact, per thread). */
typedef struct usage_read {
    usage_in u;
    char model[LLMC_SAVING_MODEL_MAX];
} usage_read;

_Static_assert(sizeof(usage_read) <= LLMC__TEXTMEMO_MAX_VAL, "usage_read fits the text memo");

static void read_usage(const char *body, size_t len, usage_in *u, char *model)
{
    usage_read r;
    uint64_t h;
    if (!llmc__textmemo_get(LLMC__TEXTMEMO_USAGE, body, len, &r, sizeof r, &h)) {
        memset(&r, 0, sizeof r);
        if (!usage_fast(body, len, &r.u, r.model, sizeof r.model))
            usage_slow(body, len, &r.u, r.model, sizeof r.model);
        llmc__textmemo_put(LLMC__TEXTMEMO_USAGE, body, len, h, &r, sizeof r);
    }
    *u = r.u;
    memcpy(model, r.model, sizeof r.model);
}

void llmc_saving_compute(const llmc_prices *prices, const char *body, size_t len,
                         const char *fallback_model, int64_t upstream_ms, llmc_saving *out)
{
    memset(out, 0, sizeof *out);
    out->upstream_ms = upstream_ms > 0 ? upstream_ms : 0;
    usage_in u;
    memset(&u, 0, sizeof u);
    if (body && len > 0)
        read_usage(body, len, &u, out->model);
    if (!out->model[0] && fallback_model)
        snprintf(out->model, sizeof out->model, "%s", fallback_model);
    if (u.has_prompt || u.has_completion || u.has_total) {
        out->has_usage = 1;
        out->input_tokens = (uint64_t)u.prompt;
        out->output_tokens = (uint64_t)u.completion;
        out->cached_input_tokens = (uint64_t)(u.cached > u.prompt ? u.prompt : u.cached);
        out->tokens = u.has_total ? (uint64_t)u.total : (uint64_t)u.prompt + (uint64_t)u.completion;
    } else if (u.has_item_prompt) {
        /* A stored embedding item. */
        out->has_usage = 1;
        out->input_tokens = out->tokens = (uint64_t)u.item_prompt;
    }
    out->usd = llmc_prices_cost(prices, out->model, out->input_tokens, out->cached_input_tokens,
                                out->output_tokens, &out->priced);
}

/* ------------------------------------------------------------------ */
/* Counters. */

typedef struct srow {
    char *model, *tenant, *endpoint;
    uint64_t h;
    long next; /* hash chain, index into rows; -1 ends */
    uint64_t hits, tokens, input, cached, output, unpriced, untimed;
    double usd, seconds;
} srow;

#define SAV_BUCKETS 256

struct llmc_savings {
    pthread_mutex_t mu;
    srow *rows;
    size_t n, max;
    long other; /* the "(other)" row, -1 until needed */
    long bucket[SAV_BUCKETS];
};

llmc_savings *llmc_savings_new(size_t max_rows)
{
    llmc_savings *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->max = max_rows ? max_rows : 1024;
    s->rows = calloc(s->max + 1, sizeof *s->rows);
    if (!s->rows) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < SAV_BUCKETS; i++)
        s->bucket[i] = -1;
    s->other = -1;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void llmc_savings_free(llmc_savings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i].model);
        free(s->rows[i].tenant);
        free(s->rows[i].endpoint);
    }
    free(s->rows);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static uint64_t lab_hash(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;
}

static long new_row(llmc_savings *s, const char *m, const char *t, const char *e, uint64_t h)
{
    srow *r = &s->rows[s->n];
    memset(r, 0, sizeof *r);
    r->model = llmc__strdup(m);
    r->tenant = llmc__strdup(t);
    r->endpoint = llmc__strdup(e);
    if (!r->model || !r->tenant || !r->endpoint) {
        free(r->model);
        free(r->tenant);
        free(r->endpoint);
        return -1;
    }
    r->h = h;
    r->next = -1;
    return (long)s->n++;
}

void llmc_savings_add(llmc_savings *s, const char *model, const char *tenant,
                      const char *endpoint, const llmc_saving *v)
{
    if (!s || !v)
        return;
    const char *m = model && *model ? model : "-";
    const char *t = tenant && *tenant ? tenant : "-";
    const char *e = endpoint && *endpoint ? endpoint : "-";
    uint64_t h = lab_hash(lab_hash(lab_hash(1469598103934665603ull, m), t), e);
    pthread_mutex_lock(&s->mu);
    long i = s->bucket[h % SAV_BUCKETS];
    while (i >= 0 && !(s->rows[i].h == h && strcmp(s->rows[i].model, m) == 0 &&
                       strcmp(s->rows[i].tenant, t) == 0 &&
                       strcmp(s->rows[i].endpoint, e) == 0))
        i = s->rows[i].next;
    if (i < 0) {
        if (s->n < s->max) {
            i = new_row(s, m, t, e, h);
            if (i >= 0) {
                s->rows[i].next = s->bucket[h % SAV_BUCKETS];
                s->bucket[h % SAV_BUCKETS] = i;
            }
        }
        if (i < 0) {
            /* Full (or out of memory): the overflow row, kept out of the
             * hash chains. The array has one spare slot for it. */
            if (s->other < 0)
                s->other = new_row(s, "(other)", "(other)", "(other)", 0);
            i = s->other;
        }
    }
    if (i >= 0) {
        srow *r = &s->rows[i];
        r->hits++;
        r->tokens += v->tokens;
        r->input += v->input_tokens;
        r->cached += v->cached_input_tokens;
        r->output += v->output_tokens;
        if (!v->priced)
            r->unpriced++;
        r->usd += v->usd;
        if (v->upstream_ms > 0)
            r->seconds += (double)v->upstream_ms / 1000.0;
        else
            r->untimed++;
    }
    pthread_mutex_unlock(&s->mu);
}

static void fill_row(const srow *r, llmc_savings_row *o)
{
    o->model = r->model;
    o->tenant = r->tenant;
    o->endpoint = r->endpoint;
    o->hits = r->hits;
    o->tokens = r->tokens;
    o->input_tokens = r->input;
    o->cached_input_tokens = r->cached;
    o->output_tokens = r->output;
    o->unpriced_hits = r->unpriced;
    o->untimed_hits = r->untimed;
    o->usd = r->usd;
    o->seconds = r->seconds;
}

void llmc_savings_foreach(llmc_savings *s, llmc_savings_cb cb, void *ud)
{
    if (!s || !cb)
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        llmc_savings_row row;
        fill_row(&s->rows[i], &row);
        cb(ud, &row);
    }
    pthread_mutex_unlock(&s->mu);
}

void llmc_savings_total(llmc_savings *s, llmc_savings_row *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        const srow *r = &s->rows[i];
        out->hits += r->hits;
        out->tokens += r->tokens;
        out->input_tokens += r->input;
        out->cached_input_tokens += r->cached;
        out->output_tokens += r->output;
        out->unpriced_hits += r->unpriced;
        out->untimed_hits += r->untimed;
        out->usd += r->usd;
        out->seconds += r->seconds;
    }
    pthread_mutex_unlock(&s->mu);
}

void llmc_savings_reset(llmc_savings *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        srow *r = &s->rows[i];
        r->hits = r->tokens = r->input = r->cached = r->output = r->unpriced = r->untimed = 0;
        r->usd = r->seconds = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ */
/* A client's table. */

static llmc_status slot_load_locked(llmc__prices_slot *s)
{
    llmc_err e;
    llmc_err_clear(&e);
    s->tried = 1;
    s->st = llmc_prices_load(s->override, &s->p, &e);
    snprintf(s->msg, sizeof s->msg, "%s", s->st == LLMC_OK ? "" : e.msg);
    return s->st;
}

llmc_status llmc__prices_slot_init(llmc__prices_slot *s, const char *override, int now,
                                   llmc_err *err)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    if (override && *override && !(s->override = llmc__strdup(override)))
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (now && slot_load_locked(s) != LLMC_OK)
        return llmc_err_set(err, s->st, 0, "client option prices: %s", s->msg);
    return LLMC_OK;
}

const llmc_prices *llmc__prices_slot_get(llmc__prices_slot *s, llmc_err *err)
{
    pthread_mutex_lock(&s->mu);
    if (!s->tried)
        slot_load_locked(s);
    const llmc_prices *p = s->p;
    if (!p && err) {
        /* A copy, not a format: without a price table this runs on every
         * hit that reports its saving. */
        err->status = s->st;
        err->native = 0;
        memcpy(err->msg, s->msg, sizeof err->msg);
    }
    pthread_mutex_unlock(&s->mu);
    return p;
}

void llmc__prices_slot_free(llmc__prices_slot *s)
{
    llmc_prices_free(s->p);
    free(s->override);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof *s);
}
