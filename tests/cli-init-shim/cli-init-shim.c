/* An LD_PRELOAD shim (test code) for tests/integration/test-cli-init.sh: records in the file
 * $CLI_INIT_SHIM_LOG, one line each and in order, the calls the program makes to
 * curl_global_init, curl_easy_init, json_set_alloc_funcs (whether the free function is libc's
 * plain free) and json_loadb (jansson's parser, which lib/json.c uses), then forwards them to the
 * real libraries. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static void record(const char *line) {
        const char *path = getenv("CLI_INIT_SHIM_LOG");
        FILE *f = path ? fopen(path, "ae") : NULL;
        if (!f)
                return;
        fprintf(f, "%s\n", line);
        fclose(f);
}

CURLcode curl_global_init(long flags) {
        CURLcode (*real)(long) = (CURLcode(*)(long)) dlsym(RTLD_NEXT, "curl_global_init");
        record("curl_global_init");
        return real ? real(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void) {
        CURL *(*real)(void) = (CURL * (*) (void)) dlsym(RTLD_NEXT, "curl_easy_init");
        record("curl_easy_init");
        return real ? real() : NULL;
}

void json_set_alloc_funcs(json_malloc_t malloc_fn, json_free_t free_fn) {
        void (*real)(json_malloc_t, json_free_t) =
                (void (*)(json_malloc_t, json_free_t)) dlsym(RTLD_NEXT, "json_set_alloc_funcs");
        record(free_fn == free ? "json_set_alloc_funcs plain-free" : "json_set_alloc_funcs own-free");
        if (real)
                real(malloc_fn, free_fn);
}

json_t *json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error) {
        json_t *(*real)(const char *, size_t, size_t, json_error_t *) =
                (json_t * (*) (const char *, size_t, size_t, json_error_t *)) dlsym(RTLD_NEXT, "json_loadb");
        record("json_loadb");
        return real ? real(buffer, buflen, flags, error) : NULL;
}
