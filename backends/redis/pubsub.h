/* Redis pub/sub subscriptions for the local tier (pubsub.c). The
 * functions taking `void *sub` have the shape of the backend table's
 * sub_poll / sub_ping / sub_close members, so the Redis backends point
 * those straight at them. Not installed. */
#ifndef LLMC_REDIS_PUBSUB_H
#define LLMC_REDIS_PUBSUB_H

#include "conn.h"

typedef struct llmc_rsub llmc_rsub;

/* Connect to the node of cfg (AUTH, SELECT as for any connection) and
 * SUBSCRIBE to channel, within cfg's connect and command timeouts. */
llmc_status llmc__rsub_open(const llmc_rnode_cfg *cfg, const char *channel, llmc_rsub **out,
                            llmc_err *err);
/* Deliver the messages that arrive within wait_ms. */
llmc_status llmc__rsub_poll(void *sub, int64_t wait_ms, llmc_message_cb cb, void *ud,
                            llmc_err *err);
/* PING on the subscription and read up to its answer, delivering the
 * messages before it. */
llmc_status llmc__rsub_ping(void *sub, llmc_message_cb cb, void *ud, llmc_err *err);
void llmc__rsub_close(void *sub);

#endif
