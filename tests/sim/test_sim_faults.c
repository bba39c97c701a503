/*
 * comfyq-sim's faults, each one observed the way a worker would meet it:
 * the execution_error event and history entry, an OOM that unloads the
 * models, a hang only an interrupt ends, a crash that loses queue and
 * history, a 500 on /prompt, a slow /view, a dropped and a silent
 * WebSocket, broken outputs on disk, "no face detected", and the same
 * random sequence again for the same seed.
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

static void
set_faults(struct simproc *s, const char *json)
{
	struct http_res r;

	ASSERT_EQ(ht_post(s, "/sim/faults", json, &r), 200);
	ht_free(&r);
}

static cJSON *
event_data(struct wsc *c, const char *type, const char *id)
{
	cJSON *m = wsc_find(c, type, id, 0);

	ASSERT_TRUE(m != NULL);
	return (cJSON_GetObjectItemCaseSensitive(m, "data"));
}

static char *
status_of(struct simproc *s, const char *id)
{
	struct http_res r;
	cJSON	       *j;
	const char     *v;
	char	       *st, path[128];

	snprintf(path, sizeof path, "/history/%s", id);
	ASSERT_EQ(ht_get(s, path, &r), 200);
	j = ht_json(&r);
	ht_free(&r);
	v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(j, id), "status"),
	    "status_str"));
	st = xstrdup(v != NULL ? v : "none");
	cJSON_Delete(j);
	return (st);
}

#define ASSERT_STATUS_IS(s, id, want)                                          \
	do {                                                                   \
		char *_st = status_of((s), (id));                              \
		ASSERT_STREQ(_st, (want));                                     \
		free(_st);                                                     \
	} while (0)

static void
test_execution_error(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *d, *k;
	char	       *g, *t, keys[512] = "";

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	ASSERT_EQ(ht_post(&s, "/sim/faults",
		      "{\"execution_error\":{\"node\":\"VAEDecode\","
		      "\"exception_type\":\"RuntimeError\",\"message\":"
		      "\"boom\"}}",
		      &r),
	    200);
	ASSERT_TRUE(strstr(r.body,
			"\"execution_error\":{\"node\":\"VAEDecode\","
			"\"exception_type\":\"RuntimeError\","
			"\"message\":\"boom\",\"seen\":0,\"fired\":"
			"0}") != NULL);
	ht_free(&r);
	g = graph_sdxl(CKPT, 64, 64, 1, 2, "a", "e");
	sim_run(&s, &c, g, "e1");
	t = wsc_types(&c, "e1", 0);
	ASSERT_TRUE(strstr(t, "executing,execution_error,executing") != NULL);
	ASSERT_TRUE(strstr(t, "execution_success") == NULL);
	free(t);
	d = event_data(&c, "execution_error", "e1");
	cJSON_ArrayForEach(k, d) {
		strcat(keys, k->string);
		strcat(keys, ",");
	}
	ASSERT_STREQ(keys,
	    "prompt_id,node_id,node_type,executed,"
	    "exception_message,exception_type,traceback,"
	    "current_inputs,current_outputs,timestamp,");
	ASSERT_JSTR(d, "node_id", "8");
	ASSERT_JSTR(d, "node_type", "VAEDecode");
	ASSERT_JSTR(d, "exception_message", "boom\n");
	ASSERT_JSTR(d, "exception_type", "RuntimeError");
	t = cJSON_PrintUnformatted(
	    cJSON_GetObjectItemCaseSensitive(d, "executed"));
	ASSERT_STREQ(t, "[\"4\",\"5\",\"7\",\"6\",\"3\"]");
	free(t);
	t = cJSON_PrintUnformatted(
	    cJSON_GetObjectItemCaseSensitive(d, "current_outputs"));
	ASSERT_STREQ(t, "[\"4\",\"5\",\"6\",\"7\",\"3\",\"8\",\"9\"]");
	free(t);
	k = cJSON_GetObjectItemCaseSensitive(d, "current_inputs");
	ASSERT_TRUE(strncmp(cJSON_GetArrayItem(
				cJSON_GetObjectItemCaseSensitive(k, "vae"), 0)
				->valuestring,
			"<comfy.sd.VAE object at ", 24) == 0);
	ASSERT_STATUS_IS(&s, "e1", "error");
	/* removed: the next prompt succeeds */
	set_faults(&s, "{\"execution_error\":null}");
	free(g);
	g = graph_sdxl(CKPT, 64, 64, 2, 2, "a", "e");
	sim_run(&s, &c, g, "e2");
	ASSERT_STATUS_IS(&s, "e2", "success");
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

