/* bootagent leave: leave the role's cluster (only roles with a leave step: etcd). */
#pragma once

int cmd_leave(int argc, char **argv);
