/* Incremental parsers for the two streaming framings providers use:
 * Server-Sent Events (WHATWG HTML, "Server-sent events": lines ending in
 * CR, LF or CRLF; "field: value"; a blank line dispatches) and NDJSON
 * (one JSON value per line). Input arrives in arbitrary pieces: a line,
 * even a CRLF pair, may be split across calls. */
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX (64u * 1024u * 1024u)

void llmc__sse_init(llmc__sse *p)
{
    memset(p, 0, sizeof *p);
}

void llmc__sse_free(llmc__sse *p)
{
    llmc_buf_free(&p->line);
    llmc_buf_free(&p->event);
    llmc_buf_free(&p->data);
    memset(p, 0, sizeof *p);
}

static void sse_reset_event(llmc__sse *p)
{
    llmc_buf_clear(&p->event);
    llmc_buf_clear(&p->data);
    p->has_data = 0;
}

static llmc_status sse_dispatch(llmc__sse *p, llmc__event_cb cb, void *ud)
{
    llmc_status st = LLMC_OK;
    /* Per the spec an event without data is not dispatched. */
    if (p->has_data) {
        const char *ev = p->event.len ? p->event.data : NULL;
        const char *d = p->data.data ? p->data.data : "";
        st = cb(ud, ev, d, p->data.len);
    }
    sse_reset_event(p);
    return st;
}

/* One complete line (without its terminator). */
static llmc_status sse_line(llmc__sse *p, const char *l, size_t n, llmc__event_cb cb,
                            void *ud)
{
    if (n == 0)
        return sse_dispatch(p, cb, ud);
    if (l[0] == ':')
        return LLMC_OK; /* comment / keep-alive */
    const char *colon = memchr(l, ':', n);
    size_t fl = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vl = colon ? n - fl - 1 : 0;
    if (vl && *v == ' ') {
        v++;
        vl--;
    }
    size_t max = p->max_event ? p->max_event : DEFAULT_MAX;
    if (fl == 4 && memcmp(l, "data", 4) == 0) {
        if (p->data.len + vl + 1 > max)
            return LLMC_ETOOBIG;
        if (p->has_data && llmc_buf_append(&p->data, "\n", 1) != LLMC_OK)
            return LLMC_ENOMEM;
        if (llmc_buf_append(&p->data, v, vl) != LLMC_OK)
            return LLMC_ENOMEM;
        p->has_data = 1;
    } else if (fl == 5 && memcmp(l, "event", 5) == 0) {
        if (llmc_buf_set(&p->event, v, vl) != LLMC_OK)
            return LLMC_ENOMEM;
    }
    /* id and retry only matter to reconnecting browsers; other fields are
     * ignored as the spec says. */
    return LLMC_OK;
}

llmc_status llmc__sse_feed(llmc__sse *p, const char *data, size_t len, llmc__event_cb cb,
                           void *ud)
{
    size_t i = 0;
    /* A UTF-8 BOM may open the stream, split over any number of feeds:
     * the events must not depend on how the bytes arrive. */
    static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
    while (!p->started && i < len) {
        if (data[i] == bom[p->bom]) {
            i++;
            if (++p->bom == 3)
                p->started = 1;
            continue;
        }
        /* Not a BOM after all: the bytes held back are the line's. */
        p->started = 1;
        if (p->bom && llmc_buf_append(&p->line, bom, (size_t)p->bom) != LLMC_OK)
            return LLMC_ENOMEM;
    }
    size_t max = p->max_event ? p->max_event : DEFAULT_MAX;
    while (i < len) {
        if (p->skip_lf) {
            p->skip_lf = 0;
            if (data[i] == '\n') {
                i++;
                continue;
            }
        }
        /* Find the next line terminator. */
        size_t j = i;
        while (j < len && data[j] != '\n' && data[j] != '\r')
            j++;
        if (j == len) {
            if (p->line.len + (j - i) > max)
                return LLMC_ETOOBIG;
            if (llmc_buf_append(&p->line, data + i, j - i) != LLMC_OK)
                return LLMC_ENOMEM;
            break;
        }
        llmc_status st;
        if (p->line.len) {
            if (llmc_buf_append(&p->line, data + i, j - i) != LLMC_OK)
                return LLMC_ENOMEM;
            st = sse_line(p, p->line.data, p->line.len, cb, ud);
            llmc_buf_clear(&p->line);
        } else {
            st = sse_line(p, data + i, j - i, cb, ud);
        }
        if (st != LLMC_OK)
            return st;
        if (data[j] == '\r')
            p->skip_lf = 1;
        i = j + 1;
    }
    return LLMC_OK;
}

llmc_status llmc__sse_finish(llmc__sse *p, llmc__event_cb cb, void *ud)
{
    llmc_buf_clear(&p->line);
    if (p->has_data)
        return sse_dispatch(p, cb, ud);
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */

void llmc__ndjson_init(llmc__ndjson *p)
{
    memset(p, 0, sizeof *p);
}

void llmc__ndjson_free(llmc__ndjson *p)
{
    llmc_buf_free(&p->line);
    memset(p, 0, sizeof *p);
}

static llmc_status nd_line(const char *l, size_t n, llmc__event_cb cb, void *ud)
{
    while (n && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
        n--;
    size_t k = 0;
    while (k < n && (l[k] == ' ' || l[k] == '\t'))
        k++;
    if (k == n)
        return LLMC_OK;
    return cb(ud, NULL, l + k, n - k);
}

llmc_status llmc__ndjson_feed(llmc__ndjson *p, const char *data, size_t len,
                              llmc__event_cb cb, void *ud)
{
    size_t max = p->max_line ? p->max_line : DEFAULT_MAX;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        if (!nl) {
            if (p->line.len + (len - i) > max)
                return LLMC_ETOOBIG;
            return llmc_buf_append(&p->line, data + i, len - i) == LLMC_OK ? LLMC_OK
                                                                          : LLMC_ENOMEM;
        }
        size_t j = (size_t)(nl - data);
        llmc_status st;
        if (p->line.len) {
            if (llmc_buf_append(&p->line, data + i, j - i) != LLMC_OK)
                return LLMC_ENOMEM;
            st = nd_line(p->line.data, p->line.len, cb, ud);
            llmc_buf_clear(&p->line);
        } else {
            st = nd_line(data + i, j - i, cb, ud);
        }
        if (st != LLMC_OK)
            return st;
        i = j + 1;
    }
    return LLMC_OK;
}

llmc_status llmc__ndjson_finish(llmc__ndjson *p, llmc__event_cb cb, void *ud)
{
    llmc_status st = LLMC_OK;
    if (p->line.len)
        st = nd_line(p->line.data, p->line.len, cb, ud);
    llmc_buf_clear(&p->line);
    return st;
}
