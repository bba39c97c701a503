/*
 * comfyq-sim execution as a client sees it: the exact WebSocket event
 * sequence of a prompt, who receives what, the history entry, the files
 * on disk, the output cache, /free, targeted and global interrupts, queue
 * deletion and priority, the reconnect quirk, and the node classes our
 * workflow templates use (img2img, face, SVD video, animated WEBP).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "../integration/itest.h"
#include "simtest.h"
#include "util.h"
#include "xmalloc.h"

#define CKPT "sd_xl_base_1.0.safetensors"

static cJSON *
history_entry(struct simproc *s, const char *id, cJSON **root)
{
	struct http_res r;
	char		path[256];

	snprintf(path, sizeof path, "/history/%s", id);
	ASSERT_EQ(ht_get(s, path, &r), 200);
	*root = ht_json(&r);
	ht_free(&r);
	return (cJSON_GetObjectItemCaseSensitive(*root, id));
}

/* "4,5,..." of the nodes in the `executing` events of a prompt. */
static char *
executing_nodes(struct wsc *c, const char *pid)
{
	cJSON	   *m;
	char	   *s = xstrdup(""), *n;
	const char *node;
	int	    k;

	for (k = 0; (m = wsc_find(c, "executing", pid, k)) != NULL; k++) {
		node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(m, "data"), "node"));
		n = xasprintf(
		    "%s%s%s", s, *s ? "," : "", node != NULL ? node : "null");
		free(s);
		s = n;
	}
	return (s);
}

/* How many nodes execution_cached listed for a prompt. */
static int
cached_count(struct wsc *c, const char *pid)
{
	cJSON *m = wsc_find(c, "execution_cached", pid, 0);

	ASSERT_TRUE(m != NULL);
	return (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(m, "data"), "nodes")));
}

static void
test_success_order(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *root, *h, *m, *d, *a;
	char	       *g, *t, path[512];
	unsigned char  *px;
	int		k, w, hh, n;

	sim_start(&s, "--step-ms", "1", "--model-load-ms", "5", NULL);
	wsc_open(&c, &s, "c1");
	g = graph_sdxl(CKPT, 64, 48, 42, 3, "a fox", "t/run");
	ASSERT_EQ(ht_prompt(&s, g, "c1", "p1", &r), 200);
	ASSERT_STREQ(
	    r.body, "{\"prompt_id\":\"p1\",\"number\":0,\"node_errors\":{}}");
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_done(&c, "p1", 5000));
	t = wsc_types(&c, "p1", 0);
	ASSERT_STREQ(t,
	    "execution_start,execution_cached,"
	    "progress_state,executing,progress_state,"
	    "progress_state,executing,progress_state,"
	    "progress_state,executing,progress_state,"
	    "progress_state,executing,progress_state,"
	    "progress_state,executing,progress_state,progress,"
	    "progress_state,progress,progress_state,progress,progress_state,"
	    "progress_state,executing,progress_state,"
	    "progress_state,executing,executed,progress_state,"
	    "execution_success,executing");
	free(t);
	t = executing_nodes(&c, "p1");
	ASSERT_STREQ(t, "4,5,7,6,3,8,9,null");
	free(t);
	/* status: hello 0, put 1, get 1, task_done 0, before executing null */
	for (k = 0; k < 4; k++) {
		m = wsc_find(&c, "status", NULL, k);
		ASSERT_TRUE(m != NULL);
		ASSERT_EQ(
		    cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(
				cJSON_GetObjectItemCaseSensitive(m, "data"),
				"status"),
			    "exec_info"),
			"queue_remaining")
			->valueint,
		    k == 1 || k == 2 ? 1 : 0);
	}
	ASSERT_TRUE(wsc_find(&c, "status", NULL, 4) == NULL);
	for (k = 0; k < 3; k++) {
		d = cJSON_GetObjectItemCaseSensitive(
		    wsc_find(&c, "progress", "p1", k), "data");
		ASSERT_EQ(
		    cJSON_GetObjectItemCaseSensitive(d, "value")->valueint,
		    k + 1);
		ASSERT_EQ(
		    cJSON_GetObjectItemCaseSensitive(d, "max")->valueint, 3);
		ASSERT_JSTR(d, "node", "3");
	}
	d = cJSON_GetObjectItemCaseSensitive(
	    wsc_find(&c, "executed", "p1", 0), "data");
	t = cJSON_PrintUnformatted(d);
	ASSERT_STREQ(t,
	    "{\"node\":\"9\",\"display_node\":\"9\",\"output\":{\"images\":[{"
	    "\"filename\":\"run_00001_.png\",\"subfolder\":\"t\",\"type\":"
	    "\"output\"}]},\"prompt_id\":\"p1\"}");
	free(t);
	h = history_entry(&s, "p1", &root);
	ASSERT_TRUE(h != NULL);
	a = cJSON_GetObjectItemCaseSensitive(h, "prompt");
	ASSERT_EQ(cJSON_GetArraySize(a), 5);
	ASSERT_EQ(cJSON_GetArrayItem(a, 0)->valueint, 0);
	ASSERT_STREQ(cJSON_GetArrayItem(a, 1)->valuestring, "p1");
	ASSERT_JSTR(cJSON_GetArrayItem(a, 3), "client_id", "c1");
	ASSERT_TRUE(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetArrayItem(a, 3), "create_time")));
	t = cJSON_PrintUnformatted(cJSON_GetArrayItem(a, 4));
	ASSERT_STREQ(t, "[\"9\"]");
	free(t);
	d = cJSON_GetObjectItemCaseSensitive(h, "status");
	ASSERT_JSTR(d, "status_str", "success");
	ASSERT_TRUE(
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "completed")));
	m = cJSON_GetObjectItemCaseSensitive(d, "messages");
	ASSERT_EQ(cJSON_GetArraySize(m), 3);
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(m, 0), 0)->valuestring,
	    "execution_start");
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(m, 1), 0)->valuestring,
	    "execution_cached");
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(m, 2), 0)->valuestring,
	    "execution_success");
	t = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(h, "meta"));
	ASSERT_STREQ(t,
	    "{\"9\":{\"node_id\":\"9\",\"display_node\":\"9\",\"parent_node\":"
	    "null,\"real_node_id\":\"9\"}}");
	free(t);
	cJSON_Delete(root);
	snprintf(path, sizeof path, "%s/t/run_00001_.png", s.out);
	px = stbi_load(path, &w, &hh, &n, 3);
	ASSERT_TRUE(px != NULL);
	ASSERT_EQ(w, 64);
	ASSERT_EQ(hh, 48);
	stbi_image_free(px);
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

