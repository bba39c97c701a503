/*
 * comfyq-sim's HTTP API request by request against ComfyUI's: the exact
 * 400 bodies of validation, 500 on malformed JSON, 413, the CSRF guard,
 * the /api twins, /view's guards in order, /upload/image renaming, and the
 * informational routes. Bad input must never take the sim down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "../integration/itest.h"
#include "simtest.h"
#include "xmalloc.h"

#define CKPT "sd_xl_base_1.0.safetensors"

static const char trouble[] = "500 Internal Server Error\n\n"
			      "Server got itself in trouble";

/* POST /prompt {"prompt": graph}: asserts the status and returns the
 * reply as JSON. */
static cJSON *
submit(struct simproc *s, const char *graph, long status)
{
	struct http_res r;
	cJSON	       *j;

	ASSERT_EQ(ht_prompt(s, graph, NULL, NULL, &r), status);
	j = ht_json(&r);
	ht_free(&r);
	return (j);
}

/* The first error of node id in a 400 reply, as compact JSON. */
static char *
node_error(cJSON *reply, const char *id)
{
	cJSON *ne = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(reply, "node_errors"), id);

	ASSERT_TRUE(ne != NULL);
	return (cJSON_PrintUnformatted(cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(ne, "errors"), 0)));
}

/* graph_sdxl() with one literal replaced: node, input, JSON value. */
static char *
sdxl_with(const char *node, const char *input, const char *json)
{
	char  *g = graph_sdxl(CKPT, 64, 64, 1, 2, "a", "v");
	cJSON *j = cJSON_Parse(g), *in;

	free(g);
	in = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, node), "inputs");
	cJSON_DeleteItemFromObjectCaseSensitive(in, input);
	if (json != NULL)
		cJSON_AddItemToObject(in, input, cJSON_Parse(json));
	g = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return (g);
}

/* The first error of the node when one input of graph_sdxl() is set to
 * json (NULL: left out). */
static char *
variant_error(
    struct simproc *s, const char *node, const char *input, const char *json)
{
	char  *g = sdxl_with(node, input, json), *e;
	cJSON *j = submit(s, g, 400);

	e = node_error(j, node);
	cJSON_Delete(j);
	free(g);
	return (e);
}

#define ASSERT_HAS(s, part) ASSERT_TRUE(strstr((s), (part)) != NULL)

static void
expect_body(struct simproc *s, const char *graph, const char *want)
{
	struct http_res r;

	ASSERT_EQ(ht_prompt(s, graph, NULL, NULL, &r), 400);
	ASSERT_STREQ(r.ctype, "application/json; charset=utf-8");
	ASSERT_STREQ(r.body, want);
	ht_free(&r);
}

