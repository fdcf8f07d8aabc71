#include "agent.h"

/* libgnutls is mapped only because Debian's libcurl links librtmp, which links it; bootagent never
 * calls it (its TLS is libcurl's OpenSSL). Its constructor would still initialize it at load
 * (~0.6 MB more of its pages and heap at first boot, p11-kit included). This is gnutls.h's
 * GNUTLS_SKIP_GLOBAL_INIT, spelled out so that main.c needs no gnutls header: the library asks
 * this function, which the executable exports (bootagent/CMakeLists.txt), before initializing. */
int _gnutls_global_init_skip(void);
int _gnutls_global_init_skip(void) { return 1; }

int main(int argc, char **argv) { return bootagent_main(argc, argv); }
