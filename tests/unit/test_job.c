/* Job spec model: the shared corpus of good and bad specs, and limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "unit.h"
#include "util.h"
#include "xmalloc.h"

static void
bad_case(const char *want, const char *spec, size_t len, void *arg)
{
	struct job_spec js;
	char		err[512];

	(void)arg;
	err[0] = '\0';
	if (job_spec_parse(&js, spec, len, NULL, err, sizeof err) == 0)
		unit_fail(__FILE__, __LINE__, "accepted: %s", spec);
	ASSERT_STREQ(err, want);
}

static void
test_bad_corpus(void)
{
	ASSERT_TRUE(unit_corpus("specs/bad.tsv", 1, bad_case, NULL) >= 50);
}

static void
good_case(const char *want, const char *spec, size_t len, void *arg)
{
	struct job_spec js;
	char		err[512];

	(void)want;
	(void)arg;
	if (job_spec_parse(&js, spec, len, NULL, err, sizeof err) == -1)
		unit_fail(__FILE__, __LINE__, "refused %s: %s", spec, err);
	job_spec_free(&js);
}

static void
test_good_corpus(void)
{
	ASSERT_EQ(unit_corpus("specs/good.txt", 0, good_case, NULL), 9);
}

/* Text fields keep every byte; a raw NUL is refused like \u0000. */
static void
test_text(void)
{
	struct job_spec js;
	char		err[256];
	const char *s = "{\"workflow\":\"a\",\"tenant\":\"\u00e9 \\\\u0000\","
			"\"params\":{\"prompt\":\"a\\nb\"}}";
	const char  nul[] = "{\"workflow\":\"a\",\"tenant\":\"a\0b\"}";

	ASSERT_EQ(job_spec_parse(&js, s, strlen(s), NULL, err, sizeof err), 0);
	ASSERT_STREQ(js.tenant, "\xc3\xa9 \\u0000");
	ASSERT_STREQ(
	    cJSON_GetObjectItemCaseSensitive(js.params, "prompt")->valuestring,
	    "a\nb");
	job_spec_free(&js);
	ASSERT_EQ(
	    job_spec_parse(&js, nul, sizeof nul - 1, NULL, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "spec: must not hold NUL (\\u0000)");
}

static void
test_fields(void)
{
	struct job_spec js;
	char		err[256];
	const char     *s =
	    "{\"workflow\":\"sdxl_txt2img\",\"params\":"
	    "{\"prompt\":\"fox\"},\"tenant\":\"tg:1\",\"timeout_s\":90,"
	    "\"max_attempts\":5,\"vram_mb\":8000,\"meta\":{\"charge\":10}}";

	ASSERT_EQ(job_spec_parse(&js, s, strlen(s), NULL, err, sizeof err), 0);
	ASSERT_STREQ(js.workflow, "sdxl_txt2img");
	ASSERT_STREQ(js.tenant, "tg:1");
	ASSERT_STREQ(js.priority, "normal");
	ASSERT_EQ(js.timeout_s, 90);
	ASSERT_EQ(js.max_attempts, 5);
	ASSERT_EQ(js.vram_mb, 8000);
	ASSERT_TRUE(js.graph == NULL);
	ASSERT_TRUE(cJSON_IsObject(js.meta));
	job_spec_free(&js);
}

static void
test_case_sensitive(void)
{
	struct job_spec js;
	char		err[256];
	const char     *s = "{\"Workflow\":\"a\"}";

	ASSERT_EQ(job_spec_parse(&js, s, strlen(s), NULL, err, sizeof err), -1);
	ASSERT_STREQ(err, "spec.Workflow: unknown field");
}

/* webhook_progress: read as a flag; true needs a webhook, false not. */
static void
test_webhook_progress(void)
{
	struct job_spec js;
	char		err[256];
	const char     *on = "{\"workflow\":\"a\",\"webhook\":\"https://h/x\","
			     "\"webhook_progress\":true}";
	const char     *off = "{\"workflow\":\"a\",\"webhook_progress\":false}";
	const char     *bare = "{\"webhook_progress\":true,\"workflow\":\"a\"}";

	ASSERT_EQ(
	    job_spec_parse(&js, on, strlen(on), NULL, err, sizeof err), 0);
	ASSERT_EQ(js.webhook_progress, 1);
	ASSERT_STREQ(js.webhook, "https://h/x");
	job_spec_free(&js);
	ASSERT_EQ(
	    job_spec_parse(&js, off, strlen(off), NULL, err, sizeof err), 0);
	ASSERT_EQ(js.webhook_progress, 0);
	job_spec_free(&js);
	ASSERT_EQ(
	    job_spec_parse(&js, bare, strlen(bare), NULL, err, sizeof err), -1);
	ASSERT_STREQ(
	    err, "spec.webhook_progress: needs a webhook URL to send to");
}

static void
test_limits(void)
{
	struct job_spec	  js;
	struct job_limits lim = job_limits_default;
	char		  err[256], *big;
	size_t		  n;

	/* A prompt one byte over the cap. */
	big = xmalloc(9000);
	n = (size_t)snprintf(big, 9000,
	    "{\"workflow\":\"a\",\"params\":"
	    "{\"prompt\":\"");
	memset(big + n, 'x', 8193);
	snprintf(big + n + 8193, 9000 - n - 8193, "\"}}");
	ASSERT_EQ(
	    job_spec_parse(&js, big, strlen(big), NULL, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "spec.params.prompt: 8193 bytes over the 8192 byte "
	    "limit");
	/* The same under a larger configured cap passes. */
	lim.max_prompt_len = 10000;
	ASSERT_EQ(
	    job_spec_parse(&js, big, strlen(big), &lim, err, sizeof err), 0);
	job_spec_free(&js);
	free(big);
	/* A spec over 1 MiB is refused before parsing. */
	big = xcalloc(1, 1048578);
	memset(big, ' ', 1048577);
	ASSERT_EQ(job_spec_parse(&js, big, 1048577, NULL, err, sizeof err), -1);
	ASSERT_STREQ(err, "spec: 1048577 bytes over the 1048576 byte limit");
	free(big);
	ASSERT_EQ(job_spec_parse(&js, "", 0, NULL, err, sizeof err), -1);
	ASSERT_STREQ(err, "spec: missing");
}

const struct unit_test test_job[] = {
	{ "bad_corpus", test_bad_corpus },
	{ "good_corpus", test_good_corpus },
	{ "fields", test_fields },
	{ "webhook_progress", test_webhook_progress },
	{ "text", test_text },
	{ "case_sensitive", test_case_sensitive },
	{ "limits", test_limits },
	{ NULL, NULL },
};