static void
test_prompt_errors(void)
{
	struct simproc	s;
	struct http_res r;
	cJSON	       *j;
	char	       *g, *e;

	sim_start(&s, NULL);
	ASSERT_EQ(ht_post(&s, "/prompt", "{}", &r), 400);
	ASSERT_STREQ(r.body,
	    "{\"error\":{\"type\":\"no_prompt\",\"message\":\"No prompt "
	    "provided\",\"details\":\"No prompt provided\",\"extra_info\":{}},"
	    "\"node_errors\":{}}");
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/prompt", "[1,2]", &r), 400);
	ht_free(&r);
	expect_body(&s, "{\"1\":{\"inputs\":{}}}",
	    "{\"error\":{\"type\":\"invalid_prompt\",\"message\":\"Cannot "
	    "execute because a node is missing the class_type property.\","
	    "\"details\":\"Node ID "
	    "'#1'\",\"extra_info\":{}},\"node_errors\":{}}");
	expect_body(&s, "{\"7\":{\"class_type\":\"Foo\",\"inputs\":{}}}",
	    "{\"error\":{\"type\":\"invalid_prompt\",\"message\":\"Cannot "
	    "execute because node Foo does not exist.\",\"details\":\"Node ID "
	    "'#7'\",\"extra_info\":{}},\"node_errors\":{}}");
	expect_body(&s,
	    "{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":8,"
	    "\"height\":8,\"batch_size\":1,\"color\":0}}}",
	    "{\"error\":{\"type\":\"prompt_no_outputs\",\"message\":\"Prompt "
	    "has no outputs\",\"details\":\"\",\"extra_info\":{}},"
	    "\"node_errors\":{}}");
	/* a checkpoint the sim does not have, exactly as ComfyUI says it */
	g = graph_sdxl("nope.safetensors", 64, 64, 1, 2, "a", "v");
	expect_body(&s, g,
	    "{\"error\":{\"type\":\"prompt_outputs_failed_validation\","
	    "\"message\":\"Prompt outputs failed validation\",\"details\":\"\","
	    "\"extra_info\":{}},\"node_errors\":{\"4\":{\"errors\":[{\"type\":"
	    "\"value_not_in_list\",\"message\":\"Value not in list\","
	    "\"details\":\"ckpt_name: 'nope.safetensors' not in "
	    "['sd_xl_base_1.0.safetensors', 'sd_xl_refiner_1.0.safetensors', "
	    "'svd_xt.safetensors']\",\"extra_info\":{\"input_name\":"
	    "\"ckpt_name\",\"input_config\":[[\"sd_xl_base_1.0.safetensors\","
	    "\"sd_xl_refiner_1.0.safetensors\",\"svd_xt.safetensors\"],{}],"
	    "\"received_value\":\"nope.safetensors\"}}],\"dependent_outputs\":"
	    "[\"9\"],\"class_type\":\"CheckpointLoaderSimple\"}}}");
	free(g);
	/* a missing input */
	e = variant_error(&s, "3", "steps", NULL);
	ASSERT_STREQ(e,
	    "{\"type\":\"required_input_missing\",\"message\":\"Required input "
	    "is missing\",\"details\":\"steps\",\"extra_info\":{\"input_name\":"
	    "\"steps\"}}");
	free(e);
	/* bounds, with Python's number formatting */
	e = variant_error(&s, "3", "steps", "10001");
	ASSERT_HAS(e,
	    "\"type\":\"value_bigger_than_max\",\"message\":\"Value "
	    "10001 bigger than max of 10000\",\"details\":\"steps\"");
	ASSERT_HAS(e, "\"received_value\":10001");
	free(e);
	e = variant_error(&s, "3", "cfg", "-1");
	ASSERT_HAS(e, "\"message\":\"Value -1.0 smaller than min of 0.0\"");
	free(e);
	e = variant_error(&s, "3", "steps", "\"abc\"");
	ASSERT_HAS(e,
	    "\"type\":\"invalid_input_type\",\"message\":\"Failed to "
	    "convert an input value to a INT value\",\"details\":"
	    "\"steps, abc, invalid literal for int() with base 10: "
	    "'abc'\"");
	free(e);
	/* a link of the wrong type, and a link that is not [id, slot] */
	e = variant_error(&s, "8", "samples", "[\"4\",0]");
	ASSERT_HAS(e,
	    "\"type\":\"return_type_mismatch\",\"message\":\"Return "
	    "type mismatch between linked nodes\",\"details\":"
	    "\"samples, received_type(MODEL) mismatch "
	    "input_type(LATENT)\"");
	ASSERT_HAS(e, "\"received_type\":\"MODEL\",\"linked_node\":[\"4\",0]");
	free(e);
	e = variant_error(&s, "9", "images", "[\"8\",0,1]");
	ASSERT_HAS(e,
	    "\"type\":\"bad_linked_input\",\"message\":\"Bad linked "
	    "input, must be a length-2 list of [node_id, "
	    "slot_index]\",\"details\":\"images\"");
	free(e);
	/* the output's own errors make the details line */
	g = sdxl_with("9", "images", "[\"8\",0,1]");
	j = submit(&s, g, 400);
	ASSERT_JSTR(cJSON_GetObjectItemCaseSensitive(j, "error"), "details",
	    "Bad linked input, must be a length-2 list of [node_id, "
	    "slot_index]: images");
	cJSON_Delete(j);
	free(g);
	/* an integer node id in an inner node's link: KeyError, caught by
	 * the node that links to it */
	e = variant_error(&s, "8", "samples", "[3,0]");
	ASSERT_HAS(e,
	    "\"type\":\"exception_during_inner_validation\","
	    "\"message\":\"Exception when validating inner node\","
	    "\"details\":\"3\"");
	ASSERT_HAS(e, "\"input_name\":\"images\"");
	ASSERT_HAS(e, "\"exception_type\":\"KeyError\"");
	ASSERT_HAS(e, "\"linked_node\":[\"8\",0]");
	free(e);
	/* a LoRA and a ControlNet the sim does not have */
	j = submit(&s,
	    "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{"
	    "\"ckpt_name\":\"" CKPT "\"}},\"2\":{\"class_type\":\"LoraLoader\","
	    "\"inputs\":{\"model\":[\"1\",0],\"clip\":[\"1\",1],\"lora_name\":"
	    "\"gone.safetensors\",\"strength_model\":1,\"strength_clip\":1}},"
	    "\"3\":{\"class_type\":\"ControlNetLoader\",\"inputs\":{"
	    "\"control_net_name\":\"gone-canny.safetensors\"}},"
	    "\"4\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":8,"
	    "\"height\":8,\"batch_size\":1,\"color\":0}},"
	    "\"5\":{\"class_type\":\"ControlNetApplyAdvanced\",\"inputs\":{"
	    "\"positive\":[\"6\",0],\"negative\":[\"6\",0],\"control_net\":"
	    "[\"3\",0],\"image\":[\"4\",0],\"strength\":1,\"start_percent\":0,"
	    "\"end_percent\":1}},\"6\":{\"class_type\":\"CLIPTextEncode\","
	    "\"inputs\":{\"text\":\"x\",\"clip\":[\"2\",1]}},"
	    "\"7\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"2\",0]"
	    ","
	    "\"seed\":1,\"steps\":1,\"cfg\":1,\"sampler_name\":\"euler\","
	    "\"scheduler\":\"normal\",\"positive\":[\"5\",0],\"negative\":["
	    "\"5\","
	    "1],\"latent_image\":[\"8\",0],\"denoise\":1}},"
	    "\"8\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":"
	    "64,"
	    "\"height\":64,\"batch_size\":1}},"
	    "\"9\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":["
	    "\"7\","
	    "0],\"vae\":[\"1\",2]}},\"10\":{\"class_type\":\"SaveImage\","
	    "\"inputs\":{\"images\":[\"9\",0],\"filename_prefix\":\"x\"}}}",
	    400);
	e = node_error(j, "2");
	ASSERT_TRUE(strstr(e,
			"\"details\":\"lora_name: 'gone.safetensors' not "
			"in ['add-detail-xl.safetensors', ") != NULL);
	free(e);
	e = node_error(j, "3");
	ASSERT_TRUE(strstr(e,
			"\"details\":\"control_net_name: "
			"'gone-canny.safetensors' not in "
			"['control-lora-canny-rank256.safetensors', "
			"'control-lora-depth-rank256.safetensors']\"") != NULL);
	free(e);
	cJSON_Delete(j);
	/* EmptyImage width 0, LoadImage of a missing file */
	j = submit(&s,
	    "{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":0,"
	    "\"height\":8,\"batch_size\":1,\"color\":0}},\"2\":{\"class_type\":"
	    "\"SaveImage\",\"inputs\":{\"images\":[\"1\",0],"
	    "\"filename_prefix\":\"x\"}},\"3\":{\"class_type\":\"LoadImage\","
	    "\"inputs\":{\"image\":\"missing.png\"}},\"4\":{\"class_type\":"
	    "\"PreviewImage\",\"inputs\":{\"images\":[\"3\",0]}}}",
	    400);
	e = node_error(j, "1");
	ASSERT_TRUE(
	    strstr(e, "\"message\":\"Value 0 smaller than min of 1\"") != NULL);
	free(e);
	e = node_error(j, "3");
	ASSERT_STREQ(e,
	    "{\"type\":\"custom_validation_failed\",\"message\":\"Custom "
	    "validation failed for node\",\"details\":\"image - Invalid image "
	    "file: missing.png\",\"extra_info\":{\"input_name\":\"image\"}}");
	free(e);
	cJSON_Delete(j);
	sim_stop(&s);
}

/* One broken output, one good one: 200, node_errors, only the good one
 * runs. Literals are coerced and queued coerced. */
static void
test_partial_and_coercion(void)
{
	struct simproc	s;
	struct wsc	c;
	struct http_res r;
	cJSON	       *j, *item, *root;
	char	       *t;

	sim_start(&s, "--step-ms", "0", NULL);
	wsc_open(&c, &s, "c");
	ASSERT_EQ(
	    ht_prompt(&s,
		"{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{"
		"\"width\":\"16\",\"height\":8.9,\"batch_size\":true,"
		"\"color\":0}},\"2\":{\"class_type\":\"EmptyLatentImage\","
		"\"inputs\":{\"width\":64,\"height\":64,\"batch_size\":1}},"
		"\"3\":{\"class_type\":\"SaveImage\",\"inputs\":{"
		"\"images\":[\"2\",0],\"filename_prefix\":\"x\"}},"
		"\"4\":{\"class_type\":\"SaveImage\",\"inputs\":{"
		"\"images\":[\"1\",0],\"filename_prefix\":{\"__value__\":"
		"\"ok\"}}}}",
		"c", "pp", &r),
	    200);
	j = ht_json(&r);
	ht_free(&r);
	t = node_error(j, "3");
	ASSERT_TRUE(strstr(t, "return_type_mismatch") != NULL);
	free(t);
	cJSON_Delete(j);
	ASSERT_TRUE(wsc_wait_done(&c, "pp", 3000));
	ASSERT_EQ(ht_get(&s, "/history/pp", &r), 200);
	root = ht_json(&r);
	ht_free(&r);
	item = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(root, "pp"), "prompt");
	t = cJSON_PrintUnformatted(cJSON_GetArrayItem(item, 4));
	ASSERT_STREQ(t, "[\"4\"]");
	free(t);
	t = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(item, 2), "1"),
	    "inputs"));
	ASSERT_STREQ(t,
	    "{\"width\":16,\"height\":8,\"batch_size\":1,"
	    "\"color\":0}");
	free(t);
	cJSON_Delete(root);
	wsc_free(&c);
	sim_stop(&s);
}

