/*
 * One run through its stages, driven by a fake owner (fakerun.h): the
 * test answers each Redis call and ComfyUI request itself, in the order a
 * race needs, on a real event base. Covered: a plain success; socket
 * events that come before the POST /prompt reply; a prompt ComfyUI
 * accepts only in part (node errors); a cancel while an input uploads;
 * the lease lost while outputs are fetched; a report answered with a
 * reply of the wrong shape; what ComfyUI did (nodes begun, cached, where
 * it stopped) carried by progress, complete and fail. Each checks how
 * often the run reported (complete, fail), with what, and what it asked
 * of ComfyUI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakerun.h"
#include "inputs.h"
#include "run.h"
#include "timg.h"
#include "unit.h"

#define SMOKE_SPEC                                                             \
	"{\"workflow\":\"smoke_invert\",\"params\":{\"width\":64,"             \
	"\"height\":32}}"

static struct run *
start(struct fake_run *f, const char *spec, int slot)
{
	return (run_start(&f->env, "j1", "7", 1, spec, strlen(spec), 0, slot,
	    "m.safetensors"));
}

/* The prompt id the run submitted (its last POST /prompt). */
static const char *
prompt_id(struct fake_run *f)
{
	return (fake_last(f, FK_PROMPT)->arg);
}

static void
answer_prompt(struct fake_run *f, const char *node_errors)
{
	char body[2048];

	snprintf(body, sizeof body,
	    "{\"prompt_id\":\"%s\",\"number\":1,\"node_errors\":%s}",
	    prompt_id(f), node_errors);
	fake_http_answer(f, FK_PROMPT, 200, body, strlen(body));
}

/* A smoke run whose prompt ComfyUI accepted; its prompt id in pid. */
static struct run *
running(struct fake_run *f, char pid[128])
{
	struct run *r;

	fake_run_init(f);
	r = start(f, SMOKE_SPEC, 1);
	snprintf(pid, 128, "%s", prompt_id(f));
	answer_prompt(f, "{}");
	return (r);
}

/* A success entry with n outputs of SaveImage (node 3). */
static void
answer_history(struct fake_run *f, int n)
{
	char body[4096], *p = body;
	int  i;

	p += snprintf(p, sizeof body,
	    "{\"%s\":{\"outputs\":{\"3\":{\"images\":[", prompt_id(f));
	for (i = 0; i < n; i++)
		p += snprintf(p, sizeof body - (size_t)(p - body),
		    "%s{\"filename\":\"comfyq_%05d_.png\",\"subfolder\":"
		    "\"comfyq/j1/a1\",\"type\":\"output\"}",
		    i ? "," : "", i + 1);
	snprintf(p, sizeof body - (size_t)(p - body),
	    "]}},\"status\":{\"status_str\":\"success\",\"completed\":true,"
	    "\"messages\":[]}}}");
	fake_http_answer(f, FK_HISTORY, 200, body, strlen(body));
}

static void
answer_view(struct fake_run *f)
{
	unsigned char *png;
	int	       len;

	png = timg_png(
	    64, 32, 128, &len); /* grey: smoke_invert allows one colour */
	fake_http_answer(f, FK_VIEW, 200, (const char *)png, (size_t)len);
	free(png);
}

static void
event(struct run *r, const char *type, const char *fmt, const char *pid)
{
	char   text[512];
	cJSON *data;

	snprintf(text, sizeof text, fmt, pid);
	data = cJSON_Parse(text);
	run_event(r, type, data);
	cJSON_Delete(data);
}

#define EXECUTING_NULL "{\"node\":null,\"prompt_id\":\"%s\"}"