static double
vram_free(struct simproc *s)
{
	struct http_res r;
	cJSON	       *j;
	double		v;

	ASSERT_EQ(ht_get(s, "/system_stats", &r), 200);
	j = ht_json(&r);
	ht_free(&r);
	v = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetArrayItem(
		cJSON_GetObjectItemCaseSensitive(j, "devices"), 0),
	    "vram_free")
		->valuedouble;
	cJSON_Delete(j);
	return (v);
}

static void
test_oom(void)
{
	struct simproc s;
	struct wsc     c;
	cJSON	      *d;
	const char    *msg, *type;
	char	      *g;
	double	       loaded;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	set_faults(&s, "{\"oom\":{\"nth\":2}}");
	g = graph_sdxl(CKPT, 64, 64, 1, 2, "a", "o");
	sim_run(&s, &c, g, "o1");
	ASSERT_STATUS_IS(&s, "o1", "success");
	loaded = vram_free(&s);
	free(g);
	g = graph_sdxl(CKPT, 64, 64, 2, 2, "a", "o");
	sim_run(&s, &c, g, "o2");
	d = event_data(&c, "execution_error", "o2");
	type = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(d, "exception_type"));
	msg = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(d, "exception_message"));
	ASSERT_TRUE(strlen(type) > 16 &&
	    strcmp(type + strlen(type) - 16, "OutOfMemoryError") == 0);
	ASSERT_TRUE(strncmp(msg, "Allocation on device", 20) == 0);
	ASSERT_TRUE(strstr(msg,
			"This error means you ran out of memory on "
			"your GPU.\n\nTIPS:") != NULL);
	ASSERT_JSTR(d, "node_type", "KSampler");
	/* the models were unloaded */
	ASSERT_TRUE(vram_free(&s) > loaded);
	free(g);
	g = graph_sdxl(CKPT, 64, 64, 3, 2, "a", "o");
	sim_run(&s, &c, g, "o3");
	ASSERT_STATUS_IS(&s, "o3", "success");
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