static void
test_bad_input(void)
{
	struct simproc	s, small;
	struct http_res r;
	char	       *big, junk[256];
	size_t		i;

	sim_start(&s, NULL);
	ASSERT_EQ(ht_post(&s, "/prompt", "{bad", &r), 500);
	ASSERT_STREQ(r.body, trouble);
	ASSERT_STREQ(r.ctype, "text/plain; charset=utf-8");
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/prompt", NULL, &r), 500);
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/queue", "nope", &r), 500);
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/free", "[]", &r), 500);
	ht_free(&r);
	ASSERT_EQ(ht_post(&s, "/history", "{\"delete\":5}", &r), 500);
	ht_free(&r);
	ASSERT_EQ(
	    ht_post(&s, "/prompt", "{\"prompt\":{},\"number\":\"x\"}", &r),
	    500);
	ht_free(&r);
	ASSERT_EQ(
	    ht_post(&s, "/prompt",
		"{\"prompt\":{},\"extra_data\":[],\"client_id\":\"c\"}", &r),
	    500);
	ht_free(&r);
	/* /interrupt: a body that is not JSON is a global interrupt */
	ASSERT_EQ(ht_post(&s, "/interrupt", "garbage", &r), 200);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	for (i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 37 + 11);
	ht_request(
	    &s, "POST", "/prompt", "application/json", junk, sizeof junk, &r);
	ASSERT_EQ(r.status, 500);
	ht_free(&r);
	big = xmalloc(4002);
	for (i = 0; i < 2000; i++) {
		big[i] = '[';
		big[4000 - 1 - i] = ']';
	}
	big[4000] = '\0';
	ASSERT_EQ(ht_post(&s, "/prompt", big, &r), 500);
	ht_free(&r);
	free(big);
	ASSERT_EQ(ht_get(&s, "/nothing/here", &r), 404);
	ASSERT_STREQ(r.body, "404: Not Found");
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/interrupt", &r), 405);
	ASSERT_STREQ(r.body, "405: Method Not Allowed");
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/ws", &r), 400);
	ASSERT_TRUE(strstr(r.body, "No WebSocket UPGRADE hdr") != NULL);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/prompt", &r), 200);
	ht_free(&r);
	sim_stop(&s);
	/* bodies over --max-upload-size are refused */
	sim_start(&small, "--max-upload-size", "1", NULL);
	big = xmalloc(2 << 20);
	memset(big, ' ', 2 << 20);
	big[(2 << 20) - 1] = '\0';
	big[0] = '{';
	big[(2 << 20) - 2] = '}';
	ASSERT_EQ(ht_post(&small, "/prompt", big, &r), 413);
	ht_free(&r);
	free(big);
	ASSERT_EQ(ht_get(&small, "/prompt", &r), 200);
	ht_free(&r);
	sim_stop(&small);
}

