/* The Anthropic Messages API call type (LLMC_CALL_MESSAGES), shared by
 * its files:
 *
 *   messages_stream.c    its stream events: assembling a streamed answer
 *                        into the Message that is stored, replaying a
 *                        stored Message as the same event sequence, and
 *                        what may be stored
 *   messages_chat.c      translation to and from chat, for providers
 *                        that do not speak the Messages API natively
 *   calltype_messages.c  the call-type row: validation, key material,
 *                        the provider call
 *
 * The stored answer is the Message object exactly as the API returns it
 * ({"id","type":"message","role","model","content":[...],"stop_reason",
 * "stop_sequence","usage":{...}}). Not installed. */
#ifndef LLMC_MESSAGES_H
#define LLMC_MESSAGES_H

#include "llmcache/llmcache.h"

#include <json-c/json.h>

/* ---- stream events (messages_stream.c) ---- */

/* Assembles Messages stream events (message_start, content_block_start /
 * _delta / _stop, message_delta, message_stop; ping, error and unknown
 * types are ignored) into the Message, as the official SDKs accumulate
 * them: text_delta and citations_delta extend text blocks,
 * thinking_delta and signature_delta thinking blocks, input_json_delta
 * the input of the block it names (parsed at its content_block_stop),
 * message_delta sets the delta's members and the usage counters it
 * carries. Events that do not fit (a delta for a block never started,
 * a second message_start) are ignored; a tool input that is not JSON
 * makes the answer unstorable. Not thread-safe (one per stream). */
typedef struct llmc__msg_asm llmc__msg_asm;
llmc__msg_asm *llmc__msg_asm_new(void);
void llmc__msg_asm_free(llmc__msg_asm *a);
/* LLMC_ENOMEM is the only failure. The event is borrowed. */
llmc_status llmc__msg_asm_add(llmc__msg_asm *a, json_object *ev);
/* The assembled Message (new reference), NULL when no message_start
 * came; marked with an "error" member (so never storable) when no
 * message_stop followed the message_start or a tool input was not JSON.
 * Call once. */
json_object *llmc__msg_asm_result(llmc__msg_asm *a);
/* 1 once message_stop was seen. */
int llmc__msg_asm_stopped(const llmc__msg_asm *a);

/* Replay a stored Message as events: message_start (the message without
 * content, stop reason null, output_tokens 0), per block
 * content_block_start (the block emptied), its deltas (text and thinking
 * in several pieces, the signature, citations, the tool input's JSON text
 * in pieces), content_block_stop, a ping after the first block's start
 * as Anthropic sends it, message_delta (stop_reason, stop_sequence, the
 * whole usage), message_stop. Assembling the replay gives the Message
 * back. Each event is passed to sink (borrowed) and released. */
llmc_status llmc__msg_replay(json_object *msg, llmc_chunk_sink sink, void *ud);

/* A Message worth storing: "type":"message", no error, content blocks
 * all typed objects, at least one that is not an empty text. */
int llmc__msg_storable(json_object *msg);
/* A streamed Message that finished: it has a stop_reason. */
int llmc__msg_finished(json_object *msg);

/* ---- translation through chat (messages_chat.c) ---- */

/* A Messages request as an OpenAI chat request (new object) for
 * `provider`; LLMC_EINVAL naming the field for what the chat format
 * cannot carry (thinking, server tools, documents, ...). */
llmc_status llmc__msg_to_chat(json_object *req, const char *provider, json_object **out,
                              llmc_err *err);
/* A chat.completion as a Message (new object); LLMC_EPROTO when it has
 * no choice or tool arguments that are not a JSON object. */
llmc_status llmc__msg_from_chat(json_object *chat, json_object **out, llmc_err *err);

/* Streamed chat chunks as Messages events, as they arrive. */
typedef struct llmc__msg_conv llmc__msg_conv;
llmc__msg_conv *llmc__msg_conv_new(llmc_chunk_cb cb, void *ud);
void llmc__msg_conv_free(llmc__msg_conv *cv);
/* One chunk: 0 to go on, non-zero when cb asked to stop. */
int llmc__msg_conv_chunk(llmc__msg_conv *cv, json_object *chunk);
/* The end, once the stream completed and `msg` is its translation:
 * closes the open block, message_delta and message_stop. */
int llmc__msg_conv_finish(llmc__msg_conv *cv, json_object *msg);

#endif