/* Claim to complete, each reply in its turn. */
static void
test_run_success(void)
{
	struct fake_run f;
	struct run     *r;
	cJSON	       *recs;

	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	ASSERT_EQ(fake_count(&f, FK_PROMPT), 1);
	ASSERT_TRUE(strstr(fake_last(&f, FK_PROMPT)->text,
			"\"filename_prefix\":\"comfyq/j1/a1/out\"") != NULL);
	ASSERT_STREQ(run_prompt_id(r), prompt_id(&f));
	answer_prompt(&f, "{}");
	event(r, "executing", "{\"node\":\"1\",\"prompt_id\":\"%s\"}",
	    prompt_id(&f));
	event(r, "progress",
	    "{\"value\":3,\"max\":8,\"node\":\"2\",\"prompt_id\":\"%s\"}",
	    prompt_id(&f));
	ASSERT_EQ(fake_count(&f, FK_PROGRESS), 1);
	ASSERT_EQ(fake_last(&f, FK_PROGRESS)->value, 3);
	ASSERT_EQ(fake_last(&f, FK_PROGRESS)->max, 8);
	ASSERT_EQ(fake_count(&f, FK_HISTORY), 0);
	event(r, "executing", EXECUTING_NULL, prompt_id(&f));
	ASSERT_EQ(fake_count(&f, FK_HISTORY), 1);
	ASSERT_STREQ(fake_last(&f, FK_HISTORY)->arg, prompt_id(&f));
	answer_history(&f, 1);
	ASSERT_EQ(fake_count(&f, FK_VIEW), 1);
	ASSERT_STREQ(fake_last(&f, FK_VIEW)->arg, "comfyq_00001_.png");
	answer_view(&f);
	ASSERT_EQ(fake_count(&f, FK_BLOB), 1);
	ASSERT_STREQ(fake_last(&f, FK_BLOB)->arg, "cq:{t}:blob:j1:0");
	ASSERT_EQ(fake_last(&f, FK_BLOB)->max, 3600 * 1000);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 0);
	fake_redis_answer(&f, FK_BLOB, "OK");
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 1);
	recs = cJSON_Parse(fake_last(&f, FK_COMPLETE)->text);
	ASSERT_EQ(cJSON_GetArraySize(recs), 1);
	ASSERT_STREQ(cJSON_GetObjectItem(cJSON_GetArrayItem(recs, 0), "key")
			 ->valuestring,
	    "cq:{t}:blob:j1:0");
	cJSON_Delete(recs);
	ASSERT_EQ(f.done, 0);
	fake_redis_answer(&f, FK_COMPLETE, "OK");
	ASSERT_EQ(f.done, 1);
	ASSERT_EQ(fake_redis_answer_all(&f, FK_PROGRESS, "OK"), 1);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 0);
	ASSERT_EQ(f.interrupts, 0);
	ASSERT_EQ(fake_count(&f, FK_PROMPT), 1);
	fake_run_free(&f);
}

/*
 * The socket is faster than the POST's reply: the prompt runs and ends
 * before ComfyUI has answered. The end is kept and acted on once the
 * prompt is accepted: one history read, one complete.
 */
static void
test_run_events_before_reply(void)
{
	struct fake_run f;
	struct run     *r;
	char		pid[128];

	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	snprintf(pid, sizeof pid, "%s", prompt_id(&f));
	event(r, "executing", "{\"node\":\"1\",\"prompt_id\":\"%s\"}", pid);
	event(r, "progress",
	    "{\"value\":1,\"max\":1,\"node\":\"2\",\"prompt_id\":\"%s\"}", pid);
	event(r, "executed", "{\"node\":\"3\",\"prompt_id\":\"%s\"}", pid);
	event(r, "executing", EXECUTING_NULL, pid);
	event(r, "executing", EXECUTING_NULL, pid);
	ASSERT_EQ(fake_count(&f, FK_HISTORY), 0);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 0);
	answer_prompt(&f, "{}");
	ASSERT_EQ(fake_count(&f, FK_HISTORY), 1);
	answer_history(&f, 1);
	answer_view(&f);
	fake_redis_answer(&f, FK_BLOB, "OK");
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 1);
	fake_redis_answer(&f, FK_COMPLETE, "OK");
	ASSERT_EQ(f.done, 1);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 1);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 0);
	ASSERT_EQ(fake_count(&f, FK_HISTORY), 1);
	ASSERT_EQ(fake_count(&f, FK_PROMPT), 1);
	ASSERT_EQ(fake_count(&f, FK_PROGRESS), 0); /* none while submitting */
	fake_run_free(&f);
}

/*
 * 200 with node_errors: ComfyUI queued only the valid outputs. The job
 * fails with the node's code, and what was queued is interrupted.
 */