static void
test_origin_and_twins(void)
{
	struct simproc	s;
	struct http_res r, r2;
	char		origin[128];

	sim_start(&s, NULL);
	ht_set_header("Origin: http://evil.example");
	ASSERT_EQ(ht_post(&s, "/prompt", "{}", &r), 403);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/ws?clientId=x", &r), 403);
	ht_free(&r);
	snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d", s.port);
	ht_set_header(origin);
	ASSERT_EQ(ht_post(&s, "/prompt", "{}", &r), 400);
	ht_free(&r);
	ht_set_header(NULL);
	ASSERT_EQ(ht_get(&s, "/api/prompt", &r), 200);
	ASSERT_EQ(ht_get(&s, "/prompt", &r2), 200);
	ASSERT_STREQ(r.body, r2.body);
	ht_free(&r);
	ht_free(&r2);
	ASSERT_EQ(ht_get(&s, "/api/object_info/KSampler", &r), 200);
	ASSERT_EQ(ht_get(&s, "/object_info/KSampler", &r2), 200);
	ASSERT_STREQ(r.body, r2.body);
	ht_free(&r);
	ht_free(&r2);
	sim_stop(&s);
}

static void
put_file(const char *dir, const char *name, const char *data)
{
	char  path[600];
	FILE *f;

	snprintf(path, sizeof path, "mkdir -p '%s'", dir);
	ASSERT_EQ(system(path), 0);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	ASSERT_TRUE((f = fopen(path, "w")) != NULL);
	fputs(data, f);
	fclose(f);
}

static long
view(struct simproc *s, const char *query, struct http_res *r)
{
	char path[512];

	snprintf(path, sizeof path, "/view?%s", query);
	return (ht_get(s, path, r));
}

/* A file of n pseudo-random bytes comes back from /view as it is. */
static void
view_bytes(struct simproc *s, size_t n)
{
	struct http_res r;
	unsigned char  *data = xmalloc(n + 1);
	char		path[400], q[64];
	FILE	       *f;
	size_t		i;

	for (i = 0; i < n; i++)
		data[i] = (unsigned char)((i * 2654435761u) >> 13);
	snprintf(path, sizeof path, "%s/bytes%zu.bin", s->out, n);
	ASSERT_TRUE((f = fopen(path, "wb")) != NULL);
	ASSERT_EQ(fwrite(data, 1, n, f), n);
	fclose(f);
	snprintf(q, sizeof q, "filename=bytes%zu.bin", n);
	ASSERT_EQ(view(s, q, &r), 200);
	ASSERT_EQ((long long)r.len, (long long)n);
	ASSERT_TRUE(n == 0 || memcmp(r.body, data, n) == 0);
	ht_free(&r);
	free(data);
}

