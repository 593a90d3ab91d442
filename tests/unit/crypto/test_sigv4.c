/*
 * test_sigv4.c - SigV4 against AWS's published vectors, then verification end to end.
 *
 * Two sources of vectors, both asserted byte for byte (canonical request, string to sign,
 * signature):
 *  - AWS's Signature Version 4 test suite (aws-sig-v4-test-suite, 2015 edition, as vendored in
 *    bazelbuild/bazel third_party/aws-sig-v4-test-suite and awslabs/aws-c-auth
 *    tests/aws-signing-test-suite/v4): credentials AKIDEXAMPLE, region us-east-1, service
 *    "service", time 20150830T123600Z. Only the cases whose paths need no normalisation, since
 *    S3 does none.
 *  - The S3 API reference, "Signature Calculations for the Authorization Header: Transferring
 *    Payload in a Single Chunk": examplebucket, AKIAIOSFODNN7EXAMPLE, 20130524T000000Z (GET
 *    Object with Range, PUT Object, GET Bucket Lifecycle, GET Bucket (List Objects)).
 * Plus the signing-key walkthrough of the SigV4 documentation (service "iam").
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct hdr {
    const char *name;  /* lowercase, as the callback is asked */
    const char *value; /* several instances already joined by ',' */
} hdr;

typedef struct vector {
    const char *name;
    const char *method;
    const char *path;         /* decoded */
    cf_sigv4_param params[4]; /* decoded */
    size_t nparams;
    hdr headers[6];
    const char *signed_headers;
    const char *payload_hash;
    const char *creq, *sts, *signature;
} vector;

typedef struct creds {
    const char *access_key, *secret, *amz_date, *date, *region, *service;
    int64_t now;
} creds;

static const creds SUITE = {"AKIDEXAMPLE",      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            "20150830T123600Z", "20150830",
                            "us-east-1",        "service",
                            1440938160};
static const creds S3DOC = {"AKIAIOSFODNN7EXAMPLE",
                            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                            "20130524T000000Z",
                            "20130524",
                            "us-east-1",
                            "s3",
                            1369353600};

/* One vector per block, laid out as the published files are. */
/* clang-format off */
#define SUITE_HOST {"host", "example.amazonaws.com"}
#define SUITE_DATE {"x-amz-date", "20150830T123600Z"}
#define SUITE_STS(h) "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" h

