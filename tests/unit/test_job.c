/* Job spec model: the shared corpus of good and bad specs, and limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "unit.h"
#include "util.h"
#include "xmalloc.h"

static void
test_bad_corpus(void)
{
	struct job_spec js;
	char	       *text, *line, *save, *tab, err[512];
	int		n = 0;

	text = file_slurp(
	    unit_data("specs/bad.tsv"), 1 << 20, NULL, err, sizeof err);
	ASSERT_TRUE(text != NULL);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#')
			continue;
		tab = strchr(line, '\t');
		ASSERT_TRUE(tab != NULL);
		*tab = '\0';
		err[0] = '\0';
		if (job_spec_parse(&js, tab + 1, strlen(tab + 1), NULL, err,
			sizeof err) == 0)
			unit_fail(__FILE__, __LINE__, "accepted: %s", tab + 1);
		ASSERT_STREQ(err, line);
		n++;
	}
	ASSERT_TRUE(n >= 30);
	free(text);
}

static void
test_good_corpus(void)
{
	struct job_spec js;
	char	       *text, *line, *save, err[512];
	int		n = 0;

	text = file_slurp(
	    unit_data("specs/good.txt"), 1 << 20, NULL, err, sizeof err);
	ASSERT_TRUE(text != NULL);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (job_spec_parse(
			&js, line, strlen(line), NULL, err, sizeof err) == -1)
			unit_fail(
			    __FILE__, __LINE__, "refused %s: %s", line, err);
		job_spec_free(&js);
		n++;
	}
	ASSERT_EQ(n, 5);
	free(text);
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
	{ "case_sensitive", test_case_sensitive },
	{ "limits", test_limits },
	{ NULL, NULL },
};