static void
test_view_guards(void)
{
	struct simproc	s;
	struct http_res r;
	char		sub[400];
	unsigned char  *px,
	    pix[12] = { 255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9 };
	int w, h, n;

	sim_start(&s, NULL);
	put_file(s.out, "x.png", "PNGDATA");
	snprintf(sub, sizeof sub, "%s/sub", s.out);
	put_file(sub, "y.txt", "hello");
	put_file(s.out, "page.html", "<html>");
	put_file(s.in, "in.png", "INPUT");
	ASSERT_EQ(view(&s, "filename=x.png", &r), 200);
	ASSERT_STREQ(r.body, "PNGDATA");
	ASSERT_STREQ(r.ctype, "image/png");
	ASSERT_STREQ(r.disp, "filename=\"x.png\"");
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=..%2Fx.png", &r), 400);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=%2Fetc%2Fpasswd", &r), 400);
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=x.png&type=bogus", &r), 400);
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=x.png&subfolder=..", &r), 403);
	ht_free(&r);
	ASSERT_EQ(
	    view(&s, "filename=passwd&subfolder=../../../../etc", &r), 403);
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=missing.png", &r), 404);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/view", &r), 404);
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=y.txt&subfolder=sub", &r), 200);
	ASSERT_STREQ(r.body, "hello");
	ASSERT_STREQ(r.ctype, "text/plain");
	ht_free(&r);
	/* only the base name of filename counts */
	ASSERT_EQ(view(&s, "filename=a%2Fb%2Fx.png", &r), 200);
	ASSERT_STREQ(r.body, "PNGDATA");
	ht_free(&r);
	/* an annotation picks the folder, whatever type says */
	ASSERT_EQ(
	    view(&s, "filename=in.png%20%5Binput%5D&type=output", &r), 200);
	ASSERT_STREQ(r.body, "INPUT");
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=in.png&type=input", &r), 200);
	ht_free(&r);
	ASSERT_EQ(view(&s, "filename=page.html", &r), 200);
	ASSERT_STREQ(r.ctype, "application/octet-stream");
	ht_free(&r);
	/* empty, read into the reply (up to 256 KiB), sent as a segment */
	view_bytes(&s, 0);
	view_bytes(&s, 256 << 10);
	view_bytes(&s, (256 << 10) + 1);
	view_bytes(&s, 3u << 20);
	/* channel=rgb re-encodes */
	snprintf(sub, sizeof sub, "%s/rgba.png", s.out);
	ASSERT_TRUE(stbi_write_png(sub, 2, 2, 3, pix, 6) != 0);
	ASSERT_EQ(view(&s, "filename=rgba.png&channel=rgb", &r), 200);
	ASSERT_STREQ(r.ctype, "image/png");
	px = stbi_load_from_memory(
	    (unsigned char *)r.body, (int)r.len, &w, &h, &n, 3);
	ASSERT_TRUE(px != NULL);
	ASSERT_EQ(w, 2);
	ASSERT_EQ(px[0], 255);
	stbi_image_free(px);
	ht_free(&r);
	sim_stop(&s);
}

/* multipart/form-data with an image part and plain fields. */
static long
upload(struct simproc *s, const char *fields, const char *filename,
    const char *data, struct http_res *r)
{
	static const char b[] = "simtestBOUNDARY";
	char		 *body, *f, *name, *val, *save, *tmp;

	body = xstrdup("");
	f = xstrdup(fields != NULL ? fields : "");
	for (name = strtok_r(f, "&", &save); name != NULL;
	     name = strtok_r(NULL, "&", &save)) {
		val = strchr(name, '=');
		*val++ = '\0';
		tmp = xasprintf("%s--%s\r\nContent-Disposition: form-data; "
				"name=\"%s\"\r\n\r\n%s\r\n",
		    body, b, name, val);
		free(body);
		body = tmp;
	}
	free(f);
	if (filename != NULL) {
		tmp = xasprintf("%s--%s\r\nContent-Disposition: form-data; "
				"name=\"image\"; filename=\"%s\"\r\n"
				"Content-Type: image/png\r\n\r\n%s\r\n",
		    body, b, filename, data);
		free(body);
		body = tmp;
	}
	tmp = xasprintf("%s--%s--\r\n", body, b);
	free(body);
	ht_request(s, "POST", "/upload/image",
	    "multipart/form-data; boundary=simtestBOUNDARY", tmp, strlen(tmp),
	    r);
	free(tmp);
	return (r->status);
}