/* Without client_id only broadcast events reach anyone. */
static void
test_anonymous_prompt(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *root;
	char	       *g, *t;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "watcher");
	g = graph_sdxl(CKPT, 64, 64, 1, 2, "x", "anon");
	ASSERT_EQ(ht_prompt(&s, g, NULL, "pa", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_type(&c, "progress", "pa", 3000) != NULL);
	wsc_pump(&c, 200);
	t = wsc_types(&c, "pa", 0);
	ASSERT_TRUE(strstr(t, "execution_start") == NULL);
	ASSERT_TRUE(strstr(t, "executing") == NULL);
	ASSERT_TRUE(strstr(t, "executed") == NULL);
	ASSERT_TRUE(strstr(t, "progress_state") != NULL);
	free(t);
	ASSERT_JSTR(cJSON_GetObjectItemCaseSensitive(
			history_entry(&s, "pa", &root), "status"),
	    "status_str", "success");
	cJSON_Delete(root);
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

static int
count_files(const char *dir)
{
	char  cmd[512];
	FILE *f;
	int   n = -1;

	snprintf(cmd, sizeof cmd, "ls -1 '%s' | wc -l", dir);
	if ((f = popen(cmd, "r")) != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return (n);
}

static void
test_cache_and_free(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *d;
	char	       *g, *g2, *t, dir[512];

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	snprintf(dir, sizeof dir, "%s/cache", s.out);
	g = graph_sdxl(CKPT, 64, 64, 7, 2, "cat", "cache/img");
	sim_run(&s, &c, g, "a1");
	/* the identical graph: all cached, old file name, no new file */
	sim_run(&s, &c, g, "a2");
	d = cJSON_GetObjectItemCaseSensitive(
	    wsc_find(&c, "execution_cached", "a2", 0), "data");
	t = cJSON_PrintUnformatted(
	    cJSON_GetObjectItemCaseSensitive(d, "nodes"));
	ASSERT_STREQ(t, "[\"4\",\"5\",\"6\",\"7\",\"3\",\"8\",\"9\"]");
	free(t);
	t = wsc_types(&c, "a2", 0);
	ASSERT_STREQ(t,
	    "execution_start,execution_cached,executed,"
	    "progress_state,execution_success,executing");
	free(t);
	d = cJSON_GetObjectItemCaseSensitive(
	    wsc_find(&c, "executed", "a2", 0), "data");
	ASSERT_JSTR(
	    cJSON_GetArrayItem(
		cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(d, "output"), "images"),
		0),
	    "filename", "img_00001_.png");
	ASSERT_EQ(count_files(dir), 1);
	/* another seed: the loader, texts and latent stay cached */
	g2 = graph_sdxl(CKPT, 64, 64, 8, 2, "cat", "cache/img");
	sim_run(&s, &c, g2, "a3");
	d = cJSON_GetObjectItemCaseSensitive(
	    wsc_find(&c, "execution_cached", "a3", 0), "data");
	t = cJSON_PrintUnformatted(
	    cJSON_GetObjectItemCaseSensitive(d, "nodes"));
	ASSERT_STREQ(t, "[\"4\",\"5\",\"6\",\"7\"]");
	free(t);
	t = executing_nodes(&c, "a3");
	ASSERT_STREQ(t, "3,8,9,null");
	free(t);
	ASSERT_EQ(count_files(dir), 2);
	/* /free free_memory drops the cache: all of it runs again */
	ASSERT_EQ(ht_post(&s, "/free", "{\"free_memory\":true}", &r), 200);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	sim_run(&s, &c, g2, "a4");
	ASSERT_EQ(cached_count(&c, "a4"), 0);
	ASSERT_EQ(count_files(dir), 3);
	ASSERT_TRUE(file_exists(strcat(dir, "/img_00003_.png")));
	free(g);
	free(g2);
	wsc_free(&c);
	sim_stop(&s);
}

/* Lower bounds only: a checkpoint switch waits --model-load-ms, and so
 * does a sampler after /free unloaded the model. 290, not 300: the two
 * processes read the clock at different moments. */
static void
test_model_load_time(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	long long	t0;
	char	       *g;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "300", NULL);
	wsc_open(&c, &s, "c");
	g = graph_sdxl(CKPT, 64, 64, 1, 1, "a", "m");
	t0 = clock_mono_ms();
	sim_run(&s, &c, g, "m1");
	ASSERT_TRUE(clock_mono_ms() - t0 >= 290);
	free(g);
	ASSERT_EQ(ht_post(&s, "/free", "{\"unload_models\":true}", &r), 200);
	ht_free(&r);
	g = graph_sdxl(CKPT, 64, 64, 2, 1, "a", "m");
	t0 = clock_mono_ms();
	sim_run(&s, &c, g, "m2");
	ASSERT_TRUE(clock_mono_ms() - t0 >= 290);
	/* the loader was cached; only the sampler ran and paid the load */
	ASSERT_TRUE(wsc_find(&c, "executing", "m2", 0) != NULL);
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

static void
test_targeted_interrupt(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *root, *h, *d, *msgs;
	char	       *g, *g2, *t;
	int		before;

	sim_start(&s, "--step-ms", "10", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	g = graph_sdxl(CKPT, 64, 64, 1, 1000, "a", "i");
	g2 = graph_empty(8, 8, 0xff0000, "i2");
	ASSERT_EQ(ht_prompt(&s, g, "c", "run1", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_prompt(&s, g2, "c", "next1", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_type(&c, "progress", "run1", 3000) != NULL);
	/* another id: a no-op, still 200 with an empty body */
	ASSERT_EQ(
	    ht_post(&s, "/interrupt", "{\"prompt_id\":\"next1\"}", &r), 200);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	wsc_pump(&c, 100);
	before = cJSON_GetArraySize(c.msgs);
	wsc_pump(&c, 100);
	ASSERT_TRUE(cJSON_GetArraySize(c.msgs) > before);
	ASSERT_TRUE(wsc_find(&c, "execution_interrupted", NULL, 0) == NULL);
	ASSERT_EQ(
	    ht_post(&s, "/interrupt", "{\"prompt_id\":\"run1\"}", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_done(&c, "run1", 3000));
	d = cJSON_GetObjectItemCaseSensitive(
	    wsc_find(&c, "execution_interrupted", "run1", 0), "data");
	ASSERT_JSTR(d, "node_id", "3");
	ASSERT_JSTR(d, "node_type", "KSampler");
	t = cJSON_PrintUnformatted(
	    cJSON_GetObjectItemCaseSensitive(d, "executed"));
	ASSERT_STREQ(t, "[\"4\",\"5\",\"7\",\"6\"]");
	free(t);
	t = wsc_types(&c, "run1", 0);
	ASSERT_TRUE(strstr(t, "execution_interrupted,executing") != NULL);
	free(t);
	h = history_entry(&s, "run1", &root);
	d = cJSON_GetObjectItemCaseSensitive(h, "status");
	ASSERT_JSTR(d, "status_str", "error");
	ASSERT_TRUE(
	    cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(d, "completed")));
	msgs = cJSON_GetObjectItemCaseSensitive(d, "messages");
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(msgs, 2), 0)->valuestring,
	    "execution_interrupted");
	t = cJSON_PrintUnformatted(
	    cJSON_GetObjectItemCaseSensitive(h, "outputs"));
	ASSERT_STREQ(t, "{}");
	free(t);
	cJSON_Delete(root);
	/* the next prompt runs normally */
	ASSERT_TRUE(wsc_wait_done(&c, "next1", 3000));
	ASSERT_TRUE(wsc_find(&c, "execution_success", "next1", 0) != NULL);
	/* a global interrupt while idle is lost: the next prompt clears it */
	ASSERT_EQ(ht_post(&s, "/interrupt", NULL, &r), 200);
	ht_free(&r);
	free(g2);
	g2 = graph_empty(8, 8, 0xff, "i3");
	sim_run(&s, &c, g2, "after");
	ASSERT_TRUE(wsc_find(&c, "execution_success", "after", 0) != NULL);
	free(g);
	free(g2);
	wsc_free(&c);
	sim_stop(&s);
}

static void
test_queue_delete_and_priority(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *q, *a, *root;
	char	       *g, *g2, *g3, *g4;

	sim_start(&s, "--step-ms", "10", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	g = graph_sdxl(CKPT, 64, 64, 1, 1000, "a", "q");
	g2 = graph_empty(8, 8, 1, "q2");
	g3 = graph_empty(8, 8, 2, "q3");
	g4 = graph_empty(8, 8, 3, "q4");
	ASSERT_EQ(ht_prompt(&s, g, "c", "r1", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_type(&c, "execution_start", "r1", 3000) != NULL);
	ASSERT_EQ(ht_prompt(&s, g2, "c", "p2", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_prompt(&s, g3, "c", "p3", &r), 200);
	ht_free(&r);
	/* front: -number, ahead of the others */
	ASSERT_EQ(ht_post(&s, "/prompt",
		      "{\"prompt\":{\"1\":{\"class_type\":"
		      "\"EmptyImage\",\"inputs\":{\"width\":"
		      "8,\"height\":8,\"batch_size\":1,"
		      "\"color\":5}},\"2\":{\"class_type\":"
		      "\"PreviewImage\",\"inputs\":{"
		      "\"images\":[\"1\",0]}}},\"front\":"
		      "true,\"prompt_id\":\"pf\"}",
		      &r),
	    200);
	ASSERT_STREQ(
	    r.body, "{\"prompt_id\":\"pf\",\"number\":-3,\"node_errors\":{}}");
	ht_free(&r);
	/* an explicit number is a Python float */
	free(g4);
	g4 = xasprintf("{\"prompt\":%s,\"number\":7,\"client_id\":\"c\","
		       "\"prompt_id\":\"p7\"}",
	    g3);
	ASSERT_EQ(ht_post(&s, "/prompt", g4, &r), 200);
	ASSERT_STREQ(
	    r.body, "{\"prompt_id\":\"p7\",\"number\":7.0,\"node_errors\":{}}");
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/queue", &r), 200);
	q = ht_json(&r);
	ht_free(&r);
	a = cJSON_GetObjectItemCaseSensitive(q, "queue_running");
	ASSERT_EQ(cJSON_GetArraySize(a), 1);
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(a, 0), 1)->valuestring, "r1");
	a = cJSON_GetObjectItemCaseSensitive(q, "queue_pending");
	ASSERT_EQ(cJSON_GetArraySize(a), 4);
	/* heap order after pushes 1, 2, -3, 7.0: [-3, 2, 1, 7] */
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(a, 0), 1)->valuestring, "pf");
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(a, 1), 1)->valuestring, "p3");
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(a, 2), 1)->valuestring, "p2");
	ASSERT_STREQ(
	    cJSON_GetArrayItem(cJSON_GetArrayItem(a, 3), 1)->valuestring, "p7");
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetArrayItem(a, 0)), 5);
	cJSON_Delete(q);
	/* delete touches pending only: r1 keeps running */
	ASSERT_EQ(
	    ht_post(&s, "/queue", "{\"delete\":[\"p2\",\"r1\"]}", &r), 200);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/prompt", &r), 200);
	ASSERT_STREQ(r.body, "{\"exec_info\":{\"queue_remaining\":4}}");
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/interrupt", "{\"prompt_id\":\"r1\"}", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_done(&c, "p7", 5000));
	/* order of execution: pf (front), p3, p7 */
	ASSERT_TRUE(wsc_find(&c, "execution_start", "p2", 0) == NULL);
	{
		cJSON *m;
		int    k = 0, ipf = -1, ip3 = -1, ip7 = -1;

		cJSON_ArrayForEach(m, c.msgs) {
			const char *p = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(
				cJSON_GetObjectItemCaseSensitive(m, "data"),
				"prompt_id"));

			if (p != NULL && !strcmp(p, "pf") && ipf < 0)
				ipf = k;
			if (p != NULL && !strcmp(p, "p3") && ip3 < 0)
				ip3 = k;
			if (p != NULL && !strcmp(p, "p7") && ip7 < 0)
				ip7 = k;
			k++;
		}
		(void)ipf; /* pf has no client_id: it sends no events */
		ASSERT_TRUE(ip3 >= 0 && ip7 > ip3);
	}
	/* deleted prompts never reach history */
	ASSERT_TRUE(history_entry(&s, "p2", &root) == NULL);
	cJSON_Delete(root);
	ASSERT_TRUE(history_entry(&s, "pf", &root) != NULL);
	cJSON_Delete(root);
	/* clear empties the pending list */
	free(g4);
	g4 = graph_sdxl(CKPT, 64, 64, 9, 1000, "a", "q");
	ASSERT_EQ(ht_prompt(&s, g4, "c", "long", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_prompt(&s, g2, "c", "x1", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/queue", "{\"clear\":true}", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/queue", &r), 200);
	q = ht_json(&r);
	ht_free(&r);
	ASSERT_EQ(cJSON_GetArraySize(
		      cJSON_GetObjectItemCaseSensitive(q, "queue_pending")),
	    0);
	ASSERT_EQ(cJSON_GetArraySize(
		      cJSON_GetObjectItemCaseSensitive(q, "queue_running")),
	    1);
	cJSON_Delete(q);
	ASSERT_EQ(ht_post(&s, "/interrupt", NULL, &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_done(&c, "long", 3000));
	free(g);
	free(g2);
	free(g3);
	free(g4);
	wsc_free(&c);
	sim_stop(&s);
}

/* A reconnect with the same clientId takes the events over and hears
 * `executing` without prompt_id; when the old socket then closes,
 * ComfyUI drops the id from its map and the new socket hears nothing. */
static void
test_reconnect(void)
{
	struct simproc	s;
	struct wsc	c1, c2;
	struct http_res r;
	cJSON	       *m, *d, *root;
	char	       *g;

	sim_start(&s, "--step-ms", "5", "--model-load-ms", "0", NULL);
	wsc_open(&c1, &s, "same");
	g = graph_sdxl(CKPT, 64, 64, 3, 60, "a", "rc");
	ASSERT_EQ(ht_prompt(&s, g, "same", "rc1", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_type(&c1, "progress", "rc1", 3000) != NULL);
	wsc_open(&c2, &s, "same");
	m = wsc_wait_type(&c2, "executing", NULL, 2000);
	ASSERT_TRUE(m != NULL);
	d = cJSON_GetObjectItemCaseSensitive(m, "data");
	ASSERT_JSTR(d, "node", "3");
	ASSERT_TRUE(cJSON_GetObjectItemCaseSensitive(d, "prompt_id") == NULL);
	ASSERT_JSTR(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetArrayItem(c2.msgs, 0), "data"),
	    "sid", "same");
	ASSERT_TRUE(wsc_wait_type(&c2, "progress", "rc1", 2000) != NULL);
	wsc_free(&c1);
	wsc_pump(&c2, 100);
	wsc_clear(&c2);
	for (;;) {
		m = history_entry(&s, "rc1", &root);
		cJSON_Delete(root);
		if (m != NULL)
			break;
		wsc_pump(&c2, 50);
	}
	wsc_pump(&c2, 100);
	ASSERT_TRUE(wsc_find(&c2, NULL, "rc1", 0) == NULL);
	ASSERT_TRUE(!c2.closed);
	free(g);
	wsc_free(&c2);
	sim_stop(&s);
}

static void
pixel_of(const char *path, int *w, int *h, unsigned char rgb[3])
{
	int	       n;
	unsigned char *px = stbi_load(path, w, h, &n, 3);

	ASSERT_TRUE(px != NULL);
	memcpy(rgb, px, 3);
	stbi_image_free(px);
}

/* Pixels are deterministic: solid colours, inversions, sizes, and a
 * sampler's image depends on seed and text only. */
static void
test_outputs(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	unsigned char	rgb[3];
	char	       *g, path[512], path2[512], *a, *b;
	size_t		la, lb;
	int		w, h;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	g = xasprintf("{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{"
		      "\"width\":20,\"height\":10,\"batch_size\":2,\"color\":"
		      "1193046}},\"2\":{\"class_type\":\"ImageInvert\","
		      "\"inputs\":{\"image\":[\"1\",0]}},\"3\":{\"class_type\":"
		      "\"ImageScale\",\"inputs\":{\"image\":[\"2\",0],"
		      "\"upscale_method\":\"bicubic\",\"width\":0,\"height\":"
		      "30,\"crop\":\"disabled\"}},\"4\":{\"class_type\":"
		      "\"SaveImage\",\"inputs\":{\"images\":[\"3\",0],"
		      "\"filename_prefix\":\"px/%%width%%x%%height%%\"}},"
		      "\"5\":{\"class_type\":\"PreviewImage\",\"inputs\":{"
		      "\"images\":[\"1\",0]}}}");
	sim_run(&s, &c, g, "o1");
	free(g);
	/* 0x123456 inverted is 0xedcba9; width 0 keeps the aspect */
	snprintf(path, sizeof path, "%s/px/60x30_00001_.png", s.out);
	pixel_of(path, &w, &h, rgb);
	ASSERT_EQ(w, 60);
	ASSERT_EQ(h, 30);
	ASSERT_EQ(rgb[0], 0xed);
	ASSERT_EQ(rgb[1], 0xcb);
	ASSERT_EQ(rgb[2], 0xa9);
	snprintf(path, sizeof path, "%s/px/60x30_00002_.png", s.out);
	ASSERT_TRUE(file_exists(path));
	{
		cJSON *d = cJSON_GetObjectItemCaseSensitive(
		    wsc_find(&c, "executed", "o1", 0), "data");
		cJSON *img = cJSON_GetArrayItem(
		    cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(d, "output"),
			"images"),
		    0);
		const char *fn = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(img, "filename"));

		/* PreviewImage runs first (an output node is picked first) */
		ASSERT_JSTR(d, "node", "5");
		ASSERT_JSTR(img, "type", "temp");
		ASSERT_TRUE(strncmp(fn, "ComfyUI_temp_", 13) == 0);
		ASSERT_EQ((long long)strlen(fn), 13 + 5 + 7 + 4);
		snprintf(path, sizeof path, "%s/%s", s.temp, fn);
		pixel_of(path, &w, &h, rgb);
		ASSERT_EQ(rgb[0], 0x12);
		ASSERT_EQ(rgb[2], 0x56);
	}
	/* the same sampler graph on a fresh cache gives the same bytes */
	g = graph_sdxl(CKPT, 32, 32, 99, 1, "same", "det/a");
	sim_run(&s, &c, g, "d1");
	ASSERT_EQ(ht_post(&s, "/free", "{\"free_memory\":true}", &r), 200);
	ht_free(&r);
	sim_run(&s, &c, g, "d2");
	free(g);
	snprintf(path, sizeof path, "%s/det/a_00001_.png", s.out);
	snprintf(path2, sizeof path2, "%s/det/a_00002_.png", s.out);
	a = file_read(path, &la);
	b = file_read(path2, &lb);
	ASSERT_TRUE(a != NULL && b != NULL);
	ASSERT_TRUE(la == lb && memcmp(a, b, la) == 0);
	free(b);
	g = graph_sdxl(CKPT, 32, 32, 100, 1, "same", "det/a");
	sim_run(&s, &c, g, "d3");
	free(g);
	snprintf(path2, sizeof path2, "%s/det/a_00003_.png", s.out);
	b = file_read(path2, &lb);
	ASSERT_TRUE(b != NULL);
	ASSERT_TRUE(la != lb || memcmp(a, b, la) != 0);
	free(a);
	free(b);
	wsc_free(&c);
	sim_stop(&s);
}

static const char svd_graph[] =
    "{\"1\":{\"class_type\":\"ImageOnlyCheckpointLoader\",\"inputs\":{"
    "\"ckpt_name\":\"svd_xt.safetensors\"}},"
    "\"2\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":\"in.png\"}},"
    "\"3\":{\"class_type\":\"SVD_img2vid_Conditioning\",\"inputs\":{"
    "\"clip_vision\":[\"1\",1],\"init_image\":[\"2\",0],\"vae\":[\"1\",2],"
    "\"width\":64,\"height\":48,\"video_frames\":14,\"motion_bucket_id\":"
    "127,\"fps\":6,\"augmentation_level\":0.0}},"
    "\"4\":{\"class_type\":\"VideoLinearCFGGuidance\",\"inputs\":{\"model\":"
    "[\"1\",0],\"min_cfg\":1.0}},"
    "\"5\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"4\",0],"
    "\"seed\":1,\"steps\":2,\"cfg\":2.5,\"sampler_name\":\"euler\","
    "\"scheduler\":\"karras\",\"positive\":[\"3\",0],\"negative\":[\"3\",1],"
    "\"latent_image\":[\"3\",2],\"denoise\":1.0}},"
    "\"6\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"5\",0],"
    "\"vae\":[\"1\",2]}},"
    "\"7\":{\"class_type\":\"VHS_VideoCombine\",\"inputs\":{\"images\":"
    "[\"6\",0],\"frame_rate\":7,\"loop_count\":0,\"filename_prefix\":"
    "\"vid/svd\",\"format\":\"video/h264-mp4\",\"pingpong\":false,"
    "\"save_output\":true}},"
    "\"8\":{\"class_type\":\"SaveAnimatedWEBP\",\"inputs\":{\"images\":"
    "[\"6\",0],\"filename_prefix\":\"anim\",\"fps\":6.0,\"lossless\":false,"
    "\"quality\":80,\"method\":\"default\"}}}";

static void
write_png(const char *path, int w, int h)
{
	unsigned char *px = xcalloc((size_t)w * h, 3);

	ASSERT_TRUE(stbi_write_png(path, w, h, 3, px, w * 3) != 0);
	free(px);
}

static void
test_video_nodes(void)
{
	struct simproc s;
	struct wsc     c;
	cJSON	      *root, *h, *gif, *o;
	char	       path[512], *data;
	size_t	       len;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	snprintf(path, sizeof path, "%s/in.png", s.in);
	write_png(path, 40, 30);
	wsc_open(&c, &s, "c");
	sim_run(&s, &c, svd_graph, "v1");
	ASSERT_TRUE(wsc_find(&c, "execution_success", "v1", 0) != NULL);
	/* VHS reports a progress step per frame */
	ASSERT_TRUE(wsc_find(&c, "progress", "v1", 2 + 13) != NULL);
	h = history_entry(&s, "v1", &root);
	o = cJSON_GetObjectItemCaseSensitive(h, "outputs");
	gif = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, "7"), "gifs"),
	    0);
	ASSERT_JSTR(gif, "filename", "svd_00001.mp4");
	ASSERT_JSTR(gif, "subfolder", "vid");
	ASSERT_JSTR(gif, "type", "output");
	ASSERT_JSTR(gif, "format", "video/h264-mp4");
	ASSERT_JSTR(gif, "workflow", "svd_00001.png");
	ASSERT_EQ(
	    cJSON_GetObjectItemCaseSensitive(gif, "frame_rate")->valueint, 7);
	snprintf(path, sizeof path, "%s/vid/svd_00001.mp4", s.out);
	ASSERT_JSTR(gif, "fullpath", path);
	data = file_read(path, &len);
	ASSERT_TRUE(data != NULL);
	/* 14 frames at 7 fps: 2 s, about 80 KB a second */
	ASSERT_EQ((long long)len, 2 * 80 * 1024);
	ASSERT_TRUE(memcmp(data + 4, "ftyp", 4) == 0);
	free(data);
	snprintf(path, sizeof path, "%s/vid/svd_00001.png", s.out);
	ASSERT_TRUE(file_exists(path));
	o = cJSON_GetObjectItemCaseSensitive(o, "8");
	ASSERT_JSTR(cJSON_GetArrayItem(
			cJSON_GetObjectItemCaseSensitive(o, "images"), 0),
	    "filename", "anim_00001_.webp");
	ASSERT_TRUE(cJSON_IsTrue(cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(o, "animated"), 0)));
	cJSON_Delete(root);
	wsc_free(&c);
	sim_stop(&s);
}