static const vector suite_vectors[] = {
    {"get-vanilla", "GET", "/", {{0}}, 0, {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"),
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-query", "GET", "/", {{0}}, 0, {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"),
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-empty-query-key", "GET", "/", {{"Param1", "value1"}}, 1, {SUITE_HOST, SUITE_DATE},
     "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab"),
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query-order-key", "GET", "/", {{"Param1", "value2"}, {"Param1", "Value1"}}, 2,
     {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89"),
     "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {"get-vanilla-query-order-key-case", "GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}, 2,
     {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"),
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-value", "GET", "/", {{"Param1", "value2"}, {"Param1", "value1"}}, 2,
     {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606"),
     "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {"get-vanilla-query-unreserved", "GET", "/",
     {{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}}, 1,
     {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
     "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177"),
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query", "GET", "/", {{"\xe1\x88\xb4", "bar"}}, 1, {SUITE_HOST, SUITE_DATE},
     "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073"),
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    /* Sorted by the encoded names: "%E1..." < "Param" < "Param-3". */
    {"get-vanilla-query-order-encoded", "GET", "/",
     {{"Param-3", "Value3"}, {"Param", "Value2"}, {"\xe1\x88\xb4", "Value1"}}, 3,
     {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71"),
     "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
    {"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     {{0}}, 0, {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\n"
     "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9"),
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-utf8", "GET", "/\xe1\x88\xb4", {{0}}, 0, {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102"),
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-header-key-duplicate", "GET", "/", {{0}}, 0,
     {SUITE_HOST, {"my-header1", "value2,value2,value1"}, SUITE_DATE}, "host;my-header1;x-amz-date",
     EMPTY_SHA256,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\n"
     "host;my-header1;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c"),
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-order", "GET", "/", {{0}}, 0,
     {SUITE_HOST, {"my-header1", "value4,value1,value3,value2"}, SUITE_DATE}, "host;my-header1;x-amz-date",
     EMPTY_SHA256,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86"),
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    /* The leading space of " value1" is what the raw header line carries before parsing. */
    {"get-header-value-trim", "GET", "/", {{0}}, 0,
     {SUITE_HOST, {"my-header1", " value1"}, {"my-header2", "\"a   b   c\""}, SUITE_DATE},
     "host;my-header1;my-header2;x-amz-date", EMPTY_SHA256,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7"),
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"post-vanilla", "POST", "/", {{0}}, 0, {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"),
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-header-key-case", "POST", "/", {{0}}, 0, {SUITE_HOST, SUITE_DATE}, "host;x-amz-date", EMPTY_SHA256,
     "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"),
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-header-key-sort", "POST", "/", {{0}}, 0, {SUITE_HOST, {"my-header1", "value1"}, SUITE_DATE},
     "host;my-header1;x-amz-date", EMPTY_SHA256,
     "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\n"
     "host;my-header1;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65"),
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {"post-header-value-case", "POST", "/", {{0}}, 0, {SUITE_HOST, {"my-header1", "VALUE1"}, SUITE_DATE},
     "host;my-header1;x-amz-date", EMPTY_SHA256,
     "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\n"
     "host;my-header1;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93"),
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"post-vanilla-empty-query-value", "POST", "/", {{"Param1", "value1"}}, 1, {SUITE_HOST, SUITE_DATE},
     "host;x-amz-date", EMPTY_SHA256,
     "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd"),
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"post-vanilla-query", "POST", "/", {{"Param1", "value1"}}, 1, {SUITE_HOST, SUITE_DATE},
     "host;x-amz-date", EMPTY_SHA256,
     "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     SUITE_STS("9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd"),
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    /* Body "Param1=value1"; its SHA-256 is the payload hash. */
    {"post-x-www-form-urlencoded", "POST", "/", {{0}}, 0,
     {{"content-type", "application/x-www-form-urlencoded"}, SUITE_HOST, SUITE_DATE},
     "content-type;host;x-amz-date", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     SUITE_STS("42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"),
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"post-x-www-form-urlencoded-parameters", "POST", "/", {{0}}, 0,
     {{"content-type", "application/x-www-form-urlencoded; charset=utf8"}, SUITE_HOST, SUITE_DATE},
     "content-type;host;x-amz-date", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     SUITE_STS("2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c"),
     "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
};

#define S3_HOST {"host", "examplebucket.s3.amazonaws.com"}
#define S3_DATE {"x-amz-date", "20130524T000000Z"}
#define S3_EMPTY {"x-amz-content-sha256", EMPTY_SHA256}
#define S3_STS(h) "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" h
#define PUT_SHA256 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"

static const vector s3_vectors[] = {
    {"GET Object", "GET", "/test.txt", {{0}}, 0, {S3_HOST, {"range", "bytes=0-9"}, S3_EMPTY, S3_DATE},
     "host;range;x-amz-content-sha256;x-amz-date", EMPTY_SHA256,
     "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA256
     "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
     S3_STS("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"),
     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
    /* The key is "test$file.text": '$' is encoded once. */
    {"PUT Object", "PUT", "/test$file.text", {{0}}, 0,
     {{"date", "Fri, 24 May 2013 00:00:00 GMT"}, S3_HOST, {"x-amz-content-sha256", PUT_SHA256}, S3_DATE,
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", PUT_SHA256,
     "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
     "x-amz-content-sha256:" PUT_SHA256 "\nx-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n" PUT_SHA256,
     S3_STS("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"),
     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
    {"GET Bucket Lifecycle", "GET", "/", {{"lifecycle", ""}}, 1, {S3_HOST, S3_EMPTY, S3_DATE},
     "host;x-amz-content-sha256;x-amz-date", EMPTY_SHA256,
     "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" EMPTY_SHA256
     "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
     S3_STS("9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"),
     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
    /* Parameters handed over out of order: the canonical query sorts them. */
    {"GET Bucket (List Objects)", "GET", "/", {{"prefix", "J"}, {"max-keys", "2"}}, 2,
     {S3_HOST, S3_EMPTY, S3_DATE}, "host;x-amz-content-sha256;x-amz-date", EMPTY_SHA256,
     "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" EMPTY_SHA256
     "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
     S3_STS("df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"),
     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
};
/* clang-format on */

/* The header callback over a vector's (or a test's) header table. */
static const char *lookup(void *ctx, const char *name)
{
    const hdr *h = ctx;
    for (; h->name; h++)
        if (strcmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

/* Every header name of the same table, for the check of unsigned x-amz-* headers. */
static int each_hdr(void *ctx, cf_sigv4_header_visit_fn visit, void *arg)
{
    for (const hdr *h = ctx; h->name; h++) {
        int rc = visit(arg, h->name);
        if (rc)
            return rc;
    }
    return 0;
}

static cf_sigv4_request request_of(const vector *v)
{
    cf_sigv4_request r = {v->method,          v->path,         v->params, v->nparams, lookup,
                          (void *)v->headers, v->payload_hash, each_hdr};
    return r;
}

static void format_authz(const creds *c, const vector *v, const char *sep, char *out, size_t n)
{
    snprintf(out, n, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request%sSignedHeaders=%s%sSignature=%s",
             c->access_key, c->date, c->region, c->service, sep, v->signed_headers, sep, v->signature);
}

/* Canonical request, string to sign and signature, each compared with the published text. */
static void check_vector(const creds *c, const vector *v)
{
    cf_buf creq, sts;
    cf_err err = {0};
    cf_buf_init(&creq, 1 << 16);
    cf_buf_init(&sts, 4096);
    cf_sigv4_request r = request_of(v);
    if (cf_sigv4_canonical_request(&r, v->signed_headers, &creq, &err) != 0)
        fail_msg("%s: %s", v->name, err.msg);
    if (strcmp(creq.data, v->creq) != 0)
        fail_msg("%s: canonical request\n%s\n--- want ---\n%s", v->name, creq.data, v->creq);
    assert_int_equal(
        cf_sigv4_string_to_sign(c->amz_date, c->date, c->region, c->service, creq.data, creq.len, &sts), 0);
    if (strcmp(sts.data, v->sts) != 0)
        fail_msg("%s: string to sign\n%s\n--- want ---\n%s", v->name, sts.data, v->sts);
    unsigned char key[32];
    char sig[65];
    cf_sigv4_signing_key(c->secret, c->date, c->region, c->service, key);
    cf_sigv4_sign(key, sts.data, sts.len, sig);
    if (strcmp(sig, v->signature) != 0)
        fail_msg("%s: signature %s, want %s", v->name, sig, v->signature);

    /* The Authorization header a client sends for it parses back to the same parts. */
    char header[1024];
    cf_sigv4_auth auth;
    format_authz(c, v, ", ", header, sizeof header);
    assert_int_equal(cf_sigv4_parse_auth(header, &auth, &err), 0);
    assert_string_equal(auth.access_key, c->access_key);
    assert_string_equal(auth.date, c->date);
    assert_string_equal(auth.region, c->region);
    assert_string_equal(auth.service, c->service);
    assert_string_equal(auth.signed_headers, v->signed_headers);
    assert_string_equal(auth.signature, v->signature);
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
}

static void test_aws_suite_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof suite_vectors / sizeof *suite_vectors; i++)
        check_vector(&SUITE, &suite_vectors[i]);
}

static void test_s3_documentation_vectors(void **state)
{
    (void)state;
    /* The PUT example's payload hash is the SHA-256 of its body. */
    unsigned char d[CF_SHA256_LEN];
    char hex[65];
    cf_sha256("Welcome to Amazon S3.", 21, d);
    cf_hex_encode(d, sizeof d, hex);
    assert_string_equal(hex, PUT_SHA256);
    for (size_t i = 0; i < sizeof s3_vectors / sizeof *s3_vectors; i++)
        check_vector(&S3DOC, &s3_vectors[i]);
}

static void assert_key_hex(const unsigned char key[32], const char *want)
{
    char hex[65];
    cf_hex_encode(key, 32, hex);
    assert_string_equal(hex, want);
}

static void test_signing_key_documented_values(void **state)
{
    (void)state;
    unsigned char key[32];
    char sig[65];
    /* SigV4 documentation, "derive a signing key" walkthrough. */
    cf_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam", key);
    assert_key_hex(key, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    const char *sts = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
                      "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
    cf_sigv4_sign(key, sts, strlen(sts), sig);
    assert_string_equal(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    /* S3 documentation's signing key for 20130524 (also used by its chunked-upload example). */
    cf_sigv4_signing_key(S3DOC.secret, "20130524", "us-east-1", "s3", key);
    assert_key_hex(key, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
}

/* Secrets around HMAC's 64-byte block: the key is "AWS4" + secret, hashed first when longer. */
static void test_signing_key_long_secrets(void **state)
{
    (void)state;
    size_t lens[] = {0, 1, 59, 60, 61, 62, 124, 300, 5000};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        size_t n = lens[i];
        char *secret = malloc(n + 1), *k0 = malloc(n + 5);
        assert_non_null(secret);
        assert_non_null(k0);
        for (size_t j = 0; j < n; j++)
            secret[j] = (char)('A' + j % 26);
        secret[n] = '\0';
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, secret, n + 1);
        unsigned char want[32], a[32], got[32];
        cf_hmac_sha256(k0, n + 4, "20130524", 8, want);
        cf_hmac_sha256(want, 32, "us-east-1", 9, a);
        cf_hmac_sha256(a, 32, "s3", 2, want);
        cf_hmac_sha256(want, 32, "aws4_request", 12, a);
        cf_sigv4_signing_key(secret, "20130524", "us-east-1", "s3", got);
        assert_memory_equal(a, got, 32);
        free(secret);
        free(k0);
    }
}

/* ---- verification ---- */

typedef struct verify_case {
    vector v;
    cf_sigv4_auth auth;
    cf_sigv4_request req;
} verify_case;

static void load_get_object(verify_case *vc)
{
    vc->v = s3_vectors[0];
    char header[1024];
    format_authz(&S3DOC, &vc->v, ",", header, sizeof header);
    assert_int_equal(cf_sigv4_parse_auth(header, &vc->auth, NULL), 0);
    vc->req = request_of(&vc->v);
}

static int verify(verify_case *vc, const char *secret, const char *amz_date, int64_t now, cf_err *err)
{
    return cf_sigv4_verify(NULL, &vc->req, &vc->auth, secret, amz_date, now, NULL, err);
}

static void assert_clean_message(const cf_err *err, const char *secret, const char *signature)
{
    assert_true(err->msg[0] != '\0');
    assert_null(strstr(err->msg, secret));
    assert_null(strstr(err->msg, signature));
}

static void test_verify_accepts_the_documented_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s3_vectors / sizeof *s3_vectors; i++) {
        const vector *v = &s3_vectors[i];
        char header[1024];
        cf_sigv4_auth auth;
        cf_err err = {0};
        unsigned char key[32] = {0};
        format_authz(&S3DOC, v, i % 2 ? ", " : ",", header, sizeof header);
        assert_int_equal(cf_sigv4_parse_auth(header, &auth, &err), 0);
        cf_sigv4_request req = request_of(v);
        if (cf_sigv4_verify(NULL, &req, &auth, S3DOC.secret, S3DOC.amz_date, S3DOC.now, key, &err) != 0)
            fail_msg("%s: %s", v->name, err.msg);
        assert_key_hex(key, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
    }
}

static void test_verify_wrong_secret_is_auth_error(void **state)
{
    (void)state;
    verify_case vc;
    cf_err err = {0};
    unsigned char key[32];
    memset(key, 0x5a, sizeof key);
    load_get_object(&vc);
    const char *wrong = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
    assert_int_equal(cf_sigv4_verify(NULL, &vc.req, &vc.auth, wrong, S3DOC.amz_date, S3DOC.now, key, &err),
                     CF_EAUTH);
    assert_int_equal(err.code, CF_EAUTH);
    assert_clean_message(&err, wrong, vc.v.signature);
    assert_null(strstr(err.msg, S3DOC.secret));
    /* A failed check hands out no key. */
    for (int i = 0; i < 32; i++)
        assert_int_equal(key[i], 0x5a);
}

static void test_verify_detects_tampering(void **state)
{
    (void)state;
    verify_case vc;
    cf_err err;
    load_get_object(&vc);
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), 0);

    vc.req.method = "HEAD";
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EAUTH);
    vc.req.method = "GET";
    vc.req.path = "/test.txu";
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EAUTH);
    vc.req.path = "/test.txt";
    cf_sigv4_param extra = {"versionId", "1"};
    vc.req.params = &extra;
    vc.req.nparams = 1;
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EAUTH);
    vc.req.params = NULL;
    vc.req.nparams = 0;
    vc.v.headers[1].value = "bytes=0-99";
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EAUTH);
    vc.v.headers[1].value = "bytes=0-9";
    vc.req.payload_hash = CF_SIGV4_UNSIGNED_PAYLOAD;
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EAUTH);
    vc.req.payload_hash = EMPTY_SHA256;
    vc.auth.signature[63] = vc.auth.signature[63] == '0' ? '1' : '0';
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EAUTH);
}

static void test_verify_clock_skew(void **state)
{
    (void)state;
    verify_case vc;
    cf_err err = {0};
    load_get_object(&vc);
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now + 900, &err), 0);
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now - 900, &err), 0);
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now + 901, &err), CF_EPRECOND);
    assert_clean_message(&err, S3DOC.secret, vc.v.signature);
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now - 901, &err), CF_EPRECOND);
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now + 86400, &err), CF_EPRECOND);
    /* The clock is checked before the signature: a skewed request with a wrong key says skew. */
    assert_int_equal(verify(&vc, "nope", S3DOC.amz_date, S3DOC.now + 3600, &err), CF_EPRECOND);
}