static void
test_upload(void)
{
	struct simproc	s;
	struct http_res r;
	char		path[600], *data;
	cJSON	       *j;

	sim_start(&s, NULL);
	ASSERT_EQ(upload(&s, NULL, "probe.png", "AAAA", &r), 200);
	ASSERT_STREQ(r.body,
	    "{\"name\":\"probe.png\",\"subfolder\":\"\",\"type\":\"input\"}");
	ht_free(&r);
	/* same bytes: the same name again */
	ASSERT_EQ(upload(&s, NULL, "probe.png", "AAAA", &r), 200);
	ASSERT_STREQ(r.body,
	    "{\"name\":\"probe.png\",\"subfolder\":\"\",\"type\":\"input\"}");
	ht_free(&r);
	/* other bytes: renamed, the old file kept */
	ASSERT_EQ(upload(&s, NULL, "probe.png", "BBBB", &r), 200);
	ASSERT_STREQ(r.body,
	    "{\"name\":\"probe (1).png\",\"subfolder\":\"\","
	    "\"type\":\"input\"}");
	ht_free(&r);
	ASSERT_EQ(upload(&s, NULL, "probe.png", "CCCC", &r), 200);
	ASSERT_JSTR(j = ht_json(&r), "name", "probe (2).png");
	cJSON_Delete(j);
	ht_free(&r);
	snprintf(path, sizeof path, "%s/probe.png", s.in);
	data = file_read(path, NULL);
	ASSERT_STREQ(data, "AAAA");
	free(data);
	/* overwrite, subfolder, type */
	ASSERT_EQ(upload(&s, "overwrite=true", "probe.png", "DDDD", &r), 200);
	ASSERT_JSTR(j = ht_json(&r), "name", "probe.png");
	cJSON_Delete(j);
	ht_free(&r);
	data = file_read(path, NULL);
	ASSERT_STREQ(data, "DDDD");
	free(data);
	ASSERT_EQ(
	    upload(&s, "subfolder=jobs/123&type=temp", "face.png", "FF", &r),
	    200);
	ASSERT_STREQ(r.body,
	    "{\"name\":\"face.png\",\"subfolder\":\"jobs/123\","
	    "\"type\":\"temp\"}");
	ht_free(&r);
	snprintf(path, sizeof path, "%s/jobs/123/face.png", s.temp);
	ASSERT_TRUE(file_exists(path));
	/* refusals */
	ASSERT_EQ(upload(&s, "subfolder=x", NULL, NULL, &r), 400);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	ASSERT_EQ(upload(&s, NULL, "", "E", &r), 400);
	ht_free(&r);
	ASSERT_EQ(upload(&s, "subfolder=../..", "evil.png", "E", &r), 400);
	ht_free(&r);
	ASSERT_EQ(upload(&s, "type=bogus", "a.png", "E", &r), 500);
	ht_free(&r);
	ht_request(&s, "POST", "/upload/image",
	    "multipart/form-data; boundary=zzz", "garbage", 7, &r);
	ASSERT_EQ(r.status, 500);
	ht_free(&r);
	/* LoadImage sees the upload, in /object_info and in validation */
	ASSERT_EQ(ht_get(&s, "/object_info/LoadImage", &r), 200);
	ASSERT_TRUE(strstr(r.body,
			"[[\"probe (1).png\",\"probe (2).png\","
			"\"probe.png\"],{\"image_upload\":true}]") != NULL);
	ht_free(&r);
	ASSERT_EQ(ht_prompt(&s,
		      "{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":{"
		      "\"image\":\"jobs/123/face.png [temp]\"}},\"2\":{"
		      "\"class_type\":\"PreviewImage\",\"inputs\":{\"images\":"
		      "[\"1\",0]}}}",
		      NULL, NULL, &r),
	    200);
	ht_free(&r);
	sim_stop(&s);
}

static cJSON *
get_json(struct simproc *s, const char *path)
{
	struct http_res r;
	cJSON	       *j;

	ASSERT_EQ(ht_get(s, path, &r), 200);
	ASSERT_STREQ(r.ctype, "application/json; charset=utf-8");
	j = ht_json(&r);
	ht_free(&r);
	return (j);
}

static char *
json_at(cJSON *j, const char *const *path)
{
	for (; *path != NULL; path++)
		j = **path == '#' ? cJSON_GetArrayItem(j, atoi(*path + 1))
				  : cJSON_GetObjectItemCaseSensitive(j, *path);
	ASSERT_TRUE(j != NULL);
	return (cJSON_PrintUnformatted(j));
}

#define AT(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void
expect_at(cJSON *j, const char *const *path, const char *want)
{
	char *s = json_at(j, path);

	ASSERT_STREQ(s, want);
	free(s);
}

static void
test_object_info(void)
{
	static const char *const classes[] = { "CheckpointLoaderSimple",
		"CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode",
		"VAEEncode", "SaveImage", "PreviewImage", "LoraLoader",
		"LoraLoaderModelOnly", "ControlNetLoader",
		"ControlNetApplyAdvanced", "LoadImage", "EmptyImage",
		"ImageInvert", "ImageScale", "ImageScaleBy",
		"ImageOnlyCheckpointLoader", "SVD_img2vid_Conditioning",
		"VideoLinearCFGGuidance", "SaveAnimatedWEBP",
		"IPAdapterUnifiedLoaderFaceID", "IPAdapterFaceID",
		"VHS_VideoCombine", NULL };
	struct simproc		 s;
	struct http_res		 r;
	cJSON			*j;
	size_t			 i;

	sim_start(
	    &s, "--checkpoints", "one.safetensors, two.safetensors", NULL);
	j = get_json(&s, "/object_info");
	for (i = 0; classes[i] != NULL; i++)
		ASSERT_TRUE(
		    cJSON_GetObjectItemCaseSensitive(j, classes[i]) != NULL);
	ASSERT_EQ(cJSON_GetArraySize(j), 24);
	expect_at(j,
	    AT("CheckpointLoaderSimple", "input", "required", "ckpt_name"),
	    "[[\"one.safetensors\",\"two.safetensors\"]]");
	expect_at(j, AT("CheckpointLoaderSimple", "output"),
	    "[\"MODEL\",\"CLIP\",\"VAE\"]");
	expect_at(j, AT("KSampler", "input_order", "required"),
	    "[\"model\",\"seed\",\"steps\",\"cfg\",\"sampler_name\","
	    "\"scheduler\",\"positive\",\"negative\",\"latent_image\","
	    "\"denoise\"]");
	expect_at(j, AT("SaveImage", "output_node"), "true");
	expect_at(j, AT("SaveImage", "input", "hidden"),
	    "{\"prompt\":\"PROMPT\",\"extra_pnginfo\":\"EXTRA_PNGINFO\"}");
	expect_at(j, AT("VAEEncode", "input", "required"),
	    "{\"pixels\":[\"IMAGE\"],\"vae\":[\"VAE\"]}");
	expect_at(j, AT("ControlNetApplyAdvanced", "output_name"),
	    "[\"positive\",\"negative\"]");
	expect_at(j, AT("ControlNetApplyAdvanced", "input", "optional"),
	    "{\"vae\":[\"VAE\"]}");
	expect_at(j,
	    AT("IPAdapterUnifiedLoaderFaceID", "input_order", "required"),
	    "[\"model\",\"preset\",\"lora_strength\",\"provider\"]");
	expect_at(j,
	    AT("IPAdapterUnifiedLoaderFaceID", "input", "required", "preset",
		"#0", "#2"),
	    "\"FACEID PLUS V2\"");
	expect_at(j, AT("IPAdapterUnifiedLoaderFaceID", "output"),
	    "[\"MODEL\",\"IPADAPTER\"]");
	expect_at(j, AT("IPAdapterFaceID", "input_order", "required"),
	    "[\"model\",\"ipadapter\",\"image\",\"weight\","
	    "\"weight_faceidv2\",\"weight_type\",\"combine_embeds\","
	    "\"start_at\",\"end_at\",\"embeds_scaling\"]");
	expect_at(j, AT("IPAdapterFaceID", "output_name"),
	    "[\"MODEL\",\"face_image\"]");
	expect_at(j, AT("ImageOnlyCheckpointLoader", "output"),
	    "[\"MODEL\",\"CLIP_VISION\",\"VAE\"]");
	expect_at(j, AT("SVD_img2vid_Conditioning", "input_order", "required"),
	    "[\"clip_vision\",\"init_image\",\"vae\",\"width\",\"height\","
	    "\"video_frames\",\"motion_bucket_id\",\"fps\","
	    "\"augmentation_level\"]");
	expect_at(j, AT("SVD_img2vid_Conditioning", "output_name"),
	    "[\"positive\",\"negative\",\"latent\"]");
	expect_at(j, AT("VideoLinearCFGGuidance", "input_order", "required"),
	    "[\"model\",\"min_cfg\"]");
	expect_at(j, AT("VHS_VideoCombine", "input_order", "required"),
	    "[\"images\",\"frame_rate\",\"loop_count\",\"filename_prefix\","
	    "\"format\",\"pingpong\",\"save_output\"]");
	expect_at(j, AT("VHS_VideoCombine", "output_node"), "true");
	expect_at(j,
	    AT("VHS_VideoCombine", "input", "required", "format", "#0", "#8"),
	    "\"video/h264-mp4\"");
	cJSON_Delete(j);
	/* 2^64-1 as ComfyUI prints it, not as a double */
	ASSERT_EQ(ht_get(&s, "/object_info/KSampler", &r), 200);
	ASSERT_TRUE(strstr(r.body,
			"\"seed\":[\"INT\",{\"default\":0,\"min\":0,"
			"\"max\":18446744073709551615}]") != NULL);
	ht_free(&r);
	j = get_json(&s, "/object_info/Nope");
	ASSERT_EQ(cJSON_GetArraySize(j), 0);
	cJSON_Delete(j);
	/* a configured list decides what validates */
	ASSERT_EQ(ht_prompt(&s,
		      "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\","
		      "\"inputs\":{\"ckpt_name\":\"sd_xl_base_1.0."
		      "safetensors\"}},\"2\":{\"class_type\":\"SaveImage\","
		      "\"inputs\":{\"images\":[\"1\",2],\"filename_prefix\":"
		      "\"x\"}}}",
		      NULL, NULL, &r),
	    400);
	ht_free(&r);
	sim_stop(&s);
}

static void
test_info_routes(void)
{
	struct simproc	s;
	struct http_res r;
	cJSON	       *j;

	sim_start(&s, "--vram-mb", "1024", NULL);
	j = get_json(&s, "/system_stats");
	expect_at(j, AT("system", "os"), "\"linux\"");
	expect_at(j, AT("system", "comfyui_version"), "\"0.8.0\"");
	expect_at(j, AT("devices", "#0", "type"), "\"cuda\"");
	expect_at(j, AT("devices", "#0", "index"), "0");
	expect_at(j, AT("devices", "#0", "vram_total"), "1073741824");
	ASSERT_TRUE(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "system"), "ram_total")));
	cJSON_Delete(j);
	j = get_json(&s, "/features");
	expect_at(j, AT("supports_preview_metadata"), "true");
	expect_at(j, AT("max_upload_size"), "104857600");
	cJSON_Delete(j);
	j = get_json(&s, "/models/checkpoints");
	expect_at(j, AT("#2"), "\"svd_xt.safetensors\"");
	cJSON_Delete(j);
	j = get_json(&s, "/models");
	ASSERT_TRUE(cJSON_GetArraySize(j) > 5);
	cJSON_Delete(j);
	ASSERT_EQ(ht_get(&s, "/models/nope", &r), 404);
	ASSERT_EQ((long long)r.len, 0);
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/embeddings", &r), 200);
	ASSERT_STREQ(r.body, "[]");
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/history/unknown", &r), 200);
	ASSERT_STREQ(r.body, "{}");
	ht_free(&r);
	ASSERT_EQ(ht_get(&s, "/queue", &r), 200);
	ASSERT_STREQ(r.body, "{\"queue_running\":[],\"queue_pending\":[]}");
	ht_free(&r);
	sim_stop(&s);
}