static void
test_hang(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	char	       *g;

	sim_start(&s, "--step-ms", "1", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	set_faults(&s, "{\"hang\":{\"step\":2}}");
	g = graph_sdxl(CKPT, 64, 64, 1, 5, "a", "h");
	ASSERT_EQ(ht_prompt(&s, g, "c", "h1", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_type(&c, "progress", "h1", 3000) != NULL);
	ASSERT_TRUE(!wsc_wait_done(&c, "h1", 400));
	ASSERT_TRUE(wsc_find(&c, "progress", "h1", 1) != NULL);
	ASSERT_TRUE(wsc_find(&c, "progress", "h1", 2) == NULL);
	ASSERT_EQ(ht_post(&s, "/interrupt", "{\"prompt_id\":\"h1\"}", &r), 200);
	ht_free(&r);
	ASSERT_TRUE(wsc_wait_done(&c, "h1", 3000));
	ASSERT_JSTR(
	    event_data(&c, "execution_interrupted", "h1"), "node_id", "3");
	ASSERT_STATUS_IS(&s, "h1", "error");
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

static void
test_crash(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	char	       *g, path[512];

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", "--faults",
	    "{\"crash\":{\"nth\":2}}", NULL);
	wsc_open(&c, &s, "c");
	g = graph_empty(8, 8, 1, "cr");
	sim_run(&s, &c, g, "c1");
	free(g);
	snprintf(path, sizeof path, "%s/cr_00001_.png", s.out);
	ASSERT_TRUE(file_exists(path));
	g = graph_sdxl(CKPT, 64, 64, 1, 2, "a", "cr2");
	ASSERT_EQ(ht_prompt(&s, g, "c", "c2", &r), 200);
	ht_free(&r);
	ASSERT_EQ(sim_reap(&s), 70);
	wsc_pump(&c, 100);
	ASSERT_TRUE(c.closed);
	wsc_free(&c);
	/* ComfyUI keeps nothing over a restart but the files */
	sim_restart(&s, NULL);
	ASSERT_EQ(ht_get(&s, "/history/c1", &r), 200);
	ASSERT_STREQ(r.body, "{}");
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/queue", &r), 200);
	ASSERT_STREQ(r.body, "{\"queue_running\":[],\"queue_pending\":[]}");
	ht_free(&r);
	ASSERT_TRUE(file_exists(path));
	free(g);
	sim_stop(&s);
}

static void
test_prompt_500_and_slow_view(void)
{
	struct simproc	s;
	struct http_res r;
	long long	t0;
	char		path[512];
	FILE	       *f;

	sim_start(&s, NULL);
	set_faults(&s,
	    "{\"prompt_500\":{\"nth\":1},\"slow_view\":{\"ms\":300,"
	    "\"times\":1}}");
	ASSERT_EQ(ht_prompt(&s, "{}", NULL, "x", &r), 500);
	ASSERT_STREQ(r.body,
	    "500 Internal Server Error\n\n"
	    "Server got itself in trouble");
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/prompt", &r), 200);
	ASSERT_STREQ(r.body, "{\"exec_info\":{\"queue_remaining\":0}}");
	ht_free(&r);
	ASSERT_EQ(ht_prompt(&s, "{}", NULL, "x", &r), 400);
	ht_free(&r);
	snprintf(path, sizeof path, "%s/v.png", s.out);
	ASSERT_TRUE((f = fopen(path, "w")) != NULL);
	fputs("VIEW", f);
	fclose(f);
	t0 = clock_mono_ms();
	ASSERT_EQ(ht_get(&s, "/view?filename=v.png", &r), 200);
	ASSERT_TRUE(clock_mono_ms() - t0 >= 290);
	ASSERT_STREQ(r.body, "VIEW");
	ASSERT_STREQ(r.ctype, "image/png");
	ht_free(&r);
	/* times: 1, so the next one is quick */
	ASSERT_EQ(ht_get(&s, "/view?filename=v.png", &r), 200);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/sim/faults", &r), 200);
	ASSERT_TRUE(strstr(r.body,
			"\"slow_view\":{\"times\":1,\"ms\":300,"
			"\"seen\":2,\"fired\":1}") != NULL);
	ht_free(&r);
	sim_stop(&s);
}

static void
test_ws_drop_and_silence(void)
{
	struct simproc s;
	struct wsc     c, c2;
	char	      *g, *st;
	int	       i;

	sim_start(&s, "--step-ms", "2", "--model-load-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	set_faults(&s, "{\"ws_drop\":{\"nth\":1}}");
	g = graph_sdxl(CKPT, 64, 64, 1, 20, "a", "d");
	{
		struct http_res r;

		ASSERT_EQ(ht_prompt(&s, g, "c", "d1", &r), 200);
		ht_free(&r);
	}
	wsc_pump(&c, 300);
	ASSERT_TRUE(c.closed);
	ASSERT_STREQ(c.reason, "connection closed by peer");
	/* the job went on without its socket */
	for (i = 0; i < 100; i++) {
		st = status_of(&s, "d1");
		if (strcmp(st, "none") != 0)
			break;
		free(st);
		wsc_pump(&c, 20);
	}
	ASSERT_STREQ(st, "success");
	free(st);
	wsc_free(&c);
	/* silence: the socket stays open and hears nothing of the prompt */
	wsc_open(&c2, &s, "c");
	set_faults(&s, "{\"silence\":{\"nth\":1}}");
	free(g);
	g = graph_sdxl(CKPT, 64, 64, 2, 5, "a", "d");
	{
		struct http_res r;

		ASSERT_EQ(ht_prompt(&s, g, "c", "s1", &r), 200);
		ht_free(&r);
	}
	for (i = 0; i < 100; i++) {
		st = status_of(&s, "s1");
		if (strcmp(st, "none") != 0)
			break;
		free(st);
		wsc_pump(&c2, 20);
	}
	ASSERT_STREQ(st, "success");
	free(st);
	wsc_pump(&c2, 100);
	ASSERT_TRUE(!c2.closed);
	ASSERT_TRUE(wsc_find(&c2, NULL, "s1", 0) == NULL);
	free(g);
	g = graph_sdxl(CKPT, 64, 64, 3, 5, "a", "d");
	sim_run(&s, &c2, g, "s2");
	ASSERT_TRUE(wsc_find(&c2, "execution_success", "s2", 0) != NULL);
	free(g);
	wsc_free(&c2);
	sim_stop(&s);
}

static const char video_graph[] =
    "{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":32,"
    "\"height\":32,\"batch_size\":16,\"color\":100}},"
    "\"2\":{\"class_type\":\"VHS_VideoCombine\",\"inputs\":{\"images\":"
    "[\"1\",0],\"frame_rate\":8,\"loop_count\":0,\"filename_prefix\":\"tv\","
    "\"format\":\"video/h264-mp4\",\"pingpong\":false,\"save_output\":true}},"
    "\"3\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"1\",0],"
    "\"filename_prefix\":\"ti\"}}}";

static void
test_broken_outputs(void)
{
	struct simproc s;
	struct wsc     c;
	char	       path[512], *data;
	unsigned char *px;
	size_t	       len, i, sum = 0, normal;
	int	       w, h, n;

	sim_start(&s, "--step-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	sim_run(&s, &c, video_graph, "n1");
	snprintf(path, sizeof path, "%s/ti_00001_.png", s.out);
	data = file_read(path, &normal);
	free(data);
	snprintf(path, sizeof path, "%s/tv_00001.mp4", s.out);
	data = file_read(path, &len);
	ASSERT_EQ((long long)len, 2 * 80 * 1024);
	free(data);
	set_faults(&s,
	    "{\"black_image\":{\"nth\":1},\"tiny_video\":{\"nth\":"
	    "1}}");
	data = graph_empty(32, 32, 0x808080, "bl");
	sim_run(&s, &c, data, "b1");
	free(data);
	snprintf(path, sizeof path, "%s/bl_00001_.png", s.out);
	px = stbi_load(path, &w, &h, &n, 3);
	ASSERT_TRUE(px != NULL);
	for (i = 0; i < (size_t)w * h * 3; i++)
		sum += px[i];
	ASSERT_EQ((long long)sum, 0);
	ASSERT_EQ(w, 32);
	stbi_image_free(px);
	set_faults(&s,
	    "{\"reset\":true,\"tiny_video\":{},\"truncated_png\":"
	    "{}}");
	sim_run(&s, &c, video_graph, "t1");
	snprintf(path, sizeof path, "%s/tv_00002.mp4", s.out);
	data = file_read(path, &len);
	ASSERT_EQ((long long)len, 2048);
	free(data);
	/* n1 saved ti_00001 .. ti_00016, a batch of 16 */
	snprintf(path, sizeof path, "%s/ti_00017_.png", s.out);
	data = file_read(path, &len);
	ASSERT_TRUE(data != NULL && len > 8 && len < normal);
	ASSERT_TRUE(memcmp(data + 1, "PNG", 3) == 0);
	ASSERT_TRUE(stbi_load_from_memory((unsigned char *)data, (int)len, &w,
			&h, &n, 3) == NULL);
	free(data);
	wsc_free(&c);
	sim_stop(&s);
}

/* huge_png: a small valid PNG that declares 16384x16384; same_name. */
static void
test_huge_and_same_name(void)
{
	struct simproc s;
	struct wsc     c;
	char	       path[512], *data, *g;
	size_t	       len;
	int	       w, h, n;

	sim_start(&s, "--step-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	set_faults(&s,
	    "{\"huge_png\":{\"nth\":1},\"same_name\":{\"nth\":1,"
	    "\"name\":\"y.png\"}}");
	g = graph_empty(32, 32, 0x808080, "hs");
	sim_run(&s, &c, g, "h1");
	snprintf(path, sizeof path, "%s/1/y.png", s.out);
	data = file_read(path, &len);
	ASSERT_TRUE(data != NULL);
	ASSERT_TRUE(len > (4u << 20) && len < (6u << 20));
	ASSERT_TRUE(
	    stbi_info_from_memory((unsigned char *)data, (int)len, &w, &h, &n));
	ASSERT_EQ(w, 16384);
	ASSERT_EQ(h, 16384);
	ASSERT_EQ(n, 3);
	free(data);
	snprintf(path, sizeof path, "%s/hs_00001_.png", s.out);
	ASSERT_TRUE(file_read(path, &len) == NULL); /* moved */
	/* Both fired once: the next prompt saves as usual. */
	free(g);
	g = graph_empty(32, 32, 0x808080, "hn");
	sim_run(&s, &c, g, "h2");
	snprintf(path, sizeof path, "%s/hn_00001_.png", s.out);
	data = file_read(path, &len);
	ASSERT_TRUE(data != NULL && len < 4096);
	free(data);
	free(g);
	wsc_free(&c);
	sim_stop(&s);
}

static void
test_no_face(void)
{
	struct simproc s;
	struct wsc     c;
	cJSON	      *d;
	char	       path[512];
	unsigned char  px[64 * 64 * 3];

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", "--faults",
	    "{\"no_face\":{}}", NULL);
	snprintf(path, sizeof path, "%s/face.png", s.in);
	memset(px, 90, sizeof px);
	ASSERT_TRUE(stbi_write_png(path, 64, 64, 3, px, 64 * 3) != 0);
	wsc_open(&c, &s, "c");
	sim_run(&s, &c,
	    "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{"
	    "\"ckpt_name\":\"" CKPT "\"}},"
	    "\"2\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":"
	    "\"face.png\"}},"
	    "\"3\":{\"class_type\":\"IPAdapterUnifiedLoaderFaceID\",\"inputs\":"
	    "{"
	    "\"model\":[\"1\",0],\"preset\":\"FACEID PLUS V2\","
	    "\"lora_strength\":0.6,\"provider\":\"CPU\"}},"
	    "\"4\":{\"class_type\":\"IPAdapterFaceID\",\"inputs\":{\"model\":"
	    "[\"3\",0],\"ipadapter\":[\"3\",1],\"image\":[\"2\",0],\"weight\":"
	    "1,"
	    "\"weight_faceidv2\":1,\"weight_type\":\"linear\","
	    "\"combine_embeds\":\"concat\",\"start_at\":0,\"end_at\":1,"
	    "\"embeds_scaling\":\"V only\"}},"
	    "\"5\":{\"class_type\":\"PreviewImage\",\"inputs\":{\"images\":"
	    "[\"4\",1]}}}",
	    "f1");
	d = event_data(&c, "execution_error", "f1");
	ASSERT_JSTR(d, "node_type", "IPAdapterFaceID");
	ASSERT_JSTR(d, "exception_type", "Exception");
	ASSERT_JSTR(d, "exception_message", "InsightFace: No face detected.\n");
	wsc_free(&c);
	sim_stop(&s);
}

/* The same seed gives the same sequence of fired faults. */
static void
test_seeded_probability(void)
{
	struct simproc	s;
	struct http_res r;
	char		a[33], b[33], c[33];
	int		i, run;
	char	       *seq[3] = { a, b, c };
	const char     *set[3] = {
		    "{\"seed\":11,\"reset\":true,\"prompt_500\":{\"p\":0.5}}",
		    "{\"seed\":11,\"reset\":true,\"prompt_500\":{\"p\":0.5}}",
		    "{\"seed\":12,\"reset\":true,\"prompt_500\":{\"p\":0.5}}"
	};

	sim_start(&s, NULL);
	for (run = 0; run < 3; run++) {
		set_faults(&s, set[run]);
		for (i = 0; i < 32; i++) {
			ASSERT_TRUE(ht_post(&s, "/prompt", "{}", &r) == 500 ||
			    r.status == 400);
			seq[run][i] = r.status == 500 ? '5' : '4';
			ht_free(&r);
		}
		seq[run][32] = '\0';
	}
	ASSERT_STREQ(a, b);
	ASSERT_TRUE(strcmp(a, c) != 0);
	ASSERT_TRUE(strchr(a, '5') != NULL && strchr(a, '4') != NULL);
	/* bad settings are refused whole */
	ASSERT_EQ(ht_post(&s, "/sim/faults", "{\"oom\":{\"p\":2}}", &r), 400);
	ASSERT_STREQ(r.body, "{\"error\":\"oom.p: must be a number in 0..1\"}");
	ht_free(&r);
	ASSERT_EQ(
	    ht_post(&s, "/sim/faults", "{\"hang\":{},\"nope\":{}}", &r), 400);
	ASSERT_STREQ(r.body, "{\"error\":\"unknown fault 'nope'\"}");
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/sim/faults", "{oops", &r), 400);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/sim/faults", &r), 200);
	ASSERT_TRUE(strstr(r.body, "\"hang\"") == NULL);
	ASSERT_TRUE(strstr(r.body, "\"seed\":12") != NULL);
	ht_free(&r);
	sim_stop(&s);
}

const struct unit_test itests[] = {
	{ "execution_error", test_execution_error },
	{ "oom", test_oom },
	{ "hang", test_hang },
	{ "crash", test_crash },
	{ "prompt_500_and_slow_view", test_prompt_500_and_slow_view },
	{ "ws_drop_and_silence", test_ws_drop_and_silence },
	{ "broken_outputs", test_broken_outputs },
	{ "huge_and_same_name", test_huge_and_same_name },
	{ "no_face", test_no_face },
	{ "seeded_probability", test_seeded_probability },
	{ NULL, NULL },
};
