/* Internal: JSON text decoding shared by the fast tokenizer (fastjson.c)
 * and every json-c parse. See jsontext.c. */
#ifndef LLMC_JSONTEXT_H
#define LLMC_JSONTEXT_H

#include "internal.h"

struct json_object;

/* Result of decoding one \u escape. */
enum {
    LLMC__U_OK = 0,    /* *cp holds a Unicode scalar value */
    LLMC__U_BAD = 1,   /* not four hex digits */
    LLMC__U_LONE = 2   /* a surrogate that is not half of a pair */
};

/* Decode the escape at s[0..avail), where s[0] == '\\' and s[1] == 'u':
 * one \uXXXX, or a high and low surrogate pair \uD8xx\uDCxx, into *cp;
 * *used is the number of bytes consumed (6 or 12; 6 for a lone
 * surrogate, whose value is then in *cp). */
int llmc__json_u_decode(const unsigned char *s, size_t avail, uint32_t *cp, size_t *used);

/* UTF-8 of a scalar value (not a surrogate) into out (room for 4);
 * returns 1..4. */
size_t llmc__utf8_put(uint32_t cp, unsigned char *out);

/* What to do with a lone surrogate escape. */
enum {
    LLMC__LONE_REJECT = 0,  /* the parse fails (request text: keys must be exact) */
    LLMC__LONE_REPLACE = 1  /* U+FFFD (provider responses) */
};

/* Parse one JSON value from text[0..len) with json-c (its lenient
 * grammar: comments, single quotes), except that every surrogate escape is
 * decoded by llmc__json_u_decode instead of json-c (which turns some
 * valid pairs into U+FFFD), and in a tokener nothing else has used, so no
 * state of an earlier, failed parse can reach this one. Only whitespace
 * may follow the value. `what` names the text in messages. LLMC_OK with
 * *out (NULL for a JSON null), else `fail` (the caller's status for bad
 * text) with a message naming the byte. */
llmc_status llmc__json_parse(const char *text, size_t len, int lone, llmc_status fail,
                             const char *what, struct json_object **out, llmc_err *err);

#endif