/*
 * A chain of n nodes, EmptyImage -> n - 2 x ImageInvert -> SaveImage, in
 * reverse order (the output first), so validation and the cache keys go n
 * deep from the first node they see.
 */
static char *
chain(int n)
{
	size_t len = 0, cap = (size_t)n * 80 + 256;
	char  *g = xmalloc(cap);
	int    i;

	len += (size_t)snprintf(g + len, cap - len,
	    "{\"%d\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
	    "[\"%d\",0],\"filename_prefix\":\"chain\"}}",
	    n, n - 1);
	for (i = n - 1; i > 1; i--)
		len += (size_t)snprintf(g + len, cap - len,
		    ",\"%d\":{\"class_type\":\"ImageInvert\",\"inputs\":{"
		    "\"image\":[\"%d\",0]}}",
		    i, i - 1);
	snprintf(g + len, cap - len,
	    ",\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":8,"
	    "\"height\":8,\"batch_size\":1,\"color\":0}}}");
	return (g);
}

/* POSTs graph as prompt id and asserts it ends with status_str success
 * (read from /history: no socket, so no progress_state to build). */
static void
run_ok(struct simproc *s, const char *graph, const char *id)
{
	struct http_res r;
	cJSON	       *h = NULL, *st;
	char		path[128];
	int		i;

	ASSERT_EQ(ht_prompt(s, graph, NULL, id, &r), 200);
	h = ht_json(&r);
	ht_free(&r);
	ASSERT_TRUE(
	    cJSON_GetObjectItemCaseSensitive(h, "node_errors")->child == NULL);
	cJSON_Delete(h);
	snprintf(path, sizeof path, "/history/%s", id);
	for (i = 0; i < 600; i++) {
		ASSERT_EQ(ht_get(s, path, &r), 200);
		h = ht_json(&r);
		ht_free(&r);
		if (h->child != NULL)
			break;
		cJSON_Delete(h);
		h = NULL;
		usleep(100000);
	}
	ASSERT_TRUE(h != NULL);
	st = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(h->child, "status"), "status_str");
	ASSERT_STREQ(cJSON_IsString(st) ? st->valuestring : "?", "success");
	cJSON_Delete(h);
}