static void
test_run_node_errors(void)
{
	struct fake_run f;
	struct run     *r;
	char		pid[128];

	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	(void)r;
	snprintf(pid, sizeof pid, "%s", prompt_id(&f));
	answer_prompt(&f,
	    "{\"3\":{\"errors\":[{\"type\":\"value_not_in_list\","
	    "\"message\":\"Value not in list\",\"details\":\"images: x\"}],"
	    "\"dependent_outputs\":[\"3\"],\"class_type\":\"SaveImage\"}}");
	ASSERT_EQ(fake_count(&f, FK_FAIL), 1);
	ASSERT_EQ(fake_last(&f, FK_FAIL)->code, EC_INVALID_INPUT);
	ASSERT_EQ(fake_last(&f, FK_FAIL)->retryable, 0);
	ASSERT_TRUE(strncmp(fake_last(&f, FK_FAIL)->text,
			"accepted only in part: node 3 (SaveImage)", 41) == 0);
	ASSERT_EQ(f.interrupts, 1);
	ASSERT_STREQ(f.interrupted, pid);
	ASSERT_EQ(fake_count(&f, FK_HISTORY), 0);
	fake_redis_answer_tag(&f, FK_FAIL, "failed");
	ASSERT_EQ(f.done, 1);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 1);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 0);
	fake_run_free(&f);
}

/*
 * A cancel while the input image uploads: the upload is cancelled, the
 * job fails once as canceled (terminal, so refunded) and no prompt is
 * ever submitted.
 */
static void
test_run_cancel_during_upload(void)
{
	struct fake_run f;
	struct run     *r;
	unsigned char  *png;
	char	       *b64, *spec;
	size_t		n;
	int		len;

	fake_run_init(&f);
	png = timg_png(64, 64, 128, &len);
	b64 = inputs_base64_encode(png, (size_t)len);
	free(png);
	n = strlen(b64) + 256;
	spec = malloc(n);
	snprintf(spec, n,
	    "{\"workflow\":\"sdxl_img2img\",\"params\":{\"prompt\":\"x\"},"
	    "\"inputs\":{\"image\":\"%s\"}}",
	    b64);
	free(b64);
	r = start(&f, spec, 1);
	free(spec);
	ASSERT_EQ(fake_count(&f, FK_UPLOAD), 0); /* readied on the pool */
	fake_loop_until(&f, FK_UPLOAD, 1);
	ASSERT_STREQ(fake_last(&f, FK_UPLOAD)->arg, "image.png");
	ASSERT_TRUE(fake_last(&f, FK_UPLOAD)->value > 0);
	run_cancel(r);
	ASSERT_TRUE(fake_last(&f, FK_UPLOAD)->cancelled);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 1);
	ASSERT_EQ(fake_last(&f, FK_FAIL)->code, EC_CANCELED);
	ASSERT_EQ(fake_last(&f, FK_FAIL)->retryable, 0);
	ASSERT_STREQ(fake_last(&f, FK_FAIL)->text, "canceled on request");
	run_cancel(r); /* the heartbeat's cancel list says it again */
	ASSERT_EQ(fake_count(&f, FK_FAIL), 1);
	fake_redis_answer_tag(&f, FK_FAIL, "failed");
	ASSERT_EQ(f.done, 1);
	ASSERT_EQ(fake_count(&f, FK_PROMPT), 0);
	ASSERT_EQ(fake_count(&f, FK_UPLOAD), 1);
	ASSERT_EQ(f.interrupts, 0);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 0);
	fake_run_free(&f);
}

/*
 * The heartbeat says the lease is gone while outputs are fetched (the
 * first stored, its SET still out, the second not asked for): the run
 * ends at once, writes nothing, asks for nothing more, and the SET's late
 * reply is only let go. The prompt had finished: nothing to interrupt.
 */
static void
test_run_lease_lost_during_fetch(void)
{
	struct fake_run f;
	struct run     *r;

	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	answer_prompt(&f, "{}");
	event(r, "executing", EXECUTING_NULL, prompt_id(&f));
	answer_history(&f, 2);
	answer_view(&f);
	ASSERT_EQ(fake_count(&f, FK_BLOB), 1);
	ASSERT_TRUE(run_holds_lease(r));
	run_lost(r);
	ASSERT_EQ(f.done, 1);
	fake_redis_answer(&f, FK_BLOB, "OK");
	ASSERT_EQ(fake_count(&f, FK_VIEW), 1);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 0);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 0);
	ASSERT_EQ(fake_count(&f, FK_RELEASE), 0);
	ASSERT_EQ(f.interrupts, 0);
	ASSERT_EQ(f.done, 1);
	fake_run_free(&f);

	/* Lost while the second /view is in flight: that one is dropped. */
	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	answer_prompt(&f, "{}");
	event(r, "executing", EXECUTING_NULL, prompt_id(&f));
	answer_history(&f, 2);
	answer_view(&f);
	fake_redis_answer(&f, FK_BLOB, "OK");
	ASSERT_EQ(fake_count(&f, FK_VIEW), 2);
	run_lost(r);
	ASSERT_TRUE(fake_last(&f, FK_VIEW)->cancelled);
	ASSERT_EQ(f.done, 1);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 0);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 0);
	ASSERT_EQ(f.interrupts, 0);
	fake_run_free(&f);
}