/* img2img with a LoRA and a ControlNet, and the FaceID pair. */
static void
test_sdxl_extras(void)
{
	struct simproc s;
	struct wsc     c;
	char	       path[512], *g;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	snprintf(path, sizeof path, "%s/face.png", s.in);
	write_png(path, 64, 64);
	wsc_open(&c, &s, "c");
	g = xasprintf(
	    "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{"
	    "\"ckpt_name\":\"" CKPT "\"}},"
	    "\"2\":{\"class_type\":\"LoraLoader\",\"inputs\":{\"model\":[\"1\","
	    "0],\"clip\":[\"1\",1],\"lora_name\":\"add-detail-xl.safetensors\","
	    "\"strength_model\":0.8,\"strength_clip\":0.6}},"
	    "\"3\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":"
	    "\"face.png\"}},"
	    "\"4\":{\"class_type\":\"VAEEncode\",\"inputs\":{\"pixels\":[\"3\","
	    "0],\"vae\":[\"1\",2]}},"
	    "\"5\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":"
	    "\"p\","
	    "\"clip\":[\"2\",1]}},"
	    "\"6\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":"
	    "\"n\","
	    "\"clip\":[\"2\",1]}},"
	    "\"7\":{\"class_type\":\"ControlNetLoader\",\"inputs\":{"
	    "\"control_net_name\":\"control-lora-canny-rank256.safetensors\"}},"
	    "\"8\":{\"class_type\":\"ControlNetApplyAdvanced\",\"inputs\":{"
	    "\"positive\":[\"5\",0],\"negative\":[\"6\",0],\"control_net\":"
	    "[\"7\",0],\"image\":[\"3\",0],\"strength\":0.7,\"start_percent\":"
	    "0.0,\"end_percent\":1.0}},"
	    "\"9\":{\"class_type\":\"IPAdapterUnifiedLoaderFaceID\",\"inputs\":"
	    "{"
	    "\"model\":[\"2\",0],\"preset\":\"FACEID PLUS V2\","
	    "\"lora_strength\":0.6,\"provider\":\"CUDA\"}},"
	    "\"10\":{\"class_type\":\"IPAdapterFaceID\",\"inputs\":{\"model\":"
	    "[\"9\",0],\"ipadapter\":[\"9\",1],\"image\":[\"3\",0],\"weight\":"
	    "0.8,\"weight_faceidv2\":1.0,\"weight_type\":\"linear\","
	    "\"combine_embeds\":\"concat\",\"start_at\":0.0,\"end_at\":1.0,"
	    "\"embeds_scaling\":\"V only\"}},"
	    "\"11\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"10\","
	    "0],\"seed\":5,\"steps\":2,\"cfg\":5.0,\"sampler_name\":"
	    "\"dpmpp_2m\",\"scheduler\":\"karras\",\"positive\":[\"8\",0],"
	    "\"negative\":[\"8\",1],\"latent_image\":[\"4\",0],\"denoise\":"
	    "0.6}},"
	    "\"12\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":"
	    "[\"11\",0],\"vae\":[\"1\",2]}},"
	    "\"13\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":["
	    "\"12\","
	    "0],\"filename_prefix\":\"jobs/42/img\"}}}");
	sim_run(&s, &c, g, "x1");
	ASSERT_TRUE(wsc_find(&c, "execution_success", "x1", 0) != NULL);
	snprintf(path, sizeof path, "%s/jobs/42/img_00001_.png", s.out);
	ASSERT_TRUE(file_exists(path));
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

static void
test_history_paging(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *h, *e;
	char	       *g, id[16], *keys;
	int		i;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", "--history-max",
	    "3", NULL);
	wsc_open(&c, &s, "c");
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "h%d", i);
		g = graph_empty(4, 4, i, "h");
		ASSERT_EQ(ht_prompt(&s, g, "c", id, &r), 200);
		ht_free(&r);
		free(g);
		ASSERT_TRUE(wsc_wait_done(&c, id, 3000));
	}
	/* capacity 3: ComfyUI drops the oldest once it holds more */
	ASSERT_EQ(ht_get(&s, "/history", &r), 200);
	h = ht_json(&r);
	ht_free(&r);
	keys = xstrdup("");
	cJSON_ArrayForEach(e, h) {
		char *n = xasprintf("%s%s,", keys, e->string);

		free(keys);
		keys = n;
	}
	ASSERT_STREQ(keys, "h1,h2,h3,h4,");
	free(keys);
	cJSON_Delete(h);
	ASSERT_EQ(ht_get(&s, "/history?max_items=2", &r), 200);
	h = ht_json(&r);
	ht_free(&r);
	ASSERT_EQ(cJSON_GetArraySize(h), 2);
	ASSERT_STREQ(h->child->string, "h3");
	cJSON_Delete(h);
	ASSERT_EQ(ht_get(&s, "/api/history?max_items=1&offset=1", &r), 200);
	h = ht_json(&r);
	ht_free(&r);
	ASSERT_EQ(cJSON_GetArraySize(h), 1);
	ASSERT_STREQ(h->child->string, "h2");
	cJSON_Delete(h);
	ASSERT_EQ(ht_get(&s, "/history?max_items=x", &r), 500);
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/history", "{\"delete\":[\"h2\"]}", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/history/h2", &r), 200);
	ASSERT_STREQ(r.body, "{}");
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/history", "{\"clear\":true}", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/history", &r), 200);
	ASSERT_STREQ(r.body, "{}");
	ht_free(&r);
	wsc_free(&c);
	sim_stop(&s);
}

/* --cache-none runs everything every time; --progress-state false
 * leaves those events out. */
static void
test_cache_none(void)
{
	struct simproc s;
	struct wsc     c;
	char	      *g, *t;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", "--cache-none",
	    "--progress-state", "false", NULL);
	wsc_open(&c, &s, "c");
	g = graph_sdxl(CKPT, 64, 64, 7, 2, "cat", "nc");
	sim_run(&s, &c, g, "n1");
	sim_run(&s, &c, g, "n2");
	ASSERT_EQ(cached_count(&c, "n2"), 0);
	t = executing_nodes(&c, "n2");
	ASSERT_STREQ(t, "4,5,7,6,3,8,9,null");
	free(t);
	ASSERT_TRUE(wsc_find(&c, "progress_state", NULL, 0) == NULL);
	ASSERT_TRUE(wsc_find(&c, "progress", "n2", 1) != NULL);
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

/* GET /sim/stats counts prompts, the idle gaps between them (a gap only
 * where a prompt followed an ended one), checkpoint loads and interrupts;
 * its times are CLOCK_MONOTONIC, this process's clock too. */
static long long
stat_ll(struct simproc *s, const char *key)
{
	struct http_res r;
	cJSON	       *j, *v;
	long long	n;

	ASSERT_EQ(ht_get(s, "/sim/stats", &r), 200);
	j = ht_json(&r);
	v = cJSON_GetObjectItemCaseSensitive(j, key);
	ASSERT_TRUE(cJSON_IsNumber(v));
	n = (long long)v->valuedouble;
	cJSON_Delete(j);
	ht_free(&r);
	return (n);
}

static void
test_stats(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	long long	t0, t1, pause0;
	char	       *g;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "100", NULL);
	ASSERT_EQ(stat_ll(&s, "prompts_started"), 0);
	ASSERT_EQ(stat_ll(&s, "last_post_us"), 0);
	wsc_open(&c, &s, "c");
	g = graph_sdxl(CKPT, 64, 64, 1, 1, "a", "st");
	t0 = clock_mono_us();
	sim_run(&s, &c, g, "s1");
	t1 = clock_mono_us();
	ASSERT_TRUE(stat_ll(&s, "last_post_us") >= t0);
	ASSERT_TRUE(stat_ll(&s, "last_post_us") <= t1);
	ASSERT_EQ(stat_ll(&s, "idle_gaps"), 0);
	ASSERT_EQ(stat_ll(&s, "model_loads"), 1);
	free(g);
	pause0 = clock_mono_us();
	it_sleep_ms(150);
	/* another checkpoint: a load; the same one again: none */
	g = graph_sdxl(
	    "sd_xl_refiner_1.0.safetensors", 64, 64, 2, 1, "a", "st");
	sim_run(&s, &c, g, "s2");
	free(g);
	g = graph_sdxl(
	    "sd_xl_refiner_1.0.safetensors", 64, 64, 3, 1, "a", "st");
	sim_run(&s, &c, g, "s3");
	free(g);
	ASSERT_EQ(stat_ll(&s, "prompts_posted"), 3);
	ASSERT_EQ(stat_ll(&s, "prompts_started"), 3);
	ASSERT_EQ(stat_ll(&s, "prompts_ended"), 3);
	ASSERT_EQ(stat_ll(&s, "idle_gaps"), 2);
	ASSERT_EQ(stat_ll(&s, "model_loads"), 2);
	/* the 150 ms pause is idle time; the two loads are busy time */
	ASSERT_TRUE(stat_ll(&s, "idle_us") >= 150000);
	ASSERT_TRUE(stat_ll(&s, "idle_us") <= clock_mono_us() - pause0);
	ASSERT_TRUE(stat_ll(&s, "busy_us") >= 2 * 99000);
	ASSERT_EQ(stat_ll(&s, "interrupts"), 0);
	t0 = clock_mono_us();
	ASSERT_EQ(ht_post(&s, "/interrupt", "{}", &r), 200);
	ht_free(&r);
	ASSERT_EQ(stat_ll(&s, "interrupts"), 1);
	ASSERT_TRUE(stat_ll(&s, "last_interrupt_us") >= t0);
	wsc_free(&c);
	sim_stop(&s);
}

const struct unit_test itests[] = {
	{ "success_order", test_success_order },
	{ "anonymous_prompt", test_anonymous_prompt },
	{ "cache_and_free", test_cache_and_free },
	{ "cache_none", test_cache_none },
	{ "model_load_time", test_model_load_time },
	{ "targeted_interrupt", test_targeted_interrupt },
	{ "queue_delete_and_priority", test_queue_delete_and_priority },
	{ "reconnect", test_reconnect },
	{ "outputs", test_outputs },
	{ "video_nodes", test_video_nodes },
	{ "sdxl_extras", test_sdxl_extras },
	{ "history_paging", test_history_paging },
	{ "stats", test_stats },
	{ NULL, NULL },
};
