/* wipe: realloc_wiped moves the bytes and zeroes the old block before freeing it; the buffers
 * that grow with secret data in them (buf, read_file) use it, and json_wipe_on_free() (set by
 * imgbuild's and bootagent's main) makes jansson zero what it frees. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "fs.h"
#include "json.h"
#include "wipe.h"

/* wipe.c's calls to explicit_bzero bind to this definition (the executable's), so the test sees
 * which block was zeroed, and how much of it. */
static void *zeroed;
static size_t zeroed_len;
/* Blocks zeroed while they held marker. */
static const char *marker;
static int marker_wiped;
void explicit_bzero(void *p, size_t n) {
        volatile unsigned char *v = p;
        /* (read through v: the declaration says explicit_bzero only writes p) */
        size_t m = marker ? strlen(marker) : 0;
        for (size_t i = 0; m && i + m <= n; i++) {
                size_t k = 0;
                while (k < m && v[i + k] == (unsigned char) marker[k])
                        k++;
                if (k == m) {
                        marker_wiped++;
                        break;
                }
        }
        for (size_t i = 0; i < n; i++)
                v[i] = 0;
        zeroed = p;
        zeroed_len = n;
}

/* A buf holding a secret that grows: the block it leaves is zeroed. */
static void test_buf_growth(void) {
        buf b = {};
        marker = "s.buf-secret-token";
        marker_wiped = 0;
        CHECK_OK(buf_puts(&b, marker));
        for (int i = 0; i < 64; i++)
                CHECK_OK(buf_puts(&b, "0123456789abcdef0123456789abcdef"));
        CHECK(marker_wiped >= 1);
        int before = marker_wiped;
        free_wiped(b.data);
        CHECK(marker_wiped == before + 1);
        marker = NULL;
}

/* read_file of a key larger than its first block: the first block is zeroed when it grows. */
static void test_read_file_growth(void) {
        char path[] = "/tmp/test-wipe-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        marker = "-----BEGIN PRIVATE KEY----- read-file-secret";
        CHECK(write(fd, marker, strlen(marker)) == (ssize_t) strlen(marker));
        char filler[1024];
        memset(filler, 'k', sizeof(filler));
        for (int i = 0; i < 12; i++)
                CHECK(write(fd, filler, sizeof(filler)) == (ssize_t) sizeof(filler));
        CHECK(close(fd) == 0);
        marker_wiped = 0;
        char *data = NULL;
        size_t len = 0;
        CHECK_OK(read_file(path, 1 << 20, &data, &len));
        CHECK(len == strlen(marker) + 12 * 1024);
        CHECK(marker_wiped >= 1); /* 4096 bytes, then 8192, then 16384: two blocks left behind */
        free_wiped(data);
        CHECK(unlink(path) == 0);
        marker = NULL;
}

/* json_wipe_on_free(): jansson's frees go through free_wiped, so a token in a parsed reply or a
 * built object is zeroed when the object goes. */
static void test_json_wipe(void) {
        json_wipe_on_free();
        marker = "hvs.json-secret-token";
        marker_wiped = 0;
        json_t *j = json_pack("{s:s}", "client_token", marker);
        CHECK(j);
        json_decref(j);
        CHECK(marker_wiped >= 1);

        marker_wiped = 0;
        char text[128];
        snprintf(text, sizeof(text), "{\"auth\": {\"client_token\": \"%s\"}}", marker);
        j = json_loads(text, 0, NULL);
        CHECK(j);
        char *dumped = json_dumps(j, JSON_COMPACT);
        CHECK(dumped && strstr(dumped, marker));
        free_wiped(dumped);
        marker_wiped = 0;
        json_decref(j);
        CHECK(marker_wiped >= 1);
        marker = NULL;
}

int main(void) {
        test_buf_growth();
        test_read_file_growth();
        test_json_wipe();

        char *p = malloc(16);
        CHECK(p);
        memcpy(p, "token-abcdefghij", 16);

        char *q = realloc_wiped(p, 16, 4096);
        CHECK(q && q != p);
        CHECK(memcmp(q, "token-abcdefghij", 16) == 0);
        CHECK(zeroed == p && zeroed_len >= 16);

        /* Shrinking copies only what fits. */
        char *r = realloc_wiped(q, 16, 5);
        CHECK(r && memcmp(r, "token", 5) == 0);
        CHECK(zeroed == q && zeroed_len >= 4096);

        /* From nothing: a fresh block, nothing to wipe. */
        zeroed = NULL;
        char *s = realloc_wiped(NULL, 0, 8);
        CHECK(s && !zeroed);

        free_wiped(r);
        CHECK(zeroed == r);
        free_wiped(s);
        free_wiped(NULL);
        return 0;
}