/* Lost while ComfyUI runs the prompt: it is interrupted, nothing written. */
static void
test_run_lease_lost_while_running(void)
{
	struct fake_run f;
	struct run     *r;
	char		pid[128];

	r = running(&f, pid);
	run_lost(r);
	ASSERT_EQ(f.interrupts, 1);
	ASSERT_STREQ(f.interrupted, pid);
	ASSERT_EQ(f.done, 1);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 0);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 0);
	fake_run_free(&f);
}

/*
 * A report answered with a reply of no shape fail gives (OK, as complete
 * would answer) is a failed call: the run stays, sends it again after
 * RUN_REPORT_RETRY_MS, and ends on the reply it knows.
 */
static void
test_run_report_malformed(void)
{
	struct fake_run f;
	struct run     *r;

	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	answer_prompt(&f, "{}");
	run_cancel(r);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 1);
	fake_redis_answer(&f, FK_FAIL, "OK");
	ASSERT_EQ(f.done, 0);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 1);
	fake_loop_until(&f, FK_FAIL, 2);
	ASSERT_EQ(fake_last(&f, FK_FAIL)->code, EC_CANCELED);
	ASSERT_STREQ(fake_last(&f, FK_FAIL)->text, "canceled on request");
	fake_redis_answer_tag(&f, FK_FAIL, "canceled");
	ASSERT_EQ(f.done, 1);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 2);
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 0);
	fake_run_free(&f);
}

static void
executing(struct run *r, const char *node, const char *pid)
{
	char fmt[256];

	snprintf(
	    fmt, sizeof fmt, "{\"node\":\"%s\",\"prompt_id\":\"%%s\"}", node);
	event(r, "executing", fmt, pid);
}

/*
 * What ComfyUI did goes out with the calls the run makes anyway: each
 * progress call the nodes begun since the previous one, up to the node
 * of its progress message (and the cached ones on the first), complete
 * all of it; events heard before the POST's reply count too.
 */
static void
test_run_nodes_reported(void)
{
	struct fake_run f;
	struct run     *r;
	char		pid[128];

	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	snprintf(pid, sizeof pid, "%s", prompt_id(&f));
	event(r, "execution_cached",
	    "{\"nodes\":[\"1\",\"5\"],\"prompt_id\":\"%s\"}", pid);
	executing(r, "2", pid);
	answer_prompt(&f, "{}");
	executing(r, "6", pid);
	executing(r, "6", pid); /* said twice: once in the list */
	event(r, "progress",
	    "{\"value\":1,\"max\":4,\"node\":\"6\",\"prompt_id\":\"%s\"}", pid);
	ASSERT_EQ(fake_count(&f, FK_PROGRESS), 1);
	ASSERT_STREQ(fake_last(&f, FK_PROGRESS)->nodes,
	    "{\"ran\":[\"2\",\"6\"],\"cached\":[\"1\",\"5\"]}");
	event(r, "progress",
	    "{\"value\":2,\"max\":4,\"node\":\"6\",\"prompt_id\":\"%s\"}", pid);
	ASSERT_EQ(fake_count(&f, FK_PROGRESS), 2);
	ASSERT_TRUE(fake_last(&f, FK_PROGRESS)->nodes == NULL);
	executing(r, "3", pid);
	event(r, "executing", EXECUTING_NULL, pid);
	answer_history(&f, 1);
	answer_view(&f);
	fake_redis_answer(&f, FK_BLOB, "OK");
	ASSERT_EQ(fake_count(&f, FK_COMPLETE), 1);
	ASSERT_STREQ(fake_last(&f, FK_COMPLETE)->nodes,
	    "{\"ran\":[\"2\",\"6\",\"3\"],\"cached\":[\"1\",\"5\"]}");
	fake_redis_answer(&f, FK_COMPLETE, "OK");
	ASSERT_EQ(fake_redis_answer_all(&f, FK_PROGRESS, "OK"), 2);
	ASSERT_EQ(f.done, 1);
	fake_run_free(&f);
}

