/* Test support for the Redis Cluster and Sentinel backends:
 * start a real Redis Cluster (redis-server --cluster-enabled yes, created
 * with redis-cli --cluster create) and a real Sentinel setup (a master,
 * a replica, three sentinels) on free loopback ports, look at them with
 * redis-cli, kill nodes. Every server dies with the process that started
 * it (PR_SET_PDEATHSIG), so a failed test leaves none behind. */
#ifndef LLMC_RCLUSTER_H
#define LLMC_RCLUSTER_H

#include "testsrv.h"

#define RCLUSTER_PASSWORD "clu5ter-pw"
#define RCLUSTER_MAX 8

typedef struct rcnode {
    testsrv srv;
    int port;      /* client port */
    int bus_port;  /* cluster bus port (cluster-port) */
} rcnode;

typedef struct rcluster {
    rcnode node[RCLUSTER_MAX];
    int n;
    char url[2048];       /* redis-cluster://:pw@h:p,h:p,h:p */
    /* TLS (rcluster_start_tls): nodes listen on TLS only, the cluster bus
     * and replication use TLS too. */
    int tls;
    char ca[300], cert[300], key[300], client_cert[300], client_key[300];
} rcluster;

/* Start masters * (1 + replicas) nodes, create the cluster and wait for
 * cluster_state:ok on every node. 0 on success. */
int rcluster_start(rcluster *c, int masters, int replicas);
/* The same over TLS with the given PEM files (server and client
 * certificates signed by ca); url is a rediss-cluster:// URL. */
int rcluster_start_tls(rcluster *c, int masters, int replicas, const char *ca, const char *cert,
                       const char *key, const char *client_cert, const char *client_key);
void rcluster_stop(rcluster *c);
/* SIGKILL node i (keeps its directory). */
void rcluster_kill(rcluster *c, int i);
int rcluster_alive(const rcluster *c, int i);
/* redis-cli (with the password) against port, args appended; output
 * malloc'd (caller frees) or NULL. With cluster=1, -c (follow
 * redirects). */
char *rcluster_cli_port(int port, int cluster, const char *const *args);
char *rcluster_cli(rcluster *c, int i, const char *const *args);
/* 1 if node i says it is a master, 0 replica, -1 unreachable. */
int rcluster_is_master(rcluster *c, int i);
/* Index of the first replica of master i (from ROLE), -1 if none. */
int rcluster_replica_of(rcluster *c, int i);
/* Wait until every live node reports cluster_state:ok and all slots ok. */
int rcluster_wait_ok(rcluster *c, int timeout_ms);
/* Wait until `redis-cli --cluster check` is clean: all nodes agree about
 * the slots, all slots covered, no open (migrating/importing) slot. */
int rcluster_wait_agree(rcluster *c, int timeout_ms);
/* Node id (CLUSTER MYID) into buf. 0 on success. */
int rcluster_node_id(rcluster *c, int i, char *buf, size_t n);
/* Integer result of a command (e.g. DBSIZE) on node i, -1 on failure. */
long long rcluster_int(rcluster *c, int i, const char *const *args);

/* Sentinel: node[0] master, node[1] replica, sentinel[0..2]. */
typedef struct rsentinel {
    rcnode node[2];
    rcnode sentinel[3];
    char url[2048]; /* redis-sentinel://:pw@h:s1,h:s2,h:s3/mymaster?sentinel_password=.. */
    int tls;
    char ca[300], client_cert[300], client_key[300];
} rsentinel;

#define RSENTINEL_MASTER "mymaster"
#define RSENTINEL_PASSWORD "sentinel-pw-3" /* requirepass of the sentinels */

int rsentinel_start(rsentinel *s);
/* TLS only: a master and one sentinel (quorum 1), both on TLS ports;
 * url is a rediss-sentinel:// URL. */
int rsentinel_start_tls(rsentinel *s, const char *ca, const char *cert, const char *key,
                        const char *client_cert, const char *client_key);
void rsentinel_stop(rsentinel *s);
/* Port of the master according to sentinel 0, -1 on failure. */
int rsentinel_master_port(rsentinel *s);
/* redis-cli against sentinel i. */
char *rsentinel_cli(rsentinel *s, int i, const char *const *args);

/* Conformance glue: a 3-master cluster (1 replica each). */
int conf_redis_cluster_setup(char *url, size_t n);
void conf_redis_cluster_teardown(void);

#endif
