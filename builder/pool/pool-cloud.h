/* The local cloud a pool runs for its members (`imgbuild serve --state-dir DIR/cloud`): one
 * instance pool of etcd members, each with its metadata and Vault services on UNIX sockets only
 * this user can open (DIR/cloud/sockets/m<index>-{metadata,vault}.sock: the socket tells the
 * local cloud which member calls), a Vault-compatible service with the etcd role and PKI, and the
 * cloud API the agents discover their peers with (a port on 127.0.0.1: its requests are signed).
 * Shared by the host and QEMU providers, which differ only in ports and addresses.
 *
 * It keeps its state in the provider's object (pool.json "provider"): pool_id, network_id,
 * api_key, api_secret, etcd_token, serve_pid and instances [{id, ip, index, ...}]. A pool of
 * Kubernetes nodes also has kube {endpoint, ca_pin, token}, and each instance its node_name: the
 * instance's user-data is then bootagent's node user-data (kube_token, kube_endpoint, kube_ca_pin,
 * node_name); otherwise it is empty. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "buf.h"
#include "pool-provider.h"

/* The first of a new local pool's ports: o->port_base, or when that is 0 a random multiple of 500
 * in 10000..31500 (below the kernel's ephemeral range). The caller checks that its ports fit. */
int pool_cloud_port_base(const pool_create_options *o);

/* Create the pool's identifiers, API credentials and member numbering (next_index 1) in p->state
 * unless there already. Returns 0,
 * -ENOMEM or -errno from the random source. */
int pool_cloud_init(pool_provider *p);

/* Rewrite DIR/cloud/cloud.json from p->state (creating DIR/cloud). api_url is the cloud API as
 * members reach it; each instance's services are on its sockets (pool_cloud_socket()). Returns 0,
 * -ENAMETOOLONG when DIR is too long for the sockets' paths (err says so), or -errno (err says
 * which file). */
int pool_cloud_write(pool_provider *p, int api_port, const char *api_url, buf *err);

/* The UNIX socket of member index's service ("metadata" or "vault") in the pool at pool_dir, as a
 * new string (NULL when out of memory). */
char *pool_cloud_socket(const char *pool_dir, int index, const char *service);

/* Start the local cloud unless it runs (state serve_pid), in its own process group so it outlives
 * this command; wait until it serves. Returns 0 or -errno (err says why). */
int pool_cloud_start(pool_provider *p, buf *err);
/* Stop the local cloud: the teardown operation of the providers that run one. Returns 0. */
int pool_cloud_teardown(pool_provider *p, buf *err);

/* Wait (up to 10 s) until the local cloud serves an instance's metadata on its socket (it
 * re-reads cloud.json when the file changes). */
int pool_cloud_wait_metadata(const char *socket_path, buf *err);

/* Whether pid is alive, not a zombie, and its executable is called comm (guards against a
 * recycled PID; comm is at most 15 characters, as the kernel keeps it). */
bool pool_process_is(pid_t pid, const char *comm);
/* SIGTERM the process group led by pid if pid is still comm, SIGKILL after 5 s. */
void pool_stop_group(pid_t pid, const char *comm);

/* The index of instance id in p->state's instances, or -ENOENT. */
int pool_cloud_member_index(pool_provider *p, const char *id);
/* Add a new instance to p->state: a random id, index next_index (at most max_index) and the
 * address ip_prefix + (10 + index), e.g. "127.0.0." -> 127.0.0.11 for index 1. Returns 0,
 * -ERANGE when the indexes ran out (err says so) or -ENOMEM. */
int pool_cloud_reserve(pool_provider *p, int max_index, const char *ip_prefix, char **ret_id, char **ret_ip, buf *err);