static void test_verify_missing_signed_header(void **state)
{
    (void)state;
    verify_case vc;
    cf_err err = {0};
    load_get_object(&vc);
    vc.v.headers[1].name = "content-range"; /* the request no longer has "range" */
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "'range'"));
    assert_clean_message(&err, S3DOC.secret, vc.v.signature);
}

static void test_verify_host_must_be_signed(void **state)
{
    (void)state;
    verify_case vc;
    cf_err err = {0};
    load_get_object(&vc);
    strcpy(vc.auth.signed_headers, "range;x-amz-content-sha256;x-amz-date");
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "host"));
    /* "host" must be a whole name, not a prefix of one. */
    strcpy(vc.auth.signed_headers, "hostname;range;x-amz-date");
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EINVAL);
}

static void test_verify_scope_checks(void **state)
{
    (void)state;
    verify_case vc;
    cf_err err = {0};
    load_get_object(&vc);
    strcpy(vc.auth.service, "service");
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "s3"));
    strcpy(vc.auth.service, "s3");

    strcpy(vc.auth.date, "20130525");
    assert_int_equal(verify(&vc, S3DOC.secret, S3DOC.amz_date, S3DOC.now, &err), CF_EINVAL);
    strcpy(vc.auth.date, "20130524");

    assert_int_equal(verify(&vc, S3DOC.secret, NULL, S3DOC.now, &err), CF_EINVAL);
    assert_int_equal(verify(&vc, S3DOC.secret, "2013-05-24T00:00:00Z", S3DOC.now, &err), CF_EINVAL);
    assert_int_equal(verify(&vc, S3DOC.secret, "20130524T000000", S3DOC.now, &err), CF_EINVAL);
    assert_int_equal(verify(&vc, S3DOC.secret, "20130532T000000Z", S3DOC.now, &err), CF_EINVAL);
    assert_clean_message(&err, S3DOC.secret, vc.v.signature);
}

/* Without x-amz-date a client may sign with the Date header; the string to sign still carries
 * the ISO 8601 basic form, so the documented signature verifies with the Date value. */
static void test_verify_accepts_http_date(void **state)
{
    (void)state;
    verify_case vc;
    cf_err err = {0};
    load_get_object(&vc);
    assert_int_equal(verify(&vc, S3DOC.secret, "Fri, 24 May 2013 00:00:00 GMT", S3DOC.now, &err), 0);
    assert_int_equal(verify(&vc, S3DOC.secret, "Fri, 24 May 2013 00:00:01 GMT", S3DOC.now, &err), CF_EAUTH);
    assert_int_equal(verify(&vc, S3DOC.secret, "Fri, 24 Mai 2013 00:00:00 GMT", S3DOC.now, &err), CF_EINVAL);
    assert_int_equal(verify(&vc, S3DOC.secret, "Fri, 24 May 2013 00:00:00 UTC", S3DOC.now, &err), CF_EINVAL);
}

/* What a client signs for an awkward key and query, the server verifies. */
static void test_sign_then_verify_round_trip(void **state)
{
    (void)state;
    hdr headers[] = {{"host", "127.0.0.1:9000"},
                     {"x-amz-content-sha256", CF_SIGV4_UNSIGNED_PAYLOAD},
                     {"x-amz-date", "20260102T030405Z"},
                     {"x-amz-meta-note", "\t two\r\n  words  "},
                     {NULL, NULL}};
    cf_sigv4_param params[] = {{"prefix", "a/b c"}, {"delimiter", "/"}, {"uploads", ""}, {"é", "~"}};
    cf_sigv4_request req = {"PUT",   "/bucket/dir/my key+ü&=%41.txt", params,  4, lookup,
                            headers, CF_SIGV4_UNSIGNED_PAYLOAD,       each_hdr};
    const char *signed_headers = "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note";
    cf_buf creq, sts;
    cf_err err = {0};
    cf_buf_init(&creq, 1 << 16);
    cf_buf_init(&sts, 4096);
    assert_int_equal(cf_sigv4_canonical_request(&req, signed_headers, &creq, &err), 0);
    assert_string_equal(creq.data, "PUT\n/bucket/dir/my%20key%2B%C3%BC%26%3D%2541.txt\n"
                                   "%C3%A9=~&delimiter=%2F&prefix=a%2Fb%20c&uploads=\n"
                                   "host:127.0.0.1:9000\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"
                                   "x-amz-date:20260102T030405Z\nx-amz-meta-note:two words\n\n"
                                   "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note\nUNSIGNED-PAYLOAD");
    assert_int_equal(
        cf_sigv4_string_to_sign("20260102T030405Z", "20260102", "eu-west-3", "s3", creq.data, creq.len, &sts),
        0);
    unsigned char key[32];
    char sig[65], header[512];
    cf_sigv4_signing_key("s3cr3t", "20260102", "eu-west-3", "s3", key);
    cf_sigv4_sign(key, sts.data, sts.len, sig);
    snprintf(
        header, sizeof header,
        "AWS4-HMAC-SHA256 Signature=%s,Credential=minio/20260102/eu-west-3/s3/aws4_request, SignedHeaders=%s",
        sig, signed_headers);
    cf_sigv4_auth auth;
    assert_int_equal(cf_sigv4_parse_auth(header, &auth, &err), 0);
    int64_t t;
    assert_int_equal(cf_sigv4_parse_amz_date("20260102T030405Z", &t), 0);
    unsigned char out[32];
    assert_int_equal(cf_sigv4_verify(NULL, &req, &auth, "s3cr3t", "20260102T030405Z", t + 10, out, &err), 0);
    assert_memory_equal(out, key, 32);
    assert_int_equal(cf_sigv4_verify(NULL, &req, &auth, "s3cr3T", "20260102T030405Z", t, NULL, &err),
                     CF_EAUTH);
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
}

/* ---- Authorization header parsing ---- */

#define GOOD_CRED "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
#define GOOD_SH "SignedHeaders=host;range;x-amz-date"
#define GOOD_SIG_HEX "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
#define GOOD_SIG "Signature=" GOOD_SIG_HEX

static void assert_parses(const char *header)
{
    cf_sigv4_auth a;
    cf_err err = {0};
    if (cf_sigv4_parse_auth(header, &a, &err) != 0)
        fail_msg("rejected '%s': %s", header, err.msg);
    assert_string_equal(a.access_key, "AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(a.date, "20130524");
    assert_string_equal(a.region, "us-east-1");
    assert_string_equal(a.service, "s3");
    assert_string_equal(a.signed_headers, "host;range;x-amz-date");
    assert_string_equal(a.signature, GOOD_SIG_HEX);
}

static void test_parse_auth_good_headers(void **state)
{
    (void)state;
    assert_parses("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG);
    assert_parses("AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH "," GOOD_SIG);
    assert_parses("AWS4-HMAC-SHA256   " GOOD_CRED " ,  " GOOD_SH ",\t" GOOD_SIG "  ");
    assert_parses("AWS4-HMAC-SHA256 " GOOD_SIG ", " GOOD_CRED ", " GOOD_SH);
    assert_parses("AWS4-HMAC-SHA256 " GOOD_SH "," GOOD_SIG "," GOOD_CRED ",");
    /* Uppercase hex is accepted and stored lowercase, so the comparison is exact. */
    assert_parses("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH
                  ", Signature=FE5F80F77D5FA3BECA038A248FF027D0445342FE2855DDC963176630326F1024");
}

static void assert_rejected(const char *header)
{
    cf_sigv4_auth a;
    cf_err err = {0};
    memset(&a, 0x55, sizeof a);
    if (cf_sigv4_parse_auth(header, &a, &err) != CF_EINVAL)
        fail_msg("accepted '%s'", header);
    assert_int_equal(err.code, CF_EINVAL);
    assert_true(err.msg[0] != '\0');
    assert_null(strstr(err.msg, GOOD_SIG_HEX));
    assert_null(strstr(err.msg, "ba7816bf8f01cfea414140de5dae2223"));
    /* Nothing half-parsed is left behind for a careless caller. */
    assert_string_equal(a.access_key, "");
    assert_string_equal(a.signature, "");
}

static void test_parse_auth_missing_parts(void **state)
{
    (void)state;
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_SH ", " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH);
    assert_rejected("AWS4-HMAC-SHA256 ");
    assert_rejected("AWS4-HMAC-SHA256");
    assert_rejected("");
    assert_rejected(NULL);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=, " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", Signature=");
    assert_rejected("AWS4-HMAC-SHA256 Credential=, " GOOD_SH ", " GOOD_SIG);
}

static void test_parse_auth_garbage(void **state)
{
    (void)state;
    assert_rejected("Bearer abc");
    assert_rejected("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=");
    assert_rejected("AWS4-HMAC-SHA1 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG);
    assert_rejected("aws4-hmac-sha256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256," GOOD_CRED ", " GOOD_SH ", " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG ", Extra=1");
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG ", junk");
    assert_rejected("AWS4-HMAC-SHA256 Credential");
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED " " GOOD_SH ", " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG ", " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG);
    /* An unknown component that carries a signature-like value is not echoed. */
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_SIG_HEX "=1, " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", Sig=" GOOD_SIG_HEX);
}

