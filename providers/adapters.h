/* Helpers shared by the built-in provider adapters. Internal: not
 * installed. */
#ifndef LLMC_PROVIDERS_ADAPTERS_H
#define LLMC_PROVIDERS_ADAPTERS_H

#include "builtins.h"
#include "internal.h"

#include <json-c/json.h>

/* The adapter tables themselves are declared in builtins.h. */
/* Shared by the OpenAI-format adapters (openai, azure, compatible):
 * the request body (everything but model/transport, `model` set to
 * `model` unless NULL), response parsing and stream-event parsing. */
llmc_status llmc__openai_body(const llmc_provider_call *call, struct json_object *request,
                              const char *model, llmc_http_request *out, llmc_err *err);
llmc_status llmc__openai_parse_response(const llmc_provider_call *call,
                                        const llmc_http_response *resp,
                                        struct json_object **out, llmc_err *err);
llmc_status llmc__openai_parse_stream_event(void *state, const llmc_provider_call *call,
                                            const char *event, const char *data,
                                            size_t data_len, llmc_chunk_sink sink,
                                            void *sink_ud, int *done, llmc_err *err);

/* anthropic for Messages API calls (anthropic_messages.c): the request,
 * answer and events in the API's own shapes. */
llmc_status llmc__anth_msg_build(const llmc_provider_call *call, struct json_object *request,
                                 llmc_http_request *out, llmc_err *err);
llmc_status llmc__anth_msg_parse(const llmc_provider_call *call, const llmc_http_response *resp,
                                 struct json_object **out, llmc_err *err);
llmc_status llmc__anth_msg_event(const char *event, const char *data, size_t len,
                                 llmc_chunk_sink sink, void *sink_ud, int *done, llmc_err *err);

#endif
