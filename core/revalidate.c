/* Background refreshes for stale-while-revalidate.
 *
 * A lookup that answers with a stale entry hands the request to a
 * library-owned thread, which calls the provider and stores the answer
 * under the same key, TTL and stale window, exactly as execute would.
 * Only one refresh of a key runs at a time in a client (others find it
 * in the list and return), and at most MAX_RUNNING at once (beyond that
 * the refresh is left to a later stale answer). A caller that read the
 * stale entry just before a refresh of it stored a new one must not
 * start a second: the last successful refreshes are remembered (key
 * hash, start time), and a stale entry created before such a refresh
 * started (within DONE_GRACE_MS) is already replaced. A failed refresh stores nothing and is
 * not remembered; the entry keeps answering stale until its window
 * ends, and the next stale answer tries again.
 *
 * The client owns the threads: llmc_client_wait_refreshes waits for
 * them, and llmc_client_free waits for them too before it frees
 * anything they use. */
#include "client_internal.h"
#include "hash.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RUNNING 32
#define DONE_SLOTS 256
/* How long a finished refresh vouches for its key: the gap between a
 * lookup reading the old entry and asking for its refresh, with room to
 * spare. Older ones are ignored, so an entry written with a clock behind
 * ours (another host) is refreshed again after this at the latest. */
#define DONE_GRACE_MS 5000

typedef struct rjob {
    struct rjob *next;
    llmc_client *c;
    llmc_call_type type;
    char *key;
    size_t kl;
    char *text;
    size_t len;
    char **api_headers; /* the call's (messages: part of its request) */
    int64_t ttl_ms, keep_ms;
    uint64_t h;         /* hash of the key */
    int64_t started_ms;
    int stored;
} rjob;

struct llmc__reval {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rjob *running;   /* refreshes in flight (their keys coalesce others) */
    int n;
    int closing;
    struct {
        uint64_t h;
        int64_t started_ms;
    } done[DONE_SLOTS]; /* recent successful refreshes, a ring */
    unsigned done_next;
};

llmc__reval *llmc__reval_new(void)
{
    llmc__reval *rv = calloc(1, sizeof *rv);
    if (!rv)
        return NULL;
    pthread_mutex_init(&rv->mu, NULL);
    pthread_cond_init(&rv->cv, NULL);
    return rv;
}

static void wait_idle(llmc__reval *rv)
{
    pthread_mutex_lock(&rv->mu);
    while (rv->n > 0)
        pthread_cond_wait(&rv->cv, &rv->mu);
    pthread_mutex_unlock(&rv->mu);
}

void llmc__reval_free(llmc__reval *rv)
{
    if (!rv)
        return;
    pthread_mutex_lock(&rv->mu);
    rv->closing = 1;
    pthread_mutex_unlock(&rv->mu);
    wait_idle(rv);
    pthread_cond_destroy(&rv->cv);
    pthread_mutex_destroy(&rv->mu);
    free(rv);
}

void llmc_client_wait_refreshes(llmc_client *c)
{
    if (c && c->reval)
        wait_idle(c->reval);
}

static void job_free(rjob *j)
{
    free(j->key);
    free(j->text);
    llmc__headers_free(j->api_headers);
    free(j);
}

/* The refresh itself: the provider call and store of llmc_call_execute,
 * from the request text and API headers, under the key the stale lookup
 * used. */
