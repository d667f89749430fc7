/* Internal: a strict RFC 8259 tokenizer over request text and the v1 key
 * computed from its tokens, byte-identical to the json-c path (keys.c +
 * canon.c over json_tokener_parse). See fastjson.c.
 *
 * Everything here may decline: whenever the text is not plain RFC 8259
 * JSON or holds something whose json-c reading is not certain (integers
 * beyond int64, lone surrogates, NUL in member names, deep nesting,
 * numbers out of double range, invalid UTF-8), the answer is "not
 * handled" and the caller takes the json-c path. */
#ifndef LLMC_FASTJSON_H
#define LLMC_FASTJSON_H

#include "internal.h"

enum { LLMC__FJ_OBJ = 1, LLMC__FJ_ARR, LLMC__FJ_STR, LLMC__FJ_NUM, LLMC__FJ_TRUE,
       LLMC__FJ_FALSE, LLMC__FJ_NULL };

/* One token. Containers are followed by their children (an object by
 * name, value, name, value...); `next` is the index just past the
 * token's subtree. */
typedef struct llmc__fjtok {
    uint32_t start; /* STR: first byte inside the quotes; NUM: first char;
                       OBJ, ARR: the opening bracket */
    uint32_t len;   /* STR: raw bytes inside the quotes; NUM, literals: chars;
                       OBJ, ARR: bytes through the closing bracket */
    uint32_t next;
    uint32_t n;     /* OBJ: members; ARR: elements */
    uint8_t type;
    uint8_t esc;    /* STR: holds backslash escapes; NUM: is an integer */
    union {
        int64_t i;  /* NUM, integer: json-c's int64 */
        double d;   /* NUM, otherwise: strtod's double */
    } num;
} llmc__fjtok;

typedef struct llmc__fjdoc {
    const char *text;
    size_t len;
    llmc__fjtok *t;
    size_t n, cap;
    int lazy;         /* from llmc__fj_scan: number values not computed */
    llmc_buf scratch; /* decoded member names while canonicalising */
} llmc__fjdoc;

/* The calling thread's reusable documents (freed at thread exit); NULL
 * on allocation failure. Slot LLMC__FJ_DOC_REQUEST holds the request
 * being prepared; LLMC__FJ_DOC_AUX serves code that reads another text
 * (a stored response) while the request's document is still in use. */
enum { LLMC__FJ_DOC_REQUEST = 0, LLMC__FJ_DOC_AUX = 1, LLMC__FJ_DOC_SLOTS = 2 };
llmc__fjdoc *llmc__fj_thread_doc_slot(int slot);
#define llmc__fj_thread_doc() llmc__fj_thread_doc_slot(LLMC__FJ_DOC_REQUEST)
/* Release a document's memory (for documents not from llmc__fj_thread_doc). */
void llmc__fj_doc_free(llmc__fjdoc *d);

/* Tokenize `text` (not NUL-terminated; `len` bytes) whose top level must
 * be an object. 1 = handled, 0 = declined. Token 0 is the object. */
int llmc__fj_parse(llmc__fjdoc *d, const char *text, size_t len);

/* As llmc__fj_parse, but numbers are checked for syntax only: no value
 * is computed (nor range checked) while scanning, and llmc__fj_number
 * computes one on demand (declining what llmc__fj_parse declines). For
 * text whose numbers are mostly copied, not read (a stored vector). */
int llmc__fj_scan(llmc__fjdoc *d, const char *text, size_t len);

/* The offset just past value token `tok` in the document's text, so the
 * value's exact text is text[t[tok].start - (STR ? 1 : 0), end). */
size_t llmc__fj_end(const llmc__fjdoc *d, size_t tok);

/* Index of the value of member `name` of object token `obj` (the last
 * one, as json-c keeps the last of duplicates); -1 when absent. */
long llmc__fj_member(const llmc__fjdoc *d, size_t obj, const char *name);

/* Append the decoded bytes of string token `tok` to `out`. 1 = done,
 * 0 = declined (not a string, NUL inside when `no_nul`, out of memory). */
int llmc__fj_string(const llmc__fjdoc *d, size_t tok, int no_nul, llmc_buf *out);

/* The number json-c makes of token `tok`: *is_int and *i for integers,
 * *dv always. 1 = done, 0 = not a number. */
int llmc__fj_number(const llmc__fjdoc *d, size_t tok, int *is_int, int64_t *i, double *dv);

/* Append the RFC 8785 form of value `tok` (as canon.c writes the json-c
 * value). LLMC_OK, LLMC_ENOMEM, or LLMC_ENOTSUP when declined. */
llmc_status llmc__fj_canon(llmc__fjdoc *d, size_t tok, llmc_buf *out);

/* Inputs of the v1 key from text; the same fields as llmc_key_input. */
typedef struct llmc__fj_keyin {
    llmc_call_type call;
    const char *provider;
    const char *model;
    const char *api_base;  /* NULL when the provider's default */
    const char *namespace_;
    int scope_by_user;
    long input_item;       /* embeddings: token index of the item, else -1 */
} llmc__fj_keyin;

/* The v1 key (and material when non-NULL) of the parsed request in `d`,
 * byte-identical to llmc_key_compute("v1") on json_tokener_parse of the
 * same text. LLMC_OK, or LLMC_ENOTSUP (declined) / LLMC_ENOMEM. */
llmc_status llmc__fj_key_v1(llmc__fjdoc *d, const llmc__fj_keyin *in, llmc_buf *key,
                            llmc_buf *material);

/* client.c: hits answered through the text fast path, process-wide
 * (for tests). */
uint64_t llmc__client_fast_hits(void);

#endif