static void test_parse_auth_bad_credential(void **state)
{
    (void)state;
    static const char *bad[] = {
        "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3",
        "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request/x",
        "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_reques",
        "Credential=AKIAIOSFODNN7EXAMPLE/2013052/us-east-1/s3/aws4_request",
        "Credential=AKIAIOSFODNN7EXAMPLE/2013052x/us-east-1/s3/aws4_request",
        "Credential=AKIAIOSFODNN7EXAMPLE/201305245/us-east-1/s3/aws4_request",
        "Credential=/20130524/us-east-1/s3/aws4_request",
        "Credential=AKIAIOSFODNN7EXAMPLE/20130524//s3/aws4_request",
        "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1//aws4_request",
        "Credential=AKIA IOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char header[512];
        snprintf(header, sizeof header, "AWS4-HMAC-SHA256 %s, " GOOD_SH ", " GOOD_SIG, bad[i]);
        assert_rejected(header);
    }
}

static void test_parse_auth_bad_signature_or_headers(void **state)
{
    (void)state;
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", Signature="
                    "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f102");
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", Signature=" GOOD_SIG_HEX "0");
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", Signature="
                    "ge5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024");
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=Host;range, " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=host;;range, " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=;host, " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=host;, " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=host range, " GOOD_SIG);
    assert_rejected("AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=host:range, " GOOD_SIG);
}

/* The message names the component as the header spells it, and a repeat is reported as one
 * whatever its value. */
static void test_parse_auth_messages_name_the_component(void **state)
{
    (void)state;
    static const struct {
        const char *header, *msg;
    } cases[] = {
        {"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3, " GOOD_SH ", " GOOD_SIG,
         "malformed Credential: expected ACCESSKEY/YYYYMMDD/REGION/SERVICE/aws4_request"},
        {"AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=Host, " GOOD_SIG,
         "malformed SignedHeaders: expected at most"},
        {"AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", Signature=abc", "Signature must be 64 hex digits"},
        {"AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH ", " GOOD_SIG ", Signature=abc", "has 'Signature' twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cf_sigv4_auth a;
        cf_err err = {0};
        assert_int_equal(cf_sigv4_parse_auth(cases[i].header, &a, &err), CF_EINVAL);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].header, err.msg, cases[i].msg);
    }
}

/* Every field has a size; one byte more is refused, never truncated. */
static void test_parse_auth_oversized_fields(void **state)
{
    (void)state;
    char field[4096], header[8192];
    cf_sigv4_auth a;

    memset(field, 'K', 128);
    field[128] = '\0';
    snprintf(header, sizeof header,
             "AWS4-HMAC-SHA256 Credential=%s/20130524/us-east-1/s3/aws4_request, " GOOD_SH ", " GOOD_SIG,
             field);
    assert_int_equal(cf_sigv4_parse_auth(header, &a, NULL), 0);
    assert_int_equal(strlen(a.access_key), 128);
    field[128] = 'K';
    field[129] = '\0';
    snprintf(header, sizeof header,
             "AWS4-HMAC-SHA256 Credential=%s/20130524/us-east-1/s3/aws4_request, " GOOD_SH ", " GOOD_SIG,
             field);
    assert_rejected(header);

    memset(field, 'r', 64);
    field[63] = '\0';
    snprintf(header, sizeof header,
             "AWS4-HMAC-SHA256 Credential=AKID/20130524/%s/s3/aws4_request, " GOOD_SH ", " GOOD_SIG, field);
    assert_int_equal(cf_sigv4_parse_auth(header, &a, NULL), 0);
    field[63] = 'r';
    field[64] = '\0';
    snprintf(header, sizeof header,
             "AWS4-HMAC-SHA256 Credential=AKID/20130524/%s/s3/aws4_request, " GOOD_SH ", " GOOD_SIG, field);
    assert_rejected(header);

    memset(field, 's', 32);
    field[32] = '\0';
    snprintf(header, sizeof header,
             "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/%s/aws4_request, " GOOD_SH ", " GOOD_SIG,
             field);
    assert_rejected(header);

    /* 64 signed headers is the limit; 65 is refused. */
    size_t o = 0;
    for (int i = 0; i < 64; i++)
        o += (size_t)snprintf(field + o, sizeof field - o, "%sx-amz-meta-%02d", i ? ";" : "", i);
    snprintf(header, sizeof header, "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=%s, " GOOD_SIG, field);
    assert_int_equal(cf_sigv4_parse_auth(header, &a, NULL), 0);
    snprintf(field + o, sizeof field - o, ";x-amz-meta-64");
    snprintf(header, sizeof header, "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=%s, " GOOD_SIG, field);
    assert_rejected(header);

    /* A single name that fills the 2048-byte field is refused by size. */
    memset(field, 'h', 2048);
    field[2048] = '\0';
    snprintf(header, sizeof header, "AWS4-HMAC-SHA256 " GOOD_CRED ", SignedHeaders=%s, " GOOD_SIG, field);
    assert_rejected(header);
}

/* ---- pieces ---- */

static void test_uri_encode(void **state)
{
    (void)state;
    cf_buf b;
    cf_buf_init(&b, 1 << 12);
    const char *unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    assert_int_equal(cf_sigv4_uri_encode(&b, unreserved, strlen(unreserved), 0), 0);
    assert_string_equal(b.data, unreserved);
    cf_buf_reset(&b);
    assert_int_equal(cf_sigv4_uri_encode(&b, "/a b/c+d%e", 10, 1), 0);
    assert_string_equal(b.data, "/a%20b/c%2Bd%25e");
    cf_buf_reset(&b);
    assert_int_equal(cf_sigv4_uri_encode(&b, "/a b/c+d%e", 10, 0), 0);
    assert_string_equal(b.data, "%2Fa%20b%2Fc%2Bd%25e");
    cf_buf_reset(&b);
    assert_int_equal(cf_sigv4_uri_encode(&b, "\0\x7f\x80\xff=&?#*!'()", 13, 1), 0);
    assert_string_equal(b.data, "%00%7F%80%FF%3D%26%3F%23%2A%21%27%28%29");
    cf_buf_reset(&b);
    assert_int_equal(cf_sigv4_uri_encode(&b, "", 0, 1), 0);
    assert_int_equal(b.len, 0);
    cf_buf_cleanup(&b);

    /* The worst case (3 bytes per byte) must fit the buffer's maximum, or nothing is written. */
    cf_buf small;
    cf_buf_init(&small, 8);
    assert_int_equal(cf_sigv4_uri_encode(&small, "   ", 3, 1), CF_ETOOBIG);
    assert_int_equal(small.len, 0);
    assert_int_equal(cf_sigv4_uri_encode(&small, "ab", 2, 1), 0);
    assert_string_equal(small.data, "ab");
    cf_buf_cleanup(&small);
}

/* The query is sorted by the *encoded* names: '~' is kept, 'é' becomes "%C3%A9", which sorts
 * first although its raw bytes sort last. */
static void test_canonical_query_sorts_encoded_names(void **state)
{
    (void)state;
    hdr headers[] = {{"host", "h"}, {NULL, NULL}};
    cf_sigv4_param params[] = {{"~", "1"}, {"\xc3\xa9", "2"}, {"a", "z/y"}, {"a", NULL}, {"acl", ""}};
    cf_sigv4_request req = {"GET", "/", params, 5, lookup, headers, EMPTY_SHA256, each_hdr};
    cf_buf b;
    cf_buf_init(&b, 1 << 12);
    assert_int_equal(cf_sigv4_canonical_request(&req, "host", &b, NULL), 0);
    assert_string_equal(b.data, "GET\n/\n%C3%A9=2&a=&a=z%2Fy&acl=&~=1\nhost:h\n\nhost\n" EMPTY_SHA256);
    cf_buf_cleanup(&b);
}