/* What the socket did not say, history's status messages do. */
static void
test_run_nodes_from_history(void)
{
	struct fake_run f;
	struct run     *r;
	char		pid[128], body[1024];

	r = running(&f, pid);
	executing(r, "3", pid);
	event(r, "executing", EXECUTING_NULL, pid);
	snprintf(body, sizeof body,
	    "{\"%s\":{\"outputs\":{\"3\":{\"images\":[{\"filename\":"
	    "\"comfyq_00001_.png\",\"subfolder\":\"comfyq/j1/a1\",\"type\":"
	    "\"output\"}]}},\"status\":{\"status_str\":\"success\","
	    "\"completed\":true,\"messages\":[[\"execution_start\",{}],"
	    "[\"execution_cached\",{\"nodes\":[\"1\",\"2\"]}],"
	    "[\"execution_success\",{}]]}}}",
	    pid);
	fake_http_answer(&f, FK_HISTORY, 200, body, strlen(body));
	answer_view(&f);
	fake_redis_answer(&f, FK_BLOB, "OK");
	ASSERT_STREQ(fake_last(&f, FK_COMPLETE)->nodes,
	    "{\"ran\":[\"3\"],\"cached\":[\"1\",\"2\"]}");
	fake_redis_answer(&f, FK_COMPLETE, "OK");
	ASSERT_EQ(f.done, 1);
	fake_run_free(&f);
}

/*
 * A failure says where ComfyUI was: the node its execution_error names;
 * for a cancel, the node it last began while the prompt still ran; none
 * for a prompt that never began a node.
 */
static void
test_run_nodes_at(void)
{
	struct fake_run f;
	struct run     *r;
	char		pid[128];

	r = running(&f, pid);
	executing(r, "1", pid);
	executing(r, "2", pid);
	event(r, "execution_error",
	    "{\"node_id\":\"2\",\"node_type\":\"ImageInvert\",\"exception_type\":"
	    "\"RuntimeError\",\"exception_message\":\"boom\",\"prompt_id\":\"%s\"}",
	    pid);
	ASSERT_EQ(fake_count(&f, FK_FAIL), 1);
	ASSERT_STREQ(fake_last(&f, FK_FAIL)->nodes,
	    "{\"ran\":[\"1\",\"2\"],\"cached\":[],\"at\":\"2\"}");
	fake_redis_answer_tag(&f, FK_FAIL, "failed");
	fake_run_free(&f);

	r = running(&f, pid);
	executing(r, "1", pid);
	run_cancel(r);
	ASSERT_EQ(f.interrupts, 1);
	ASSERT_STREQ(fake_last(&f, FK_FAIL)->nodes,
	    "{\"ran\":[\"1\"],\"cached\":[],\"at\":\"1\"}");
	fake_redis_answer_tag(&f, FK_FAIL, "canceled");
	fake_run_free(&f);

	fake_run_init(&f);
	r = start(&f, SMOKE_SPEC, 1);
	answer_prompt(&f, "{}");
	run_cancel(r);
	ASSERT_STREQ(
	    fake_last(&f, FK_FAIL)->nodes, "{\"ran\":[],\"cached\":[]}");
	fake_redis_answer_tag(&f, FK_FAIL, "canceled");
	fake_run_free(&f);
}

const struct unit_test test_run[] = {
	{ "success", test_run_success },
	{ "events_before_reply", test_run_events_before_reply },
	{ "node_errors", test_run_node_errors },
	{ "cancel_during_upload", test_run_cancel_during_upload },
	{ "lease_lost_during_fetch", test_run_lease_lost_during_fetch },
	{ "lease_lost_while_running", test_run_lease_lost_while_running },
	{ "report_malformed", test_run_report_malformed },
	{ "nodes_reported", test_run_nodes_reported },
	{ "nodes_from_history", test_run_nodes_from_history },
	{ "nodes_at", test_run_nodes_at },
	{ NULL, NULL },
};
