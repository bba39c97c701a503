/*
 * S3 addressing and presigned URLs (shared/s3sign.h) and the worker's
 * store s3 settings (worker/outputs_s3.h). The presigned URL is checked
 * against the example of AWS's "Authenticating Requests: Using Query
 * Parameters (AWS Signature Version 4)": GET examplebucket/test.txt in
 * us-east-1 at 20130524T000000Z for 86400 s with AKIAIOSFODNN7EXAMPLE,
 * whose signature the page gives as aeeed9bb...f604d404.
 *
 * The upload engine (shared/s3.h) against a scripted S3 on a loopback
 * port of the test's own loop (evhttp): the requests it sends (method,
 * query, signature header, part sizes, the CompleteMultipartUpload body),
 * a part that keeps failing (tried 1 + retries times, then the upload is
 * aborted and the caller told once), a refusal that is not retried, and
 * a cancel mid-upload (aborted, the caller never called).
 */
#include <sys/socket.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httpc.h"
#include "s3.h"
#include "util.h"

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
		{ "https://h", "r", "bkt", "a/b", "s", "s3-access-key" },
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

static char c_ep[] = "http://127.0.0.1:9000", region[] = "us-east-1",
	    bucket[] = "outs", c_prefix[] = "comfyq/", bad_prefix[] = "/abs/",
	    akey[] = "AK", sk[] = "sk", none[] = "", missing[] = "/no/secret";

static void
cfg_init(struct worker_cfg *c)
{
	memset(c, 0, sizeof *c);
	c->s3_endpoint = c_ep;
	c->s3_region = region;
	c->s3_bucket = bucket;
	c->s3_prefix = c_prefix;
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

/* The scripted store: what it saw, and how it answers. */
#define FAKE_MAX 32
static struct fake {
	struct event_base *base;
	struct evhttp	  *http;
	int		   port;
	int		   fail_part; /* this part answers 500 */
	int		   refuse;    /* every request answers 403 */
	int		   n;
	char		   req[FAKE_MAX][160]; /* "METHOD uri" */
	size_t		   bytes[FAKE_MAX];
	char		   auth[FAKE_MAX][24];
	char		   sha[FAKE_MAX][24];
	char		   complete[1024];
	int		   calls, ok;
	char		   err[1024];
	int		   parts, requests;
} F;

static void
fake_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer	 *in = evhttp_request_get_input_buffer(req);
	struct evbuffer	 *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	const char	 *uri = evhttp_request_get_uri(req), *v, *m;
	int		  i = F.n, code = 200, part = 0;

	(void)arg;
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_PUT:
		m = "PUT";
		break;
	case EVHTTP_REQ_POST:
		m = "POST";
		break;
	case EVHTTP_REQ_DELETE:
		m = "DELETE";
		break;
	default:
		m = "OTHER";
		break;
	}
	if (i < FAKE_MAX) {
		F.n++;
		snprintf(F.req[i], sizeof F.req[i], "%s %s", m, uri);
		F.bytes[i] = evbuffer_get_length(in);
		v = evhttp_find_header(h, "Authorization");
		snprintf(F.auth[i], sizeof F.auth[i], "%s", v ? v : "");
		v = evhttp_find_header(h, "x-amz-content-sha256");
		snprintf(F.sha[i], sizeof F.sha[i], "%s", v ? v : "");
	}
	if ((v = strstr(uri, "partNumber=")) != NULL)
		part = atoi(v + 11);
	if (F.refuse) {
		code = 403;
		evbuffer_add_printf(out,
		    "<Error><Code>AccessDenied</Code>"
		    "<Message>no</Message></Error>");
	} else if (strstr(uri, "?uploads=") != NULL)
		evbuffer_add_printf(out,
		    "<InitiateMultipartUploadResult>"
		    "<UploadId>up&amp;1</UploadId>"
		    "</InitiateMultipartUploadResult>");
	else if (part > 0 && part == F.fail_part) {
		code = 500;
		evbuffer_add_printf(out,
		    "<Error><Code>InternalError</Code>"
		    "<Message>try later</Message></Error>");
	} else if (part > 0 || strcmp(m, "PUT") == 0) {
		char etag[32];

		snprintf(etag, sizeof etag, "\"e%d\"", part);
		evhttp_add_header(oh, "ETag", etag);
	} else if (strcmp(m, "POST") == 0) {
		snprintf(F.complete, sizeof F.complete, "%.*s",
		    (int)evbuffer_get_length(in),
		    (const char *)evbuffer_pullup(in, -1));
		evbuffer_add_printf(out, "<CompleteMultipartUploadResult/>");
	} else
		code = 204;
	evhttp_send_reply(req, code, "X", out);
	evbuffer_free(out);
}