static void test_canonical_request_rejects_bad_input(void **state)
{
    (void)state;
    hdr headers[] = {{"host", "h"}, {"x", "1"}, {NULL, NULL}};
    cf_sigv4_request req = {"GET", "", NULL, 0, lookup, headers, EMPTY_SHA256, each_hdr};
    cf_buf b;
    cf_err err = {0};
    cf_buf_init(&b, 1 << 12);
    /* An empty path is "/". */
    assert_int_equal(cf_sigv4_canonical_request(&req, "host", &b, &err), 0);
    assert_string_equal(b.data, "GET\n/\n\nhost:h\n\nhost\n" EMPTY_SHA256);

    static const char *bad_lists[] = {"host;y", "Host", "host;;x", ";host", "host;", "ho st", "host:x", ""};
    for (size_t i = 0; i < sizeof bad_lists / sizeof *bad_lists; i++) {
        cf_buf_reset(&b);
        assert_int_equal(cf_buf_puts(&b, "kept"), 0);
        if (cf_sigv4_canonical_request(&req, bad_lists[i], &b, &err) != CF_EINVAL)
            fail_msg("accepted signed headers '%s'", bad_lists[i]);
        /* What was in the buffer before is all that is left. */
        assert_string_equal(b.data, "kept");
    }
    cf_buf_reset(&b);
    assert_int_equal(cf_sigv4_canonical_request(&req, "host;y", &b, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "'y'"));

    req.method = "GET\nX";
    assert_int_equal(cf_sigv4_canonical_request(&req, "host", &b, &err), CF_EINVAL);
    req.method = "";
    assert_int_equal(cf_sigv4_canonical_request(&req, "host", &b, &err), CF_EINVAL);
    req.method = "GET";
    req.payload_hash = NULL;
    assert_int_equal(cf_sigv4_canonical_request(&req, "host", &b, &err), CF_EINVAL);
    req.payload_hash = "abc\ndef";
    assert_int_equal(cf_sigv4_canonical_request(&req, "host", &b, &err), CF_EINVAL);
    req.payload_hash = EMPTY_SHA256;

    cf_buf tiny;
    cf_buf_init(&tiny, 16);
    assert_int_equal(cf_sigv4_canonical_request(&req, "host", &tiny, &err), CF_ETOOBIG);
    cf_buf_cleanup(&tiny);
    cf_buf_cleanup(&b);
}

static void test_header_values_never_add_lines(void **state)
{
    (void)state;
    hdr headers[] = {{"host", "h"}, {"x-a", " \r\n a \t\t b\n"}, {"x-b", "   "}, {NULL, NULL}};
    cf_sigv4_request req = {"GET", "/", NULL, 0, lookup, headers, EMPTY_SHA256, each_hdr};
    cf_buf b;
    cf_buf_init(&b, 1 << 12);
    assert_int_equal(cf_sigv4_canonical_request(&req, "host;x-a;x-b", &b, NULL), 0);
    assert_string_equal(b.data, "GET\n/\n\nhost:h\nx-a:a b\nx-b:\n\nhost;x-a;x-b\n" EMPTY_SHA256);
    cf_buf_cleanup(&b);
}

static void test_amz_dates(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *s;
    } ok[] = {
        {0, "19700101T000000Z"},          {1369353600, "20130524T000000Z"}, {1440938160, "20150830T123600Z"},
        {1709251199, "20240229T235959Z"}, {4102444800, "21000101T000000Z"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char s[17];
        int64_t t = -1;
        cf_sigv4_format_amz_date(ok[i].t, s);
        assert_string_equal(s, ok[i].s);
        assert_int_equal(cf_sigv4_parse_amz_date(ok[i].s, &t), 0);
        assert_int_equal(t, ok[i].t);
    }
    static const char *bad[] = {
        "20130230T000000Z",
        "20230229T000000Z",
        "20131301T000000Z",
        "20130100T000000Z",
        "20130524T240000Z",
        "20130524T006000Z",
        "20130524T000060Z",
        "20130524t000000Z",
        "20130524T000000z",
        "2013-05-24T00:00Z",
        "20130524T000000",
        "20130524T000000Z ",
        "2013052AT000000Z",
        "",
        "Fri, 24 May 2013 00:00:00 GMT",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t t = 7;
        if (cf_sigv4_parse_amz_date(bad[i], &t) != CF_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(t, 7);
    }
    int64_t t;
    assert_int_equal(cf_sigv4_parse_amz_date(NULL, &t), CF_EINVAL);
}

/* ---- presigned URLs ---- */

/* S3 API reference, "Authenticating Requests: Using Query Parameters", example: GET
 * examplebucket/test.txt, valid for 86400 seconds from 20130524T000000Z. */
#define PRESIGN_HOST "examplebucket.s3.amazonaws.com"
#define PRESIGN_CRED "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
#define PRESIGN_SIG "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
#define PRESIGN_QUERY                                                                                        \
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" PRESIGN_CRED                                        \
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"

static const hdr presign_headers[] = {{"host", PRESIGN_HOST}, {NULL, NULL}};

/* The example's parameters decoded, as a server sees them (signature included). */
typedef struct presign_case {
    cf_sigv4_param params[8];
    size_t nparams;
    cf_sigv4_request req;
    cf_sigv4_query_auth q;
} presign_case;

static void load_presign_example(presign_case *pc)
{
    const cf_sigv4_param p[] = {
        {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
        {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
        {"X-Amz-Date", "20130524T000000Z"},
        {"X-Amz-Expires", "86400"},
        {"X-Amz-SignedHeaders", "host"},
        {"X-Amz-Signature", PRESIGN_SIG},
    };
    memset(pc, 0, sizeof *pc);
    memcpy(pc->params, p, sizeof p);
    pc->nparams = 6;
    cf_sigv4_request r = {"GET",
                          "/test.txt",
                          pc->params,
                          pc->nparams,
                          lookup,
                          (void *)presign_headers,
                          "ignored for presigned requests",
                          each_hdr};
    pc->req = r;
}

static int parse_and_verify(presign_case *pc, const char *secret, int64_t now, cf_err *err)
{
    pc->req.params = pc->params;
    pc->req.nparams = pc->nparams;
    int rc = cf_sigv4_parse_query_auth(pc->params, pc->nparams, &pc->q, err);
    return rc ? rc : cf_sigv4_verify_query(NULL, &pc->req, &pc->q, secret, now, err);
}

static cf_sigv4_param *param_named(presign_case *pc, const char *name)
{
    for (size_t i = 0; i < pc->nparams; i++)
        if (strcmp(pc->params[i].name, name) == 0)
            return &pc->params[i];
    fail_msg("no parameter %s", name);
    return NULL;
}

static void test_presign_documented_example(void **state)
{
    (void)state;
    cf_buf url;
    cf_err err = {0};
    cf_buf_init(&url, 4096);
    cf_sigv4_presign_opts o = {.method = "GET",
                               .host = PRESIGN_HOST,
                               .path = "/test.txt",
                               .access_key = S3DOC.access_key,
                               .secret = S3DOC.secret,
                               .region = "us-east-1",
                               .now = S3DOC.now,
                               .expires = 86400};
    if (cf_sigv4_presign(&o, &url, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(url.data, "/test.txt?" PRESIGN_QUERY "&X-Amz-Signature=" PRESIGN_SIG);
    assert_null(strstr(url.data, S3DOC.secret));

    /* The intermediate products the documentation shows. */
    presign_case pc;
    load_presign_example(&pc);
    pc.req.nparams = 5; /* everything but the signature */
    pc.req.payload_hash = CF_SIGV4_UNSIGNED_PAYLOAD;
    cf_buf creq, sts;
    cf_buf_init(&creq, 4096);
    cf_buf_init(&sts, 4096);
    assert_int_equal(cf_sigv4_canonical_request(&pc.req, "host", &creq, &err), 0);
    assert_string_equal(creq.data,
                        "GET\n/test.txt\n" PRESIGN_QUERY "\nhost:" PRESIGN_HOST "\n\nhost\nUNSIGNED-PAYLOAD");
    assert_int_equal(
        cf_sigv4_string_to_sign(S3DOC.amz_date, S3DOC.date, "us-east-1", "s3", creq.data, creq.len, &sts), 0);
    assert_string_equal(sts.data, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                                  "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
    cf_buf_cleanup(&url);
}

static void test_verify_query_documented_example(void **state)
{
    (void)state;
    presign_case pc;
    cf_err err = {0};
    load_presign_example(&pc);
    if (parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(pc.q.auth.access_key, "AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(pc.q.amz_date, "20130524T000000Z");
    assert_int_equal(pc.q.time, S3DOC.now);
    assert_int_equal(pc.q.expires, 86400);
    /* The order of the parameters in the URL does not matter. */
    cf_sigv4_param first = pc.params[0];
    pc.params[0] = pc.params[5];
    pc.params[5] = first;
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), 0);
}

static void test_verify_query_validity_window(void **state)
{
    (void)state;
    presign_case pc;
    cf_err err = {0};
    load_presign_example(&pc);
    int64_t t = S3DOC.now;
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, t + 86400, &err), 0);
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, t + 86401, &err), CF_EPRECOND);
    assert_non_null(strstr(err.msg, "expired"));
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, t + 10 * 86400, &err), CF_EPRECOND);
    /* Signed by a clock up to 15 minutes ahead of ours: accepted; further ahead: not yet valid. */
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, t - 900, &err), 0);
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, t - 901, &err), CF_EPRECOND);
    assert_non_null(strstr(err.msg, "not valid yet"));
    assert_true(pc.q.time > t - 901);
}