static void refresh(rjob *j)
{
    llmc_client *c = j->c;
    llmc_err err;
    llmc_err_clear(&err);
    const llmc__calltype *ct = llmc__calltype_of(j->type);
    json_object *obj = NULL, *resp = NULL;
    llmc_response *r = NULL;
    if (!ct || llmc__parse_request_text(j->text, j->len, &obj, &err) != LLMC_OK)
        goto out;
    llmc__reqview v;
    memset(&v, 0, sizeof v);
    v.root.o = obj;
    llmc__route rt;
    if (llmc__resolve_route(c, ct, &v, &rt, &err) != LLMC_OK)
        goto out;
    rt.api_headers = (const char *const *)j->api_headers;
    int attempts = 0;
    uint64_t t0 = llmc_mono_ns();
    llmc_status st =
        ct->upstream ? ct->upstream(c, obj, &rt, NULL, NULL, &resp, &attempts, &err)
                     : llmc__call_upstream(c, j->type, obj, NULL, &rt, NULL, NULL, &resp,
                                           &attempts, &err);
    int64_t upstream_ms = llmc__upstream_ms_since(t0);
    if (st != LLMC_OK) {
        llmc__log("info", "background refresh failed (%s); the stale entry stays",
                  llmc_strerror(st));
        goto out;
    }
    json_object_object_del(resp, "cache");
    if (ct->storable ? !ct->storable(resp, 0) : !llmc__response_storable(j->type, resp))
        goto out;
    if (llmc__response_from_obj(resp, j->key, rt.model, rt.ops->hdr.name, &r, &err) != LLMC_OK)
        goto out;
    llmc__put_entry_kept(c->cache, j->key, j->kl, j->type, r->text, r->text_len, j->ttl_ms,
                         j->keep_ms, upstream_ms, LLMC_ENTRY_SOFT, &j->stored);
out:
    llmc_response_free(r);
    if (resp)
        json_object_put(resp);
    if (obj)
        json_object_put(obj);
}

static void *refresh_main(void *arg)
{
    rjob *j = arg;
    refresh(j);
    llmc__reval *rv = j->c->reval;
    pthread_mutex_lock(&rv->mu);
    for (rjob **p = &rv->running; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    rv->n--;
    if (j->stored) {
        rv->done[rv->done_next % DONE_SLOTS].h = j->h;
        rv->done[rv->done_next % DONE_SLOTS].started_ms = j->started_ms;
        rv->done_next++;
    }
    pthread_cond_broadcast(&rv->cv);
    pthread_mutex_unlock(&rv->mu);
    job_free(j); /* unlinked: nobody else sees it */
    return NULL;
}

int llmc__reval_start(llmc_call *k, int64_t created_ms)
{
    llmc__reval *rv = k->c->reval;
    if (!rv || !k->kl || !k->c->cache)
        return 0;
    rjob *j = calloc(1, sizeof *j);
    if (!j)
        return 0;
    j->c = k->c;
    j->type = k->ct->type;
    j->kl = k->kl;
    j->ttl_ms = k->ctl.ttl_ms;
    j->keep_ms = llmc__stale_keep_ms(k);
    const char *text = k->text;
    size_t len = k->len;
    if (!text && k->obj)
        text = json_object_to_json_string_length(k->obj, LLMC__JSON_FLAGS, &len);
    j->key = malloc(k->kl + 1);
    j->text = text ? malloc(len + 1) : NULL;
    int hfail = 0;
    j->api_headers = llmc__headers_dup((const char *const *)k->ctl.api_headers, &hfail);
    if (!j->key || !j->text || hfail) {
        job_free(j);
        return 0;
    }
    memcpy(j->key, k->kp, k->kl);
    j->key[k->kl] = '\0';
    memcpy(j->text, text, len);
    j->text[len] = '\0';
    j->len = len;
    j->h = llmc__hash64(j->key, j->kl);

    pthread_mutex_lock(&rv->mu);
    int go = !rv->closing && rv->n < MAX_RUNNING;
    for (rjob *o = rv->running; go && o; o = o->next)
        if (o->kl == j->kl && memcmp(o->key, j->key, j->kl) == 0)
            go = 0; /* that key is being refreshed already */
    j->started_ms = llmc_now_ms();
    for (unsigned i = 0; go && i < DONE_SLOTS; i++)
        if (rv->done[i].h == j->h && rv->done[i].started_ms > created_ms &&
            j->started_ms - rv->done[i].started_ms < DONE_GRACE_MS)
            go = 0; /* refreshed after this stale entry was written */
    if (go) {
        pthread_attr_t at;
        pthread_t tid;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        j->next = rv->running;
        rv->running = j;
        rv->n++;
        if (pthread_create(&tid, &at, refresh_main, j) != 0) {
            rv->running = j->next;
            rv->n--;
            go = 0;
        }
        pthread_attr_destroy(&at);
    }
    pthread_mutex_unlock(&rv->mu);
    if (!go)
        job_free(j);
    return go;
}
