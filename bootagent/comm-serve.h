/* `bootagent serve`: the communicator server inside a build VM (protocol in lib/comm.h). Named
 * comm-serve so it cannot be confused with builder/cloud/serve.h (`imgbuild serve`, the local cloud). */
#pragma once

/* Serve requests read from in_fd, replies written to out_fd, one request at a time, until the
 * client closes the stream (returns 0) or asks to shut down (returns 1 after replying). Malformed
 * frames are answered with an error frame and serving goes on. Returns -errno when the transport
 * fails or a frame is too large to skip. Runs requested commands with the server's privileges. */
int comm_serve_loop(int in_fd, int out_fd);

/* bootagent serve [--device PATH | --stdio]: --device (used in build VMs, e.g.
 * /dev/virtio-ports/org.imgbuild.comm) powers the machine off on a shutdown request; --stdio (the
 * SSH channel, tests) just exits. */
int cmd_comm_serve(int argc, char **argv);