static void test_verify_query_detects_tampering(void **state)
{
    (void)state;
    presign_case pc;
    cf_err err = {0};

    load_presign_example(&pc);
    assert_int_equal(parse_and_verify(&pc, "wrong-secret", S3DOC.now, &err), CF_EAUTH);
    assert_clean_message(&err, S3DOC.secret, PRESIGN_SIG);

    load_presign_example(&pc);
    pc.req.path = "/test.txu";
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), CF_EAUTH);

    load_presign_example(&pc);
    pc.req.method = "PUT";
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), CF_EAUTH);

    load_presign_example(&pc);
    param_named(&pc, "X-Amz-Expires")->value = "86401";
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), CF_EAUTH);

    load_presign_example(&pc);
    param_named(&pc, "X-Amz-Signature")->value =
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d405";
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), CF_EAUTH);
    assert_clean_message(&err, S3DOC.secret,
                         "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d405");

    /* A parameter added after signing (say, response-content-type) is not covered. */
    load_presign_example(&pc);
    pc.params[pc.nparams++] = (cf_sigv4_param){"response-content-type", "text/html"};
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), CF_EAUTH);

    static const hdr other_host[] = {{"host", "evilbucket.s3.amazonaws.com"}, {NULL, NULL}};
    load_presign_example(&pc);
    pc.req.header_ctx = (void *)other_host;
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), CF_EAUTH);

    /* The payload hash the caller passes plays no part: it is always UNSIGNED-PAYLOAD. */
    load_presign_example(&pc);
    pc.req.payload_hash = EMPTY_SHA256;
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), 0);
}

static void assert_query_rejected(presign_case *pc, const char *name, const char *value, const char *in_msg)
{
    cf_err err = {0};
    if (name)
        param_named(pc, name)->value = value;
    int rc = parse_and_verify(pc, S3DOC.secret, S3DOC.now, &err);
    if (rc != CF_EINVAL)
        fail_msg("%s=%s: got %d (%s), want CF_EINVAL", name ? name : "-", value ? value : "-", rc, err.msg);
    if (in_msg && !strstr(err.msg, in_msg))
        fail_msg("%s=%s: message '%s' lacks '%s'", name ? name : "-", value ? value : "-", err.msg, in_msg);
    assert_null(strstr(err.msg, PRESIGN_SIG));
}

