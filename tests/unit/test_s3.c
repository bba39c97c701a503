/*
 * S3 addressing and presigned URLs (shared/s3sign.h) and the worker's
 * store s3 settings (worker/outputs_s3.h). The presigned URL is checked
 * against the example of AWS's "Authenticating Requests: Using Query
 * Parameters (AWS Signature Version 4)": GET examplebucket/test.txt in
 * us-east-1 at 20130524T000000Z for 86400 s with AKIAIOSFODNN7EXAMPLE,
 * whose signature the page gives as aeeed9bb...f604d404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outputs_s3.h"
#include "s3sign.h"
#include "settings.h"
#include "unit.h"

#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static void
test_presign_vector(void)
{
	struct s3_target t;
	char		 err[256], *url;

	ASSERT_EQ(s3_target_init(&t, "https://s3.amazonaws.com", "us-east-1",
		      "examplebucket", 0, "AKIAIOSFODNN7EXAMPLE", EX_SECRET,
		      err, sizeof err),
	    0);
	/* 2013-05-24T00:00:00Z */
	url = s3_presign_get(&t, "test.txt", 1369353600, 86400);
	ASSERT_STREQ(url,
	    "https://examplebucket.s3.amazonaws.com/test.txt"
	    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
	    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1"
	    "%2Fs3%2Faws4_request"
	    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
	    "&X-Amz-SignedHeaders=host"
	    "&X-Amz-Signature="
	    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	free(url);
}

