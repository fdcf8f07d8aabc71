/* bootagent renew: re-issue the certificate past renew_fraction of its lifetime. */
#pragma once

int cmd_renew(int argc, char **argv);