static void
fake_done(const struct s3_result *res, void *arg)
{
	(void)arg;
	F.calls++;
	F.ok = res->ok;
	F.parts = res->parts;
	F.requests = res->requests;
	snprintf(F.err, sizeof F.err, "%s", res->err ? res->err : "");
}

static struct s3 *S; /* the client under test */

/* A client of the scripted store, and a 12 MiB file to send (3 parts). */
static struct s3 *
fake_start(struct httpc **h, int *fd)
{
	struct evhttp_bound_socket *b;
	struct sockaddr_in	    sin;
	socklen_t		    sl = sizeof sin;
	struct s3_target	    t;
	struct s3_opts		    o = { 2, 5u << 20, 5000, 1 };
	char	    path[] = "/tmp/comfyq-s3file.XXXXXX", ep[64], err[256];
	static char chunk[1 << 16];
	int	    i;

	memset(&F, 0, sizeof F);
	F.base = event_base_new();
	F.http = evhttp_new(F.base);
	b = evhttp_bind_socket_with_handle(F.http, "127.0.0.1", 0);
	getsockname(
	    evhttp_bound_socket_get_fd(b), (struct sockaddr *)&sin, &sl);
	F.port = ntohs(sin.sin_port);
	evhttp_set_max_body_size(F.http, 64u << 20);
	evhttp_set_allowed_methods(
	    F.http, EVHTTP_REQ_PUT | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(F.http, fake_cb, NULL);
	snprintf(ep, sizeof ep, "http://127.0.0.1:%d", F.port);
	if (s3_target_init(&t, ep, "us-east-1", "bkt", 1, "AK", "SK", err,
		sizeof err) == -1)
		unit_fail(__FILE__, __LINE__, "%s", err);
	*fd = mkstemp(path);
	unlink(path);
	memset(chunk, 'x', sizeof chunk);
	for (i = 0; i < 12 * 16; i++)
		if (write(*fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
			unit_fail(__FILE__, __LINE__, "write failed");
	*h = httpc_new(F.base);
	return (S = s3_new(F.base, *h, &t, &o));
}

static void
fake_stop(struct s3 *s, struct httpc *h, int fd)
{
	s3_free(s);
	httpc_free(h);
	evhttp_free(F.http);
	event_base_free(F.base);
	close(fd);
}

/* Runs the loop until cond() holds (10 s at most). */
static int
fake_run(int (*cond)(void))
{
	long long end = clock_mono_ms() + 10000;

	while (!cond() && clock_mono_ms() < end)
		event_base_loop(F.base, EVLOOP_ONCE);
	return (cond());
}

static int
drained(void)
{
	return (s3_pending(S) == 0);
}

static int
told(void)
{
	return (F.calls > 0);
}

static int
idle(void)
{
	return (F.calls > 0 && F.n > 0 &&
	    strncmp(F.req[F.n - 1], "DELETE", 6) == 0);
}

static int
count(const char *prefix)
{
	int i, n = 0;

	for (i = 0; i < F.n; i++)
		n += strncmp(F.req[i], prefix, strlen(prefix)) == 0;
	return (n);
}

/* Three parts of 5, 5 and 2 MiB, then the parts and their ETags. */
static void
test_engine_multipart(void)
{
	struct httpc *h;
	int	      fd, i;
	struct s3    *s = fake_start(&h, &fd);

	s3_put_file(
	    s, "k/obj.bin", fd, 12u << 20, "video/mp4", fake_done, NULL);
	ASSERT_TRUE(fake_run(told));
	ASSERT_EQ(F.calls, 1);
	ASSERT_EQ(F.ok, 1);
	ASSERT_EQ(F.parts, 3);
	ASSERT_EQ(F.requests, 5);
	ASSERT_EQ(F.n, 5);
	ASSERT_STREQ(F.req[0], "POST /bkt/k/obj.bin?uploads=");
	ASSERT_STREQ(
	    F.req[1], "PUT /bkt/k/obj.bin?partNumber=1&uploadId=up%261");
	ASSERT_STREQ(
	    F.req[3], "PUT /bkt/k/obj.bin?partNumber=3&uploadId=up%261");
	ASSERT_STREQ(F.req[4], "POST /bkt/k/obj.bin?uploadId=up%261");
	ASSERT_EQ(F.bytes[1], 5u << 20);
	ASSERT_EQ(F.bytes[2], 5u << 20);
	ASSERT_EQ(F.bytes[3], 2u << 20);
	for (i = 0; i < 5; i++) {
		ASSERT_STREQ(F.auth[i], "AWS4-HMAC-SHA256 Creden");
		ASSERT_STREQ(F.sha[i], "UNSIGNED-PAYLOAD");
	}
	ASSERT_STREQ(F.complete,
	    "<CompleteMultipartUpload>"
	    "<Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag></Part>"
	    "<Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag></Part>"
	    "<Part><PartNumber>3</PartNumber><ETag>\"e3\"</ETag></Part>"
	    "</CompleteMultipartUpload>");
	ASSERT_EQ(s3_pending(s), 0);
	fake_stop(s, h, fd);
}

/* Part 2 keeps failing: 3 tries, the caller told once, then the abort. */
static void
test_engine_abort(void)
{
	struct httpc *h;
	int	      fd;
	struct s3    *s = fake_start(&h, &fd);

	F.fail_part = 2;
	s3_put_file(
	    s, "k/obj.bin", fd, 12u << 20, "video/mp4", fake_done, NULL);
	ASSERT_TRUE(fake_run(idle));
	ASSERT_EQ(F.calls, 1);
	ASSERT_EQ(F.ok, 0);
	ASSERT_STREQ(F.err,
	    "UploadPart 2 of 3 s3://bkt/k/obj.bin: HTTP 500 InternalError: "
	    "try later (after 3 tries)");
	ASSERT_EQ(count("PUT /bkt/k/obj.bin?partNumber=2&"), 3);
	ASSERT_EQ(count("PUT /bkt/k/obj.bin?partNumber=3&"), 0);
	ASSERT_EQ(count("POST /bkt/k/obj.bin?uploadId="), 0);
	ASSERT_EQ(count("DELETE /bkt/k/obj.bin?uploadId=up%261"), 1);
	ASSERT_TRUE(fake_run(drained));
	fake_stop(s, h, fd);
}

/* A refusal is final: one request, no retry, nothing to abort. */
static void
test_engine_refused(void)
{
	struct httpc *h;
	int	      fd;
	struct s3    *s = fake_start(&h, &fd);

	F.refuse = 1;
	s3_put_file(s, "k/a.png", fd, 1000, "image/png", fake_done, NULL);
	ASSERT_TRUE(fake_run(told));
	ASSERT_EQ(F.ok, 0);
	ASSERT_EQ(F.n, 1);
	ASSERT_STREQ(F.req[0], "PUT /bkt/k/a.png");
	ASSERT_EQ(F.bytes[0], 1000);
	ASSERT_STREQ(
	    F.err, "PutObject s3://bkt/k/a.png: HTTP 403 AccessDenied: no");
	ASSERT_EQ(s3_pending(s), 0);
	fake_stop(s, h, fd);
}

static int
part1_seen(void)
{
	return (count("PUT /bkt/k/obj.bin?partNumber=1&") > 0);
}

static int
abort_seen(void)
{
	return (count("DELETE ") > 0);
}

/* A cancel once part 1 has reached the store: aborted, never told. */
static void
test_engine_cancel(void)
{
	struct httpc *h;
	int	      fd;
	struct s3    *s = fake_start(&h, &fd);
	struct s3_up *up;

	up = s3_put_file(
	    s, "k/obj.bin", fd, 12u << 20, "video/mp4", fake_done, NULL);
	ASSERT_TRUE(fake_run(part1_seen));
	s3_cancel(up);
	ASSERT_TRUE(fake_run(abort_seen));
	ASSERT_EQ(count("DELETE /bkt/k/obj.bin?uploadId=up%261"), 1);
	ASSERT_EQ(count("POST /bkt/k/obj.bin?uploadId="), 0);
	ASSERT_TRUE(fake_run(drained));
	ASSERT_EQ(F.calls, 0);
	fake_stop(s, h, fd);
}

const struct unit_test test_s3[] = {
	{ "presign_vector", test_presign_vector },
	{ "sha256", test_sha256 },
	{ "urls", test_urls },
	{ "target_refusals", test_target_refusals },
	{ "secret_file", test_secret_file },
	{ "record", test_record },
	{ "engine_multipart", test_engine_multipart },
	{ "engine_abort", test_engine_abort },
	{ "engine_refused", test_engine_refused },
	{ "engine_cancel", test_engine_cancel },
	{ NULL, NULL },
};