static void
test_sha256(void)
{
	char h[65];

	/* The hash of an empty payload, as AWS's examples print it. */
	s3_sha256_hex("", 0, h);
	ASSERT_STREQ(h,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Path-style URLs, a port kept and a default one dropped, keys encoded. */
static void
test_urls(void)
{
	struct s3_target t;
	char		 err[256], *u;

	ASSERT_EQ(s3_target_init(&t, "http://127.0.0.1:9000/", "auto", "outs",
		      1, "AK", "SK", err, sizeof err),
	    0);
	ASSERT_STREQ(t.host, "127.0.0.1:9000");
	u = s3_url(&t, "p/job 1/ä+x.png", NULL);
	ASSERT_STREQ(u, "http://127.0.0.1:9000/outs/p/job%201/%C3%A4%2Bx.png");
	free(u);
	u = s3_url(&t, "a/b.mp4", "partNumber=2&uploadId=x%2By");
	ASSERT_STREQ(u,
	    "http://127.0.0.1:9000/outs/a/b.mp4?partNumber=2&uploadId=x%2By");
	free(u);
	ASSERT_EQ(s3_target_init(&t, "https://r2.example.com:443", "auto",
		      "outs", 0, "AK", "SK", err, sizeof err),
	    0);
	ASSERT_STREQ(t.host, "r2.example.com");
	u = s3_url(&t, "k", NULL);
	ASSERT_STREQ(u, "https://outs.r2.example.com/k");
	free(u);
	u = s3_uri_encode("a/b~c_d.e-f", 0);
	ASSERT_STREQ(u, "a%2Fb~c_d.e-f");
	free(u);
}

/* Each refusal names its setting. */
static void
test_target_refusals(void)
{
	static const struct {
		const char *endpoint, *region, *bucket, *access, *secret;
		const char *want;
	} bad[] = {
		{ "ftp://h", "r", "bkt", "a", "s", "s3-endpoint" },
		{ "https://h/path", "r", "bkt", "a", "s", "no path" },
		{ "https://u:p@h", "r", "bkt", "a", "s", "s3-access-key" },
		{ "https://h", "", "bkt", "a", "s", "s3-region" },
		{ "https://h", "r", "B_K", "a", "s", "s3-bucket" },
		{ "https://h", "r", "ab", "a", "s", "s3-bucket" },
		{ "https://h", "r", "bkt", "", "s", "s3-access-key" },
		{ "https://h", "r", "bkt", "a", "", "s3-secret-key" },
	};
	struct s3_target t;
	char		 err[256];
	size_t		 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		ASSERT_EQ(s3_target_init(&t, bad[i].endpoint, bad[i].region,
			      bad[i].bucket, 0, bad[i].access, bad[i].secret,
			      err, sizeof err),
		    -1);
		if (strstr(err, bad[i].want) == NULL)
			unit_fail(__FILE__, __LINE__,
			    "case %zu: \"%s\" lacks %s", i, err, bad[i].want);
	}
}

static char ep[] = "http://127.0.0.1:9000", region[] = "us-east-1",
	    bucket[] = "outs", prefix[] = "comfyq/", bad_prefix[] = "/abs/",
	    akey[] = "AK", sk[] = "sk", none[] = "", missing[] = "/no/secret";

static void
cfg_init(struct worker_cfg *c)
{
	memset(c, 0, sizeof *c);
	c->s3_endpoint = ep;
	c->s3_region = region;
	c->s3_bucket = bucket;
	c->s3_prefix = prefix;
	c->s3_access_key = akey;
	c->s3_secret_key = none;
	c->s3_secret_key_file = none;
	c->s3_path_style = 1;
}

/* The secret from its file (first line), never from both places. */
static void
test_secret_file(void)
{
	struct worker_cfg c;
	struct s3_target  t;
	char  err[512], dir[] = "/tmp/comfyq-s3unit.XXXXXX", path[64];
	FILE *f;

	cfg_init(&c);
	ASSERT_EQ(output_s3_target(&c, &t, err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "s3-secret-key") != NULL);
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/secret", dir);
	ASSERT_TRUE((f = fopen(path, "w")) != NULL);
	fputs("s3cr3t/key\nignored\n", f);
	fclose(f);
	c.s3_secret_key_file = path;
	ASSERT_EQ(output_s3_target(&c, &t, err, sizeof err), 0);
	ASSERT_STREQ(t.secret, "s3cr3t/key");
	c.s3_secret_key = sk;
	ASSERT_EQ(output_s3_target(&c, &t, err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "not both") != NULL);
	unlink(path);
	rmdir(dir);
	c.s3_secret_key_file = missing;
	c.s3_secret_key = none;
	ASSERT_EQ(output_s3_target(&c, &t, err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "s3-secret-key-file: /no/secret") != NULL);
	c.s3_secret_key = sk;
	c.s3_secret_key_file = none;
	c.s3_prefix = bad_prefix;
	ASSERT_EQ(output_s3_target(&c, &t, err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "s3-prefix") != NULL);
}

/* The record: bucket, key, a URL presigned for the setting's time. */
static void
test_record(void)
{
	struct s3_target t;
	cJSON		*rec = cJSON_CreateObject();
	char		 err[256], *key;
	const cJSON	*u, *exp;

	ASSERT_EQ(s3_target_init(&t, "http://127.0.0.1:9000", "us-east-1",
		      "outs", 1, "AK", "SK", err, sizeof err),
	    0);
	key = output_s3_key("p/", "jid1", "out.png");
	ASSERT_STREQ(key, "p/jid1/out.png");
	output_s3_record(&t, key, 600, rec);
	ASSERT_STREQ(cJSON_GetObjectItem(rec, "bucket")->valuestring, "outs");
	ASSERT_STREQ(cJSON_GetObjectItem(rec, "object_key")->valuestring,
	    "p/jid1/out.png");
	u = cJSON_GetObjectItem(rec, "presigned_url");
	ASSERT_TRUE(cJSON_IsString(u));
	ASSERT_TRUE(
	    strncmp(u->valuestring,
		"http://127.0.0.1:9000/outs/p/jid1/out.png?X-Amz-", 48) == 0);
	ASSERT_TRUE(strstr(u->valuestring, "&X-Amz-Expires=600&") != NULL);
	exp = cJSON_GetObjectItem(rec, "presigned_expires_ms");
	ASSERT_TRUE(cJSON_IsNumber(exp) && exp->valuedouble > 1.7e12);
	free(key);
	cJSON_Delete(rec);
}

const struct unit_test test_s3[] = {
	{ "presign_vector", test_presign_vector },
	{ "sha256", test_sha256 },
	{ "urls", test_urls },
	{ "target_refusals", test_target_refusals },
	{ "secret_file", test_secret_file },
	{ "record", test_record },
	{ NULL, NULL },
};
