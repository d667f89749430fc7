/* The OpenAI Responses API call type (POST /v1/responses): the hooks of
 * its row in the call-type table (calltypes.c), its stream parser and
 * replayer, the native request builder for OpenAI and Azure OpenAI, and
 * the translation to and from chat for every other provider.
 *
 *   calltype_responses.c  validation, the never-cached members, the key
 *                         exclusions, storability, the upstream hook
 *   responses_stream.c    typed stream events: parser (upstream -> events
 *                         + the final response) and replayer (stored
 *                         response -> the same event sequence)
 *   responses_chat.c      Responses <-> chat, for providers without a
 *                         native Responses endpoint
 *   responses_conv.c      a translated stream: chat chunks -> Responses
 *                         events, as they arrive
 *   providers/openai_responses.c  the native HTTP request and response
 * Not installed. */
#ifndef LLMC_CALLTYPE_RESPONSES_H
#define LLMC_CALLTYPE_RESPONSES_H

#include "client_internal.h"

/* ---- the row's hooks ---- */
extern const char *const llmc__responses_paths[];
extern const char *const llmc__responses_key_excluded[];
llmc_status llmc__responses_validate(const llmc__jv *root, llmc_err *err);
const char *llmc__responses_never_cached(const llmc__jv *root);
int llmc__responses_storable(json_object *resp, int streamed);
llmc_status llmc__responses_upstream(llmc_client *c, json_object *req, const llmc__route *rt,
                                     llmc_chunk_cb cb, void *ud, json_object **out,
                                     int *attempts, llmc_err *err);
llmc_status llmc__responses_replay(json_object *resp, llmc_chunk_cb cb, void *ud,
                                   llmc_err *err);

/* The text of the first output_text part of the first message item of
 * a response object, or NULL (borrowed from resp). */
const char *llmc__responses_output_text(json_object *resp);

/* ---- the stream parser (responses_stream.c) ----
 * Fed one SSE event at a time. Each event must be a JSON object whose
 * "type" names it (and agrees with the SSE event name when there is
 * one); the parser keeps what decides whether the stream may be stored:
 * a response.completed event carrying the final response object. An
 * "error", "response.failed" or "response.incomplete" event ends the
 * stream with an error (nothing is stored). */
typedef struct llmc__rstream {
    int done;            /* response.completed seen */
    json_object *final;  /* its "response" (owned) */
    size_t events;       /* events accepted */
} llmc__rstream;

void llmc__rstream_init(llmc__rstream *s);
void llmc__rstream_free(llmc__rstream *s);
/* Parse one event (`event` = the SSE event name or NULL). LLMC_OK with
 * *ev = the event object (new reference) to hand to the caller; an
 * error status with err naming what was wrong: LLMC_EPROTO for a
 * malformed event (not JSON, no "type", a type that disagrees with the
 * SSE name, a completed event without a response object, an event after
 * response.completed), the mapped status of an "error" event, and
 * LLMC_EUPSTREAM for response.failed / response.incomplete. Any input is
 * safe: it is fuzzed (tests/fuzz/fuzz_responses_stream.c). */
llmc_status llmc__rstream_event(llmc__rstream *s, const char *provider, const char *event,
                                const char *data, size_t len, json_object **ev,
                                llmc_err *err);

/* Replay a Responses response object as the event sequence a stream of
 * it has: response.created, response.in_progress, then per output item
 * output_item.added, its parts (content_part / output_text / refusal,
 * reasoning_summary_part / reasoning_summary_text,
 * function_call_arguments), output_item.done, and response.completed;
 * text over several deltas (llmc__responses_piece_len), sequence_number
 * counting from 0. The sink borrows each event. */
llmc_status llmc__responses_replay_sink(json_object *resp, llmc_chunk_sink sink, void *ud);
/* The response as response.created and response.in_progress show it:
 * a shallow copy of resp, status "in_progress", output [], usage null
 * (new reference; NULL when out of memory). */
json_object *llmc__responses_started(json_object *resp);
/* Length of the next delta of s[0..len): up to and including the next
 * space, at most 16 bytes, never splitting a UTF-8 sequence. */
size_t llmc__responses_piece_len(const char *s, size_t len);

/* ---- translation (responses_chat.c) ---- */
/* A chat request for a Responses request (new reference in *out).
 * LLMC_EINVAL naming the field for anything chat cannot express. */
llmc_status llmc__responses_to_chat(json_object *req, json_object **out, llmc_err *err);
/* A Responses response object for a chat completion answering req. */
llmc_status llmc__responses_from_chat(json_object *chat, json_object *req, json_object **out,
                                      llmc_err *err);

/* ---- a translated stream (responses_conv.c) ----
 * Chat chunks (any chat adapter's stream) as Responses events, passed to
 * cb as they arrive: response.created and response.in_progress on the
 * first chunk, then per output item (reasoning summary, message text,
 * function call, in the order the stream opens them) output_item.added,
 * its part added, one delta per chunk that carries some of it, and its
 * .done events once the next item opens or the stream ends. Only the
 * choice with index 0 is followed (the one the translation answers).
 * Not thread-safe; one per stream. req (borrowed, must outlive the
 * converter) is the Responses request, for response.created. */
typedef struct llmc__rconv llmc__rconv;
llmc__rconv *llmc__rconv_new(json_object *req, llmc_chunk_cb cb, void *ud);
void llmc__rconv_free(llmc__rconv *cv);
/* One chunk (borrowed): 0 to go on, non-zero to stop the stream (cb
 * asked to, or llmc__rconv_error says what went wrong). */
int llmc__rconv_chunk(llmc__rconv *cv, json_object *chunk);
/* The end, once the stream completed and resp is its translation
 * (llmc__responses_from_chat): resp's "id" and "output" become the ones
 * the events showed (so the stored response replays as streamed), the
 * open item's .done events and response.completed are sent. Non-zero
 * as for llmc__rconv_chunk. */
int llmc__rconv_finish(llmc__rconv *cv, json_object *resp);
/* Why the converter stopped a stream on its own (a chunk it cannot
 * follow, out of memory): that status with err set; LLMC_OK when it did
 * not (cb asked to stop, or nothing went wrong). */
llmc_status llmc__rconv_error(const llmc__rconv *cv, llmc_err *err);

/* ---- native (providers/openai_responses.c) ---- */
/* 1 when the provider (by registry name) serves /responses itself. */
int llmc__responses_native(const char *provider);
/* The HTTP request for a native provider ("openai": <base>/responses,
 * Bearer key; "azure": <endpoint>/openai/responses?api-version=..,
 * api-key header, the deployment as model). */
llmc_status llmc__responses_build(const llmc_provider_call *pc, json_object *req,
                                  llmc_http_request *out, llmc_err *err);
/* A 2xx body: a response object (new reference), checked. */
llmc_status llmc__responses_parse(const llmc_provider_call *pc, const llmc_http_response *resp,
                                  json_object **out, llmc_err *err);

#endif
