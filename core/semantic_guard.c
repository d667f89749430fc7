/* Guards of a semantic hit: two prompts may be close as vectors and still
 * ask different things. "refund 10 dollars" and "refund 100 dollars",
 * "is X safe" and "is X not safe", 'translate "yes"' and 'translate
 * "no"' differ in exactly what an embedding weighs least. So before a
 * candidate is served, the two texts must carry
 *   - the same numbers (as a multiset, in any order; "1,000" = "1000",
 *     "3.50" = "3.5"),
 *   - the same number of negations (not, no, never, n't, ...),
 *   - the same quoted strings (as a multiset, compared byte for byte).
 * These are deliberately strict: a guard that refuses a true duplicate
 * costs one upstream call, one that lets a different question through
 * serves a wrong answer. */
#include "internal.h"
#include "semantic.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 64

typedef struct item {
    const char *p;
    size_t n;
    char norm[48]; /* numbers: normalised digits */
    int toolong;   /* more digits than norm holds: never equal to anything */
} item;

typedef struct facts {
    item nums[MAX_ITEMS];
    size_t nnums;
    item quotes[MAX_ITEMS];
    size_t nquotes;
    size_t negations;
    int overflow; /* more than MAX_ITEMS of something: compare nothing semantically */
} facts;

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (unsigned char)c >= 0x80;
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static const char *const negation_words[] = {
    "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor",
    "cannot", "without", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent",
    "cant", "couldnt", "wont", "wouldnt", "shouldnt", "hasnt", "havent", "hadnt", "mustnt",
    "neednt", "aint", NULL};

static int is_negation(const char *w, size_t n)
{
    char b[16];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == '\'')
            continue; /* "don't" reads as "dont" */
        if (m + 1 >= sizeof b)
            return 0;
        b[m++] = lower(w[i]);
    }
    b[m] = '\0';
    for (int i = 0; negation_words[i]; i++)
        if (strcmp(b, negation_words[i]) == 0)
            return 1;
    /* "n't" on any other word (e.g. "mightn't") */
    return n >= 3 && w[n - 1] == 't' && w[n - 2] == '\'' && lower(w[n - 3]) == 'n';
}

/* A number: digits with single ',' or '.' between digits. Thousands
 * separators are dropped, a fraction's trailing zeros too, so that
 * spellings of one value agree. A sign is part of it ("-5" vs "5"). */
static size_t read_number(const char *s, size_t i, size_t n, item *it)
{
    size_t j = i, m = 0;
    int neg = i > 0 && s[i - 1] == '-' && (i == 1 || !is_alnum(s[i - 2]));
    if (neg)
        it->norm[m++] = '-';
    int dot = 0;
    while (j < n) {
        if (is_digit(s[j])) {
            if (m + 1 < sizeof it->norm)
                it->norm[m++] = s[j];
            else
                it->toolong = 1;
            j++;
        } else if (s[j] == ',' && !dot && j > i && j + 3 < n &&
                   is_digit(s[j + 1]) && is_digit(s[j + 2]) && is_digit(s[j + 3]) &&
                   (j + 4 >= n || !is_digit(s[j + 4]))) {
            j++; /* a thousands separator: "1,000" is 1000 ("1,5" is two numbers) */
        } else if (s[j] == '.' && j + 1 < n && is_digit(s[j + 1]) && j > i &&
                   is_digit(s[j - 1])) {
            if (!dot) {
                dot = 1;
                if (m + 1 < sizeof it->norm)
                    it->norm[m++] = '.';
            } else if (s[j] == '.') {
                break; /* a second dot: a version or a date; stop here */
            }
            j++;
        } else {
            break;
        }
    }
    if (dot) {
        while (m > 0 && it->norm[m - 1] == '0')
            m--;
        if (m > 0 && it->norm[m - 1] == '.')
            m--;
    }
    it->norm[m] = '\0';
    it->p = s + i;
    it->n = j - i;
    return j;
}

static void scan(const char *s, size_t n, facts *f)
{
    memset(f, 0, sizeof *f);
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (is_digit(c)) {
            item it;
            memset(&it, 0, sizeof it);
            i = read_number(s, i, n, &it);
            if (it.toolong)
                f->overflow = 1;
            else if (f->nnums < MAX_ITEMS)
                f->nums[f->nnums++] = it;
            else
                f->overflow = 1;
            continue;
        }
        /* A quote opens at '"' or '`' anywhere, at '\'' only where a word
         * does not continue (so "don't" is no quote), and closes at the
         * same character. */
        if (c == '"' || c == '`' || (c == '\'' && (i == 0 || !is_alnum(s[i - 1])))) {
            const char *end = memchr(s + i + 1, c, n - i - 1);
            if (end) {
                if (f->nquotes < MAX_ITEMS) {
                    f->quotes[f->nquotes].p = s + i + 1;
                    f->quotes[f->nquotes].n = (size_t)(end - (s + i + 1));
                    f->nquotes++;
                } else {
                    f->overflow = 1;
                }
                i = (size_t)(end - s) + 1;
                continue;
            }
        }
        if (is_alnum(c)) {
            size_t j = i;
            while (j < n && (is_alnum(s[j]) || (s[j] == '\'' && j + 1 < n && is_alnum(s[j + 1]))))
                j++;
            if (is_negation(s + i, j - i))
                f->negations++;
            i = j;
            continue;
        }
        i++;
    }
}

static int cmp_num(const void *a, const void *b)
{
    return strcmp(((const item *)a)->norm, ((const item *)b)->norm);
}

static int cmp_quote(const void *a, const void *b)
{
    const item *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->p, y->p, m);
    return r ? r : (x->n > y->n) - (x->n < y->n);
}

int llmc__sem_guards_agree(const char *a, size_t an, const char *b, size_t bn,
                           const char **why)
{
    facts *fa = malloc(sizeof *fa), *fb = malloc(sizeof *fb);
    int ok = 0;
    const char *reason = "out of memory";
    if (!fa || !fb)
        goto done;
    scan(a, an, fa);
    scan(b, bn, fb);
    if (fa->overflow || fb->overflow) {
        reason = "too many numbers or quotes to compare";
        goto done;
    }
    if (fa->negations != fb->negations) {
        reason = "negations differ";
        goto done;
    }
    if (fa->nnums != fb->nnums) {
        reason = "numbers differ";
        goto done;
    }
    qsort(fa->nums, fa->nnums, sizeof(item), cmp_num);
    qsort(fb->nums, fb->nnums, sizeof(item), cmp_num);
    for (size_t i = 0; i < fa->nnums; i++)
        if (strcmp(fa->nums[i].norm, fb->nums[i].norm) != 0) {
            reason = "numbers differ";
            goto done;
        }
    if (fa->nquotes != fb->nquotes) {
        reason = "quoted strings differ";
        goto done;
    }
    qsort(fa->quotes, fa->nquotes, sizeof(item), cmp_quote);
    qsort(fb->quotes, fb->nquotes, sizeof(item), cmp_quote);
    for (size_t i = 0; i < fa->nquotes; i++)
        if (cmp_quote(&fa->quotes[i], &fb->quotes[i]) != 0) {
            reason = "quoted strings differ";
            goto done;
        }
    ok = 1;
    reason = NULL;
done:
    free(fa);
    free(fb);
    if (why)
        *why = reason;
    return ok;
}