static void test_parse_query_auth_rejects_bad_parameters(void **state)
{
    (void)state;
    presign_case pc;
    static const char *const names[] = {"X-Amz-Algorithm", "X-Amz-Credential",    "X-Amz-Date",
                                        "X-Amz-Expires",   "X-Amz-SignedHeaders", "X-Amz-Signature"};
    for (size_t i = 0; i < 6; i++) {
        /* Missing: renamed out of the way. */
        load_presign_example(&pc);
        param_named(&pc, names[i])->name = "X-Amz-Other";
        assert_query_rejected(&pc, NULL, NULL, names[i]);
        /* Repeated. */
        load_presign_example(&pc);
        pc.params[pc.nparams] = *param_named(&pc, names[i]);
        pc.nparams++;
        assert_query_rejected(&pc, NULL, NULL, "more than once");
    }
    static const struct {
        const char *name, *value, *msg;
    } bad[] = {
        {"X-Amz-Algorithm", "AWS4-HMAC-SHA1", "X-Amz-Algorithm"},
        {"X-Amz-Algorithm", "", "X-Amz-Algorithm"},
        {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3", "X-Amz-Credential"},
        {"X-Amz-Credential", "", "X-Amz-Credential"},
        {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request", "credential date"},
        {"X-Amz-Date", "20130524T000000", "X-Amz-Date"},
        {"X-Amz-Date", "Fri, 24 May 2013 00:00:00 GMT", "X-Amz-Date"},
        {"X-Amz-Date", "20130524T250000Z", "X-Amz-Date"},
        {"X-Amz-Expires", "604801", "604800"},
        {"X-Amz-Expires", "99999999999999999999999999", "604800"},
        {"X-Amz-Expires", "0", "X-Amz-Expires"},
        {"X-Amz-Expires", "-1", "non-negative"},
        {"X-Amz-Expires", "", "X-Amz-Expires"},
        {"X-Amz-Expires", "1h", "X-Amz-Expires"},
        {"X-Amz-Expires", "+60", "X-Amz-Expires"},
        {"X-Amz-SignedHeaders", "", "X-Amz-SignedHeaders"},
        {"X-Amz-SignedHeaders", "Host", "X-Amz-SignedHeaders"},
        {"X-Amz-SignedHeaders", "host;", "X-Amz-SignedHeaders"},
        {"X-Amz-Signature", "aeeed9bb", "X-Amz-Signature"},
        {"X-Amz-Signature", PRESIGN_SIG "00", "X-Amz-Signature"},
        {"X-Amz-Signature", "zeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
         "X-Amz-Signature"},
        /* Checked by verification: only S3 is served, and the host must be signed. */
        {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/iam/aws4_request", "'s3'"},
        {"X-Amz-SignedHeaders", "x-amz-date", "host"},
        {"X-Amz-SignedHeaders", "host;range", "range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        load_presign_example(&pc);
        assert_query_rejected(&pc, bad[i].name, bad[i].value, bad[i].msg);
    }
    /* The limits themselves are fine (the signature then no longer matches, which is later). */
    cf_err err = {0};
    load_presign_example(&pc);
    param_named(&pc, "X-Amz-Expires")->value = "604800";
    assert_int_equal(cf_sigv4_parse_query_auth(pc.params, pc.nparams, &pc.q, &err), 0);
    assert_int_equal(pc.q.expires, 604800);
    param_named(&pc, "X-Amz-Expires")->value = "1";
    assert_int_equal(cf_sigv4_parse_query_auth(pc.params, pc.nparams, &pc.q, &err), 0);
    assert_int_equal(pc.q.expires, 1);
    /* A failed parse leaves nothing behind. */
    param_named(&pc, "X-Amz-Expires")->value = "0";
    assert_int_equal(cf_sigv4_parse_query_auth(pc.params, pc.nparams, &pc.q, &err), CF_EINVAL);
    assert_string_equal(pc.q.auth.signature, "");
}

/* ---- x-amz-* headers that must be signed ---- */

static void test_which_headers_must_be_signed(void **state)
{
    (void)state;
    static const char *const must[] = {"x-amz-meta-a",          "X-Amz-Copy-Source",
                                       "X-AMZ-TAGGING",         "x-amz-date",
                                       "x-amz-security-token",  "x-amz-decoded-content-length",
                                       "x-amz-trailer",         "x-amz-checksum-crc32",
                                       "x-amz-content-sha2566", "x-amz-"};
    static const char *const need_not[] = {
        "x-amz-content-sha256", "X-Amz-Content-SHA256", "x-amzn-trace-id", "x-amz", "host",
        "content-md5",          "content-type",         "range",           ""};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++)
        if (!cf_sigv4_header_must_be_signed(must[i]))
            fail_msg("'%s' may go unsigned", must[i]);
    for (size_t i = 0; i < sizeof need_not / sizeof *need_not; i++)
        if (cf_sigv4_header_must_be_signed(need_not[i]))
            fail_msg("'%s' must be signed", need_not[i]);
    assert_false(cf_sigv4_header_must_be_signed(NULL));
}

/* A header-signed request with signed_headers signed over headers[0..nsigned-1]; headers holds
 * more after those (added after signing, as a replay would). */
static void sign_header_request(const char *signed_headers, hdr *headers, cf_sigv4_request *req,
                                cf_sigv4_auth *auth)
{
    cf_sigv4_request r = {"PUT", "/bkt1/incoming.bin", NULL, 0, lookup, headers, EMPTY_SHA256, each_hdr};
    *req = r;
    cf_buf creq, sts;
    cf_buf_init(&creq, 1 << 16);
    cf_buf_init(&sts, 4096);
    assert_int_equal(cf_sigv4_canonical_request(req, signed_headers, &creq, NULL), 0);
    assert_int_equal(
        cf_sigv4_string_to_sign(S3DOC.amz_date, S3DOC.date, "us-east-1", "s3", creq.data, creq.len, &sts), 0);
    unsigned char key[32];
    char sig[65], header[1024];
    cf_sigv4_signing_key(S3DOC.secret, S3DOC.date, "us-east-1", "s3", key);
    cf_sigv4_sign(key, sts.data, sts.len, sig);
    snprintf(header, sizeof header,
             "AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/s3/aws4_request, SignedHeaders=%s, Signature=%s",
             S3DOC.access_key, S3DOC.date, signed_headers, sig);
    assert_int_equal(cf_sigv4_parse_auth(header, auth, NULL), 0);
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
}

static void test_verify_refuses_unsigned_amz_headers(void **state)
{
    (void)state;
    const char *signed_headers = "host;x-amz-date;x-amz-meta-kept";
    hdr headers[] = {{"host", "127.0.0.1:9000"},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-meta-kept", "yes"},
                     /* not signed, and need not be */
                     {"X-Amz-Content-Sha256", EMPTY_SHA256},
                     {"x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793"},
                     {"user-agent", "curl/7.88.1"},
                     {"content-length", "0"},
                     /* the injected ones, from slot 7 on */
                     {NULL, NULL},
                     {NULL, NULL},
                     {NULL, NULL},
                     {NULL, NULL}};
    cf_sigv4_request req;
    cf_sigv4_auth auth;
    cf_err err = {0};
    unsigned char key[32];
    sign_header_request(signed_headers, headers, &req, &auth);
    assert_int_equal(cf_sigv4_verify(NULL, &req, &auth, S3DOC.secret, S3DOC.amz_date, S3DOC.now, key, &err),
                     0);
    assert_int_equal(cf_sigv4_unsigned_headers(&req, auth.signed_headers, NULL), 0);

    headers[7] = (hdr){"X-Amz-Copy-Source", "bkt2/secret.txt"};
    headers[8] = (hdr){"x-amz-tagging", "a=b"};
    headers[9] = (hdr){"x-amz-tagging", "c=d"};
    memset(key, 0x5a, sizeof key);
    assert_int_equal(cf_sigv4_verify(NULL, &req, &auth, S3DOC.secret, S3DOC.amz_date, S3DOC.now, key, &err),
                     CF_EDENIED);
    assert_string_equal(err.msg, CF_SIGV4_UNSIGNED_HEADERS_MESSAGE);
    for (int i = 0; i < 32; i++)
        assert_int_equal(key[i], 0); /* a refused request hands out no key */
    cf_buf names;
    cf_buf_init(&names, 1024);
    /* Three instances, two names, each named once and lowercase. */
    assert_int_equal(cf_sigv4_unsigned_headers(&req, auth.signed_headers, &names), 3);
    assert_string_equal(names.data, "x-amz-copy-source, x-amz-tagging");
    cf_buf_cleanup(&names);
    /* A list that does not fit holds whole names only. */
    cf_buf_init(&names, 20);
    assert_int_equal(cf_sigv4_unsigned_headers(&req, auth.signed_headers, &names), 3);
    assert_string_equal(names.data, "x-amz-copy-source");
    cf_buf_cleanup(&names);

    /* A forger learns nothing about headers: the signature is checked first. */
    assert_int_equal(cf_sigv4_verify(NULL, &req, &auth, "wrong", S3DOC.amz_date, S3DOC.now, NULL, &err),
                     CF_EAUTH);

    /* Without a way to list the headers, nothing is accepted. */
    headers[7] = (hdr){NULL, NULL};
    req.each_header = NULL;
    assert_int_equal(cf_sigv4_verify(NULL, &req, &auth, S3DOC.secret, S3DOC.amz_date, S3DOC.now, NULL, &err),
                     CF_EINVAL);
    assert_int_equal(cf_sigv4_unsigned_headers(&req, auth.signed_headers, NULL), CF_EINVAL);
}

static void test_verify_query_refuses_unsigned_amz_headers(void **state)
{
    (void)state;
    presign_case pc;
    cf_err err = {0};
    hdr headers[] = {{"host", PRESIGN_HOST}, {NULL, NULL}, {NULL, NULL}};

    /* What proxies and clients add around a URL goes through; an x-amz-* header does not. */
    static const struct {
        hdr extra;
        int rc;
    } cases[] = {
        {{"x-amz-content-sha256", CF_SIGV4_UNSIGNED_PAYLOAD}, 0},
        {{"X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"}, 0},
        {{"Content-Type", "text/plain"}, 0},
        {{"x-amz-copy-source", "bkt2/secret.txt"}, CF_EDENIED},
        {{"X-Amz-Meta-Owner", "mallory"}, CF_EDENIED},
        {{"x-amz-tagging", "public=yes"}, CF_EDENIED},
        {{"x-amz-date", "20130524T000000Z"}, CF_EDENIED},
        {{"x-amz-security-token", "t"}, CF_EDENIED},
        {{"x-amz-checksum-crc32", "AAAAAA=="}, CF_EDENIED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        load_presign_example(&pc);
        headers[1] = cases[i].extra;
        pc.req.header_ctx = headers;
        int rc = parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err);
        if (rc != cases[i].rc)
            fail_msg("%s: %d (%s), want %d", cases[i].extra.name, rc, rc ? err.msg : "", cases[i].rc);
        if (rc)
            assert_string_equal(err.msg, CF_SIGV4_UNSIGNED_HEADERS_MESSAGE);
    }
    load_presign_example(&pc);
    pc.req.each_header = NULL;
    assert_int_equal(parse_and_verify(&pc, S3DOC.secret, S3DOC.now, &err), CF_EINVAL);
}

static void test_has_query_auth(void **state)
{
    (void)state;
    const cf_sigv4_param none[] = {{"versionId", "x"}, {"X-Amz-Date", "20130524T000000Z"}, {"uploads", ""}};
    const cf_sigv4_param alg[] = {{"versionId", "x"}, {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"}};
    const cf_sigv4_param sig[] = {{"X-Amz-Signature", ""}};
    const cf_sigv4_param cred[] = {{"X-Amz-Credential", "AKID"}};
    const cf_sigv4_param lower[] = {{"x-amz-signature", "abc"}};
    assert_int_equal(cf_sigv4_has_query_auth(NULL, 0), 0);
    assert_int_equal(cf_sigv4_has_query_auth(none, 3), 0);
    assert_int_equal(cf_sigv4_has_query_auth(alg, 2), 1);
    assert_int_equal(cf_sigv4_has_query_auth(sig, 1), 1);
    assert_int_equal(cf_sigv4_has_query_auth(cred, 1), 1);
    assert_int_equal(cf_sigv4_has_query_auth(lower, 1), 0);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) into a new string (the test frees it). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* Presign, then take the URL apart as a server would and verify it. */
static void test_presign_round_trip(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "HEAD", "PUT"};
    static const char *const paths[] = {"/bucket/key", "/bucket/a b/c+d=e&f?g#h%i~j.txt",
                                        "/bucket/\xc3\xbc/\xe1\x88\xb4//x", "/bucket/"};
    const cf_sigv4_param extra[] = {{"versionId", "3/L4kqtJl40Nr8X8gdRQBpUMLUo"}};
    static const hdr host[] = {{"host", "127.0.0.1:9000"}, {NULL, NULL}};
    for (size_t m = 0; m < 3; m++) {
        for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
            cf_buf url;
            cf_err err = {0};
            cf_buf_init(&url, 8192);
            cf_sigv4_presign_opts o = {methods[m],   "127.0.0.1:9000", paths[k],    extra,      k % 2,
                                       "itest-root", "itest-secret",   "eu-west-1", 1700000000, 3600,
                                       NULL};
            if (cf_sigv4_presign(&o, &url, &err) != 0)
                fail_msg("%s", err.msg);
            assert_null(strstr(url.data, "itest-secret"));
            char *q = strchr(url.data, '?');
            assert_non_null(q);
            /* Only unreserved characters, '/', '%XX', '?', '&' and '=' appear. */
            for (const char *c = url.data; *c; c++)
                assert_non_null(
                    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/%?&=", *c));
            char *path = pct_decode(url.data, (size_t)(q - url.data));
            assert_string_equal(path, paths[k]);
            cf_sigv4_param params[8];
            char *owned[16];
            size_t np = 0, no = 0;
            for (char *p = q + 1; *p;) {
                size_t len = strcspn(p, "&");
                char *eq = memchr(p, '=', len);
                assert_non_null(eq);
                assert_true(np < 8);
                owned[no++] = pct_decode(p, (size_t)(eq - p));
                owned[no++] = pct_decode(eq + 1, len - (size_t)(eq - p) - 1);
                params[np].name = owned[no - 2];
                params[np].value = owned[no - 1];
                np++;
                p += len + (p[len] == '&');
            }
            assert_int_equal(np, 6 + (k % 2));
            cf_sigv4_query_auth qa;
            cf_sigv4_request req = {methods[m], path, params, np, lookup, (void *)host, NULL, each_hdr};
            if (cf_sigv4_parse_query_auth(params, np, &qa, &err) != 0 ||
                cf_sigv4_verify_query(NULL, &req, &qa, "itest-secret", 1700000000 + 3600, &err) != 0)
                fail_msg("%s %s: %s", methods[m], paths[k], err.msg);
            assert_string_equal(qa.auth.region, "eu-west-1");
            assert_int_equal(cf_sigv4_verify_query(NULL, &req, &qa, "itest-secret", 1700000000 + 3601, &err),
                             CF_EPRECOND);
            req.method = methods[(m + 1) % 3];
            assert_int_equal(cf_sigv4_verify_query(NULL, &req, &qa, "itest-secret", 1700000000, &err),
                             CF_EAUTH);
            for (size_t i = 0; i < no; i++)
                free(owned[i]);
            free(path);
            cf_buf_cleanup(&url);
        }
    }
}

static void test_presign_rejects_bad_options(void **state)
{
    (void)state;
    const cf_sigv4_presign_opts good = {"GET", "h:1",       "/b/k",     NULL, 0,   "AK",
                                        "SK",  "us-east-1", 1700000000, 60,   NULL};
    const cf_sigv4_param sig[] = {{"X-Amz-Signature", "x"}};
    cf_sigv4_presign_opts bad[12];
    size_t n = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        bad[i] = good;
    bad[n++].method = "G T";
    bad[n++].host = "";
    bad[n++].host = "a b";
    bad[n++].path = "b/k";
    bad[n++].access_key = "A/K";
    bad[n++].access_key = "";
    bad[n++].region = "us east";
    bad[n++].secret = NULL;
    bad[n++].expires = 0;
    bad[n++].expires = 604801;
    bad[n].params = sig;
    bad[n++].nparams = 1;
    bad[n++].method = NULL;
    cf_buf url;
    cf_buf_init(&url, 4096);
    assert_int_equal(cf_buf_puts(&url, "http://h:1"), 0);
    for (size_t i = 0; i < n; i++) {
        cf_err err = {0};
        if (cf_sigv4_presign(&bad[i], &url, &err) != CF_EINVAL)
            fail_msg("case %zu accepted", i);
        assert_true(err.msg[0] != '\0');
        assert_string_equal(url.data, "http://h:1"); /* left as it was */
    }
    /* Too small a buffer: an error, and still nothing half-written. */
    cf_buf tiny;
    cf_buf_init(&tiny, 64);
    assert_int_equal(cf_buf_puts(&tiny, "x"), 0);
    assert_int_equal(cf_sigv4_presign(&good, &tiny, NULL), CF_ETOOBIG);
    assert_string_equal(tiny.data, "x");
    cf_err err = {0};
    assert_int_equal(cf_sigv4_presign(&good, &url, &err), 0);
    assert_int_equal(strncmp(url.data, "http://h:1/b/k?X-Amz-Algorithm=", 31), 0);
    cf_buf_cleanup(&tiny);
    cf_buf_cleanup(&url);
}

/* Derived keys are cached by their owner: the cache must be keyed by the secret as well as the
 * scope, survive being cycled through, and two caches must not share anything. */
static void test_signing_key_cache_keys_on_secret_and_scope(void **state)
{
    (void)state;
    cf_sigv4_key_cache *keys, *other;
    assert_int_equal(cf_sigv4_key_cache_new(&keys), 0);
    assert_int_equal(cf_sigv4_key_cache_new(&other), 0);
    unsigned char first[32], again[32], other_secret[32], other_day[32], key[32], uncached[32];
    assert_int_equal(cf_sigv4_cached_signing_key(keys, "secret-one", "20130524", "us-east-1", "s3", first),
                     0);
    assert_int_equal(cf_sigv4_signing_key("secret-one", "20130524", "us-east-1", "s3", uncached), 0);
    assert_memory_equal(first, uncached, 32);
    assert_int_equal(
        cf_sigv4_cached_signing_key(keys, "secret-two", "20130524", "us-east-1", "s3", other_secret), 0);
    assert_int_equal(
        cf_sigv4_cached_signing_key(keys, "secret-one", "20130525", "us-east-1", "s3", other_day), 0);
    assert_memory_not_equal(first, other_secret, 32);
    assert_memory_not_equal(first, other_day, 32);
    for (int i = 0; i < 40; i++) { /* more scopes than the cache holds */
        char date[9];
        snprintf(date, sizeof date, "2014%04d", 101 + i);
        assert_int_equal(cf_sigv4_cached_signing_key(keys, "secret-one", date, "us-east-1", "s3", key), 0);
    }
    assert_int_equal(cf_sigv4_cached_signing_key(keys, "secret-one", "20130524", "us-east-1", "s3", again),
                     0);
    assert_memory_equal(first, again, 32);
    /* The documented key, through a cache, twice, through no cache, and through another one. */
    static const char expected[] = "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378";
    cf_sigv4_key_cache *const caches[] = {keys, keys, NULL, other};
    for (size_t i = 0; i < sizeof caches / sizeof *caches; i++) {
        char hex[65];
        assert_int_equal(cf_sigv4_cached_signing_key(caches[i], "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                                     "20130524", "us-east-1", "s3", key),
                         0);
        cf_hex_encode(key, 32, hex);
        assert_string_equal(hex, expected);
    }
    cf_sigv4_key_cache_free(keys);
    cf_sigv4_key_cache_free(other);
    cf_sigv4_key_cache_free(NULL);
}

/* A verifier's cache holds the key of a secret that signed correctly; a request signed with the
 * right scope but checked against another secret must still fail, cache or not. */
static void test_verify_through_a_cache(void **state)
{
    (void)state;
    cf_sigv4_key_cache *keys;
    assert_int_equal(cf_sigv4_key_cache_new(&keys), 0);
    verify_case vc;
    load_get_object(&vc);
    for (int round = 0; round < 2; round++) {
        cf_err err = {0};
        unsigned char key[32];
        assert_int_equal(
            cf_sigv4_verify(keys, &vc.req, &vc.auth, S3DOC.secret, S3DOC.amz_date, S3DOC.now, key, &err), 0);
        assert_key_hex(key, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
        assert_int_equal(cf_sigv4_verify(keys, &vc.req, &vc.auth, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ",
                                         S3DOC.amz_date, S3DOC.now, NULL, &err),
                         CF_EAUTH);
    }
    cf_sigv4_key_cache_free(keys);
}

/* One verifier's cache used by several request threads at once (the server's): every thread
 * gets the right answer while the others fill and cycle the cache. Run under TSan by make test. */
typedef struct cache_worker {
    cf_sigv4_key_cache *keys;
    unsigned id;
    int wrong;
} cache_worker;

static void *use_cache(void *arg)
{
    cache_worker *w = arg;
    verify_case vc;
    load_get_object(&vc);
    for (unsigned i = 0; i < 200; i++) {
        cf_err err = {0};
        unsigned char key[32];
        char date[9];
        snprintf(date, sizeof date, "2015%04u", 101 + (w->id * 7 + i) % 30); /* more than it holds */
        w->wrong += cf_sigv4_cached_signing_key(w->keys, "another-secret", date, "us-east-1", "s3", key) != 0;
        w->wrong += cf_sigv4_verify(w->keys, &vc.req, &vc.auth, S3DOC.secret, S3DOC.amz_date, S3DOC.now, NULL,
                                    &err) != 0;
        w->wrong += cf_sigv4_verify(w->keys, &vc.req, &vc.auth, "not-the-secret", S3DOC.amz_date, S3DOC.now,
                                    NULL, &err) != CF_EAUTH;
    }
    return NULL;
}

static void test_one_cache_shared_by_threads(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    cf_sigv4_key_cache *keys;
    assert_int_equal(cf_sigv4_key_cache_new(&keys), 0);
    pthread_t t[THREADS];
    cache_worker w[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (cache_worker){keys, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, use_cache, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].wrong, 0);
    }
    cf_sigv4_key_cache_free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_suite_vectors),
        cmocka_unit_test(test_s3_documentation_vectors),
        cmocka_unit_test(test_signing_key_documented_values),
        cmocka_unit_test(test_signing_key_long_secrets),
        cmocka_unit_test(test_signing_key_cache_keys_on_secret_and_scope),
        cmocka_unit_test(test_verify_through_a_cache),
        cmocka_unit_test(test_one_cache_shared_by_threads),
        cmocka_unit_test(test_verify_accepts_the_documented_requests),
        cmocka_unit_test(test_verify_wrong_secret_is_auth_error),
        cmocka_unit_test(test_verify_detects_tampering),
        cmocka_unit_test(test_verify_clock_skew),
        cmocka_unit_test(test_verify_missing_signed_header),
        cmocka_unit_test(test_verify_host_must_be_signed),
        cmocka_unit_test(test_verify_scope_checks),
        cmocka_unit_test(test_verify_accepts_http_date),
        cmocka_unit_test(test_sign_then_verify_round_trip),
        cmocka_unit_test(test_parse_auth_good_headers),
        cmocka_unit_test(test_parse_auth_missing_parts),
        cmocka_unit_test(test_parse_auth_garbage),
        cmocka_unit_test(test_parse_auth_bad_credential),
        cmocka_unit_test(test_parse_auth_bad_signature_or_headers),
        cmocka_unit_test(test_parse_auth_messages_name_the_component),
        cmocka_unit_test(test_parse_auth_oversized_fields),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_canonical_query_sorts_encoded_names),
        cmocka_unit_test(test_canonical_request_rejects_bad_input),
        cmocka_unit_test(test_header_values_never_add_lines),
        cmocka_unit_test(test_amz_dates),
        cmocka_unit_test(test_presign_documented_example),
        cmocka_unit_test(test_verify_query_documented_example),
        cmocka_unit_test(test_verify_query_validity_window),
        cmocka_unit_test(test_verify_query_detects_tampering),
        cmocka_unit_test(test_parse_query_auth_rejects_bad_parameters),
        cmocka_unit_test(test_has_query_auth),
        cmocka_unit_test(test_which_headers_must_be_signed),
        cmocka_unit_test(test_verify_refuses_unsigned_amz_headers),
        cmocka_unit_test(test_verify_query_refuses_unsigned_amz_headers),
        cmocka_unit_test(test_presign_round_trip),
        cmocka_unit_test(test_presign_rejects_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
