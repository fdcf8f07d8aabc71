/* The communicator protocol between imgbuild (client, on the host) and `bootagent serve` (server,
 * inside the guest). Used by both sides; transport is any byte stream (virtio-serial port, serial
 * line, SSH channel stdio, socketpair in tests).
 *
 * Wire format: every message is one length-prefixed CBOR frame (lib/frame.h) holding a CBOR map
 * with text keys, at most COMM_FRAME_MAX bytes. Every message carries "id" (unsigned), chosen by
 * the client per request and echoed on every reply frame of that request. One request is in flight
 * at a time; the server handles requests in order.
 *
 * Requests (client -> server), told apart by "op":
 *   {op: "ping", id}                                   -> {id, ok: true}
 *   {op: "exec", id, argv: [text...], env: [text "K=V"...], cwd: text (optional)}
 *        -> any number of {id, stdout: bytes} / {id, stderr: bytes} in the order produced,
 *           then {id, exit: uint} (exit code, or 128+signal when killed).
 *           stdin is /dev/null; env entries are added to (or replace entries of) the server's
 *           environment. The exit frame comes once the command has exited and its stdout and
 *           stderr are closed: a daemon it leaves behind must not keep them open. The command
 *           runs in its own process group, killed if the session breaks.
 *   {op: "put", id, path: text}, then {id, data: bytes}..., then {id, end: true}
 *        -> {id, ok: true} once the tar stream in the data frames has been extracted under the
 *           directory path (created 0755 if missing). Modes, owners and mtimes are kept; entries
 *           with absolute paths, ".." or leading through symlinks are refused.
 *   {op: "get", id, path: text}
 *        -> {id, data: bytes}..., then {id, end: true}: a tar stream of the directory's contents
 *           (entries relative to path) or, for a file, of that one file under its base name.
 *   {op: "shutdown", id}                               -> {id, ok: true}, then the server stops.
 *
 * Any request may instead be answered by {id, error: text}, which ends it. A frame that is not
 * valid CBOR or not a valid message gets {id: 0 or its id, error: text} and the server keeps
 * serving; a frame whose length exceeds COMM_FRAME_MAX gets an error and ends the session (the
 * stream cannot be resynchronized). Data chunks are at most COMM_CHUNK_MAX bytes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "macro.h"

#define COMM_FRAME_MAX (1024u * 1024u)
#define COMM_CHUNK_MAX (64u * 1024u)

typedef enum comm_type {
        /* requests */
        COMM_PING,
        COMM_EXEC,
        COMM_PUT,
        COMM_GET,
        COMM_SHUTDOWN,
        /* streams and replies */
        COMM_DATA,
        COMM_END,
        COMM_STDOUT,
        COMM_STDERR,
        COMM_EXIT,
        COMM_OK,
        COMM_ERROR,
        _COMM_TYPE_MAX,
} comm_type;

/* One decoded message. Which fields are set depends on type: argv/env/cwd (EXEC), path (PUT, GET),
 * data/size (DATA, STDOUT, STDERR), status (EXIT), error (ERROR). All pointers are owned by the
 * message and freed by comm_msg_done(). */
typedef struct comm_msg {
        comm_type type;
        uint64_t id;
        char **argv;
        char **env;
        char *cwd;
        char *path;
        uint8_t *data;
        size_t size;
        uint64_t status;
        char *error;
} comm_msg;

/* Name of a type as used on the wire ("ping", "stdout", ...). */
const char *comm_type_to_string(comm_type t);

/* Free what msg owns and reset it to zero. Accepts a zeroed message. */
void comm_msg_done(comm_msg *msg);

/* Decode a frame's item. Returns 0 and fills *ret, or -EBADMSG when the item is not a valid
 * message (then *ret is untouched; *ret_id, if not NULL, gets the item's id when one could be
 * read, else 0, so the error reply can name the request). */
int comm_msg_parse(const cbor_item_t *item, comm_msg *ret, uint64_t *ret_id);

/* Encode msg into a new CBOR map. Returns 0 or -ENOMEM / -EINVAL (fields missing for the type). */
int comm_msg_build(const comm_msg *msg, cbor_item_t **ret);

/* Send one message as a frame. Returns 0 or -errno (-EMSGSIZE over COMM_FRAME_MAX). */
int comm_send(int fd, const comm_msg *msg);
/* Convenience senders. */
int comm_send_simple(int fd, comm_type type, uint64_t id);
int comm_send_data(int fd, comm_type type, uint64_t id, const void *data, size_t size);
int comm_send_error(int fd, uint64_t id, const char *message);

/* Receive one message. Returns 0 and fills *ret; -EPIPE on clean EOF before a frame; -EBADMSG
 * for a frame that is not a valid message (consumed; *ret_bad_id as in comm_msg_parse, may be
 * NULL); -EMSGSIZE for an oversized frame (not consumed: the session is broken); other -errno. */
int comm_recv(int fd, comm_msg *ret, uint64_t *ret_bad_id);

/* Send path as a tar stream of DATA frames followed by END, all with the given id: a directory's
 * contents relative to it, or a single file under its base name. Keeps modes, owners, mtimes,
 * symlinks. Returns 0 or -errno (after a failure no END has been sent). */
int comm_send_tar(int fd, uint64_t id, const char *path);

/* Receive DATA frames for id up to END and extract the tar stream under directory dir (created
 * 0755 if missing). If preserve_owner, owners from the stream are applied (needs root). Always
 * reads up to END (or an error/EOF) so the stream stays in sync, even when extraction fails.
 * Returns 0, -EBADMSG for a bad tar stream or unexpected frame, -EPERM for unsafe entries, or
 * another -errno. If the sender reported an ERROR frame instead, returns -EREMOTEIO and puts its
 * text in *ret_remote_error (may be NULL). */
int comm_recv_tar(int fd, uint64_t id, const char *dir, bool preserve_owner, char **ret_remote_error);