/* n SaveImage nodes without inputs: n outputs, each with its own error. */
static char *
failing_outputs(int n)
{
	size_t len = 1, cap = (size_t)n * 64 + 16;
	char  *g = xmalloc(cap);
	int    i;

	g[0] = '{';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(g + len, cap - len,
		    "%s\"%d\":{\"class_type\":\"SaveImage\",\"inputs\":{}}",
		    i ? "," : "", i);
	snprintf(g + len, cap - len, "}");
	return (g);
}

/* The dependent_outputs of node id in a reply's node_errors. */
static int
dependents(cJSON *reply, const char *id)
{
	return (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(reply, "node_errors"), id),
	    "dependent_outputs")));
}

/*
 * Huge graphs (the sim is offered to bot developers: it must not fall
 * over). Over max-nodes: ComfyUI's error shape with the sim's own type.
 * Under it: validated without recursion, so a 20,000-node chain cannot
 * overflow the stack. node_errors grows with outputs x failed nodes and
 * is bounded too.
 */
static void
test_huge_graphs(void)
{
	struct simproc s;
	cJSON	      *j, *e;
	char	      *g;

	sim_start(&s, "--step-ms", "0", "--model-load-ms", "0", NULL);
	g = chain(20000);
	expect_body(&s, g,
	    "{\"error\":{\"type\":\"prompt_too_large\",\"message\":\"Prompt "
	    "has too many nodes\",\"details\":\"20000 nodes; this comfyq-sim "
	    "takes at most 10000 (max-nodes)\",\"extra_info\":{\"nodes\":20000,"
	    "\"max_nodes\":10000}},\"node_errors\":{}}");
	free(g);
	g = chain(2000);
	run_ok(&s, g, "chain2000");
	free(g);
	/* 100 failed outputs: every failed node lists the outputs validated
	 * from it on, as ComfyUI's validate_prompt() does. */
	g = failing_outputs(100);
	j = submit(&s, g, 400);
	free(g);
	ASSERT_EQ(cJSON_GetArraySize(
		      cJSON_GetObjectItemCaseSensitive(j, "node_errors")),
	    100);
	ASSERT_EQ(dependents(j, "0"), 100);
	ASSERT_EQ(dependents(j, "99"), 1);
	cJSON_Delete(j);
	/* 500 of them would list 125,250: refused, nothing listed. */
	g = failing_outputs(500);
	j = submit(&s, g, 400);
	free(g);
	e = cJSON_GetObjectItemCaseSensitive(j, "error");
	ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(e, "type")->valuestring,
	    "prompt_too_large");
	ASSERT_STREQ(
	    cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring,
	    "Prompt has too many errors to report");
	ASSERT_TRUE(
	    cJSON_GetObjectItemCaseSensitive(j, "node_errors")->child == NULL);
	cJSON_Delete(j);
	sim_stop(&s);

	sim_start(&s, "--max-nodes", "30000", "--step-ms", "0",
	    "--model-load-ms", "0", NULL);
	g = chain(20000);
	run_ok(&s, g, "chain20000");
	free(g);
	sim_stop(&s);
}

const struct unit_test itests[] = {
	{ "prompt_errors", test_prompt_errors },
	{ "partial_and_coercion", test_partial_and_coercion },
	{ "bad_input", test_bad_input },
	{ "origin_and_twins", test_origin_and_twins },
	{ "view_guards", test_view_guards },
	{ "upload", test_upload },
	{ "object_info", test_object_info },
	{ "info_routes", test_info_routes },
	{ "huge_graphs", test_huge_graphs },
	{ NULL, NULL },
};
