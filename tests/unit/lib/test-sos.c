/* lib/sos: the S3 XML readers (elements, entities, namespaces, nesting, malformed input), the
 * error line, and the shape of a presigned URL. The calls themselves run against the fake
 * object store in tests/integration/test-exoscale-push.sh. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sos.h"
#include "strv.h"

static void test_xml(void) {
        const char *list = "<?xml version=\"1.0\"?><ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                           "<Bucket>b</Bucket><Upload><Key>k&amp;1</Key><UploadId>u1</UploadId></Upload>"
                           "<Upload><Key>k2</Key><UploadId>u&#50;&#x33;</UploadId></Upload><Upload/></ListMultipartUploadsResult>";
        size_t pos = 0, n;
        const char *inner;
        char *text = NULL;

        CHECK(sos_xml_element(list, strlen(list), &pos, "Upload", &inner, &n) == 1);
        CHECK_OK(sos_xml_text(inner, n, "Key", &text));
        CHECK_STREQ(text, "k&1");
        free(text);
        CHECK(sos_xml_element(list, strlen(list), &pos, "Upload", &inner, &n) == 1);
        CHECK_OK(sos_xml_text(inner, n, "UploadId", &text));
        CHECK_STREQ(text, "u23");
        free(text);
        CHECK(sos_xml_element(list, strlen(list), &pos, "Upload", &inner, &n) == 1);
        CHECK(n == 0);
        CHECK(sos_xml_element(list, strlen(list), &pos, "Upload", &inner, &n) == 0);
        /* <Bucket> is not <BucketX>; namespace prefixes are ignored; nesting of the same name. */
        CHECK(sos_xml_text("<BucketX>no</BucketX><Bucket>yes</Bucket>", 41, "Bucket", &text) == 0);
        CHECK_STREQ(text, "yes");
        free(text);
        const char *ns = "<s3:Error><s3:Code>A</s3:Code></s3:Error>";
        CHECK_OK(sos_xml_text(ns, strlen(ns), "Code", &text));
        CHECK_STREQ(text, "A");
        free(text);
        const char *nested = "<E><E>in</E>out</E>";
        CHECK_OK(sos_xml_text(nested, strlen(nested), "E", &text));
        CHECK_STREQ(text, "<E>in</E>out");
        free(text);
        /* Missing, unclosed, bad entities. */
        CHECK(sos_xml_text("<A>x</A>", 8, "B", &text) == -ENOENT);
        CHECK(sos_xml_text("<A>x", 4, "A", &text) == -EBADMSG);
        CHECK(sos_xml_text("<A>&bogus;</A>", 14, "A", &text) == -EBADMSG);
        CHECK(sos_xml_text("<A>&#0;</A>", 11, "A", &text) == -EBADMSG);
        CHECK(sos_xml_text("<A>&#xD800;</A>", 15, "A", &text) == -EBADMSG);
        CHECK(sos_xml_text("<A>a & b</A>", 12, "A", &text) == -EBADMSG);
        CHECK(sos_xml_text("<A>x\0y</A>", 10, "A", &text) == -EBADMSG);
}

static void test_error_message(void) {
        const char *e = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
                        "<Message>The request signature we calculated does not match\nthe signature you provided.</Message></Error>";
        char *m = sos_error_message(e, strlen(e));
        CHECK_STREQ(m, "SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.");
        free(m);
        m = sos_error_message("Bad\tGateway", 11);
        CHECK_STREQ(m, "Bad Gateway");
        free(m);
        m = sos_error_message("", 0);
        CHECK_STREQ(m, "");
        free(m);
}

static void test_presign(void) {
        _cleanup_(sos_freep) sos *s = NULL;
        char *url = NULL;
        CHECK(sos_new("", "secret", "ch-gva-2", &s) == -EINVAL);
        CHECK_OK(sos_new("EXOkey", "secret", "ch-gva-2", &s));
        CHECK_OK(sos_presign(s, "GET", "my-bucket", "imgbuild/etcd 1.qcow2", 3600, &url));
        CHECK(startswith(url, "https://sos-ch-gva-2.exo.io/my-bucket/imgbuild/etcd%201.qcow2?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                              "&X-Amz-Credential=EXOkey%2F"));
        CHECK(strstr(url, "%2Fch-gva-2%2Fs3%2Faws4_request&X-Amz-Date="));
        CHECK(strstr(url, "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature="));
        CHECK(!strstr(url, "secret"));
        free(url);
        CHECK_OK(sos_set_endpoint(s, "http://127.0.0.1:29501/sos/{zone}/"));
        CHECK_OK(sos_set_zone(s, "de-fra-1"));
        CHECK_OK(sos_presign(s, "GET", "b", "k", 60, &url));
        CHECK(startswith(url, "http://127.0.0.1:29501/sos/de-fra-1/b/k?"));
        free(url);
        CHECK(sos_presign(s, "GET", "b", "k", 0, &url) == -EINVAL);
}

int main(void) {
        test_xml();
        test_error_message();
        test_presign();
        return 0;
}
