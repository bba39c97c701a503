/*
 * Every fixed-size array and buffer of the workflow layer at its limit:
 * N is accepted, N + 1 is refused with a message naming the limit, and
 * nothing is cut short. The first case is the crash this suite exists
 * for: a raw graph with more LoadImage inputs than the job has room for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canny.h"
#include "controlnet.h"
#include "graph.h"
#include "img.h"
#include "job.h"
#include "lora.h"
#include "twf.h"
#include "unit.h"

static const struct wf_opts worker_opts = { .graph_files = "" };

/* An SDXL txt2img graph with n LoadImage nodes L1..Ln, all given in
 * inputs, and ncn ControlNets whose images are inputs c0.. */
static char *
raw_images(int n, int ncn)
{
	static const char *txt2img =
	    "{\"ckpt\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":"
	    "{\"ckpt_name\":\"m.safetensors\"}},"
	    "\"pos\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":"
	    "\"a\",\"clip\":[\"ckpt\",1]}},"
	    "\"lat\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{"
	    "\"width\":512,\"height\":512,\"batch_size\":1}},"
	    "\"ks\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":"
	    "[\"ckpt\",0],\"positive\":[\"pos\",0],\"negative\":[\"pos\",0],"
	    "\"latent_image\":[\"lat\",0]}},"
	    "\"dec\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":"
	    "[\"ks\",0],\"vae\":[\"ckpt\",2]}},"
	    "\"save\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
	    "[\"dec\",0]}}}";
	cJSON *spec = cJSON_CreateObject(), *g = cJSON_Parse(txt2img);
	cJSON *in = cJSON_CreateObject(), *cns = cJSON_CreateArray(), *node;
	char   id[32], *text;
	int    i;

	for (i = 1; i <= n; i++) {
		snprintf(id, sizeof id, "L%d", i);
		node = cJSON_AddObjectToObject(g, id);
		cJSON_AddStringToObject(node, "class_type", "LoadImage");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(node, "inputs"),
		    "image", "placeholder.png");
		cJSON_AddStringToObject(in, id, "aGk=");
	}
	for (i = 0; i < ncn; i++) {
		snprintf(id, sizeof id, "c%d", i);
		node = cJSON_CreateObject();
		cJSON_AddStringToObject(node, "type", "canny");
		cJSON_AddStringToObject(node, "image", id);
		cJSON_AddItemToArray(cns, node);
		cJSON_AddStringToObject(in, id, "aGk=");
	}
	cJSON_AddItemToObject(spec, "graph", g);
	cJSON_AddItemToObject(spec, "inputs", in);
	if (ncn > 0)
		cJSON_AddItemToObject(spec, "controlnets", cns);
	else
		cJSON_Delete(cns);
	text = cJSON_PrintUnformatted(spec);
	cJSON_Delete(spec);
	return (text);
}

#define RAW_IMAGES(n, ncn, want)                                               \
	do {                                                                   \
		char *s_ = raw_images(n, ncn);                                 \
		if ((want) == NULL)                                            \
			ACCEPTED(NULL, &worker_opts, s_);                      \
		else                                                           \
			REFUSED_AS(NULL, &worker_opts, s_, want);              \
		free(s_);                                                      \
	} while (0)

static void
test_job_images(void)
{
	RAW_IMAGES(32, 0, NULL);
	RAW_IMAGES(32, 8, NULL);
	RAW_IMAGES(33, 0, "inputs.L33: over 32 input images");
	RAW_IMAGES(40, 0, "inputs.L33: over 32 input images");
	/* The report: 41 LoadImage inputs overflowed in[] and the worker
	 * died right after the claim. */
	RAW_IMAGES(41, 0,
	    "inputs: over 40 entries (32 images and 8 ControlNet images)");
	RAW_IMAGES(100, 0,
	    "inputs: over 40 entries (32 images and 8 ControlNet images)");
}

static void
test_input_names(void)
{
	char spec[512], id[80], want[160];

	memset(id, 'n', 63);
	id[63] = '\0';
	snprintf(spec, sizeof spec,
	    "{\"graph\":{\"%s\":{\"class_type\":\"LoadImage\",\"inputs\":{"
	    "\"image\":\"x\"}},\"2\":{\"class_type\":\"SaveImage\",\"inputs\":"
	    "{\"images\":[\"%s\",0]}}},\"inputs\":{\"%s\":\"aGk=\"}}",
	    id, id, id);
	ACCEPTED(NULL, &worker_opts, spec);
	snprintf(spec, sizeof spec,
	    "{\"workflow\":\"x\",\"inputs\":{\"%sn\":\"aGk=\"}}", id);
	snprintf(want, sizeof want, "inputs.%sn...: a name over 63 bytes", id);
	REFUSED_AS(NULL, &worker_opts, spec, want);
}

/* A template file: EmptyImage -> SaveImage, w and h, and extra params. */
static char *
template_text(const char *name, const char *params)
{
	static const char *fmt =
	    "{\"name\":\"%s\",\"graph\":{\"1\":{\"class_type\":\"EmptyImage\","
	    "\"inputs\":{\"width\":8,\"height\":8}},\"2\":{\"class_type\":"
	    "\"SaveImage\",\"inputs\":{\"images\":[\"1\",0]}}},\"params\":["
	    "{\"name\":\"w\",\"type\":\"int\",\"default\":8},{\"name\":\"h\","
	    "\"type\":\"int\",\"default\":8}%s],\"output\":{\"kind\":"
	    "\"image\",\"width\":\"w\",\"height\":\"h\"},\"vram\":[{"
	    "\"max_pixels\":100,\"mb\":1}]}";
	size_t len = strlen(fmt) + strlen(name) + strlen(params) + 1;
	char  *t = malloc(len);

	snprintf(t, len, fmt, name, params);
	return (t);
}

/* n more params of the given JSON, each named p<i> (%d in the text). */
static char *
params_n(int n, const char *one)
{
	char *s = calloc((size_t)n, strlen(one) + 16), *o = s;
	int   i;

	*s = '\0';
	for (i = 0; i < n; i++) {
		*o++ = ',';
		o += sprintf(o, one, i);
	}
	return (s);
}

/* One more param with n targets. */
static char *
param_targets(int n)
{
	static const char *one = "{\"node\":\"1\",\"input\":\"width\"}";
	char		  *s = calloc((size_t)n + 1, strlen(one) + 64);
	int		   i;

	strcpy(s, ",{\"name\":\"x\",\"type\":\"int\",\"targets\":[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, one);
	}
	strcat(s, "]}");
	return (s);
}

/* Loads a folder with one template; returns the error ("" if it loaded). */
static const char *
load_one(const char *name, const char *params)
{
	static char	    err[1024];
	const char	   *dir = twf_dir();
	char		   *t = template_text(name, params);
	struct wf_registry *r;
	char		    d[64], prefix[256];

	snprintf(d, sizeof d, "%s", dir);
	twf_write(d, name, t);
	free(t);
	err[0] = '\0';
	r = wf_load(d, err, sizeof err);
	wf_registry_free(r);
	twf_rmdir(d);
	/* Drop "DIR/NAME.json: " so callers compare the reason. */
	snprintf(prefix, sizeof prefix, "%s/%s.json: ", d, name);
	if (r == NULL && strncmp(err, prefix, strlen(prefix)) == 0)
		return (err + strlen(prefix));
	return (r != NULL ? "" : err);
}

/* Loads template t with these extra params (freed); "" or the reason. */
#define LOADS(params, want)                                                    \
	do {                                                                   \
		char *p_ = (params);                                           \
		ASSERT_STREQ(load_one("t", p_), want);                         \
		free(p_);                                                      \
	} while (0)

static void
test_template_limits(void)
{
	static const char *num = "{\"name\":\"p%d\",\"type\":\"int\"}";
	static const char *img = "{\"name\":\"i%d\",\"type\":\"image\"}";

	LOADS(params_n(WF_PARAMS_MAX - 2, num), "");
	LOADS(params_n(WF_PARAMS_MAX - 1, num),
	    "params: must be a list of up to 64");
	LOADS(params_n(WF_IMAGES_MAX, img), "");
	LOADS(params_n(WF_IMAGES_MAX + 1, img),
	    "params[34]: over 32 image params");
	LOADS(param_targets(WF_TARGETS_MAX), "");
	LOADS(param_targets(WF_TARGETS_MAX + 1),
	    "params[2]: targets: must be an array of up to 32 objects");
}

/* A job that uses all 32 image params of a template. */
static void
test_template_images_job(void)
{
	const char	   *dir = twf_dir();
	char		   *p, *t, d[64], spec[4096], err[1024];
	struct wf_registry *r;
	size_t		    o;
	int		    i;

	snprintf(d, sizeof d, "%s", dir);
	p = params_n(32, "{\"name\":\"i%d\",\"type\":\"image\"}");
	t = template_text("t", p);
	twf_write(d, "t", t);
	free(t);
	free(p);
	r = wf_load(d, err, sizeof err);
	twf_rmdir(d);
	if (r == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	o = (size_t)snprintf(
	    spec, sizeof spec, "{\"workflow\":\"t\",\"inputs\":{");
	for (i = 0; i < 32; i++)
		o += (size_t)snprintf(spec + o, sizeof spec - o,
		    "%s\"i%d\":\"aGk=\"", i ? "," : "", i);
	snprintf(spec + o, sizeof spec - o, "}}");
	ACCEPTED(r, &worker_opts, spec);
	wf_registry_free(r);
}

static void
test_template_count(void)
{
	const char	   *dir = twf_dir();
	char		    d[64], name[80], err[1024], *t;
	struct wf_registry *r;
	int		    i;

	snprintf(d, sizeof d, "%s", dir);
	for (i = 0; i < WF_TEMPLATES_MAX; i++) {
		snprintf(name, sizeof name, "t%03d", i);
		t = template_text(name, "");
		twf_write(d, name, t);
		free(t);
	}
	r = wf_load(d, err, sizeof err);
	ASSERT_TRUE(r != NULL);
	ASSERT_EQ(wf_count(r), WF_TEMPLATES_MAX);
	wf_registry_free(r);
	t = template_text("t256", "");
	twf_write(d, "t256", t);
	free(t);
	r = wf_load(d, err, sizeof err);
	ASSERT_TRUE(r == NULL);
	ASSERT_TRUE(strstr(err,
			": over 256 templates, or a name over 63 "
			"bytes") != NULL);
	twf_rmdir(d);
	/* A name of 63 bytes loads, 64 do not. */
	memset(name, 'a', 63);
	name[63] = '\0';
	ASSERT_STREQ(load_one(name, ""), "");
	name[63] = 'a';
	name[64] = '\0';
	ASSERT_TRUE(
	    strstr(load_one(name, ""), "or a name over 63 bytes") != NULL);
}

static void
test_loras(void)
{
	struct wf_registry *r;
	char		    spec[4096], err[1024];
	size_t		    o;
	int		    i;

	r = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err);
	ASSERT_TRUE(r != NULL);
	o = (size_t)snprintf(
	    spec, sizeof spec, "{\"workflow\":\"sdxl_txt2img\",\"loras\":[");
	for (i = 0; i < LORA_MAX; i++)
		o += (size_t)snprintf(spec + o, sizeof spec - o,
		    "%s\"l%d:0.5\"", i ? "," : "", i);
	snprintf(spec + o, sizeof spec - o, "],\"params\":{\"prompt\":\"a\"}}");
	ACCEPTED(r, &worker_opts, spec);
	snprintf(spec + o, sizeof spec - o,
	    "],\"params\":{\"prompt\":\"a <lora:t:1>\"}}");
	REFUSED_AS(r, &worker_opts, spec, "prompt: <lora:t:1>: over 16 LoRAs");
	wf_registry_free(r);
}

static void
test_lora_names(void)
{
	struct lora_list ll;
	char		 name[400], entry[420], err[512];
	cJSON		*a;

	memset(name, 'a', 200);
	name[200] = '\0';
	memset(&ll, 0, sizeof ll);
	a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateString(name));
	ASSERT_EQ(lora_parse_list(a, &ll, err, sizeof err), 0);
	ASSERT_EQ(strlen(ll.l[0].name), 200 + strlen(".safetensors"));
	cJSON_Delete(a);
	strcat(name, "a");
	memset(&ll, 0, sizeof ll);
	a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateString(name));
	ASSERT_EQ(lora_parse_list(a, &ll, err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "of 1..200 bytes") != NULL);
	cJSON_Delete(a);
	/* A string entry: 319 bytes parse (weights padded), 320 do not. */
	memset(entry, '0', 319);
	memcpy(entry, "x:1.", 4);
	entry[319] = '\0';
	memset(&ll, 0, sizeof ll);
	a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateString(entry));
	ASSERT_EQ(lora_parse_list(a, &ll, err, sizeof err), 0);
	cJSON_Delete(a);
	strcat(entry, "0");
	memset(&ll, 0, sizeof ll);
	a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateString(entry));
	ASSERT_EQ(lora_parse_list(a, &ll, err, sizeof err), -1);
	ASSERT_STREQ(err, "loras[0]: over 319 bytes");
	cJSON_Delete(a);
	/* An object's name is not cut to fit either. */
	memset(entry, 'a', 400);
	entry[400] = '\0';
	memset(&ll, 0, sizeof ll);
	a = cJSON_Parse("[{\"name\":\"\"}]");
	cJSON_SetValuestring(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(a, 0), "name"),
	    entry);
	ASSERT_EQ(lora_parse_list(a, &ll, err, sizeof err), -1);
	ASSERT_STREQ(err, "loras[0].name: over 319 bytes");
	cJSON_Delete(a);
}

static void
test_controlnets(void)
{
	struct cn_map  m;
	struct cn_list l;
	char	       err[512], s[1024];
	cJSON	      *a, *in;
	size_t	       o;
	int	       i;

	ASSERT_EQ(cn_map_parse(CN_MAP_DEFAULT, &m, err, sizeof err), 0);
	in = cJSON_Parse("{\"canny\":\"aGk=\"}");
	a = cJSON_CreateArray();
	for (i = 0; i < CN_MAX; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString("canny:0.5"));
	ASSERT_EQ(cn_parse_list(a, in, &m, &l, err, sizeof err), 0);
	ASSERT_EQ(l.n, CN_MAX);
	cJSON_AddItemToArray(a, cJSON_CreateString("canny:0.5"));
	ASSERT_EQ(cn_parse_list(a, in, &m, &l, err, sizeof err), -1);
	ASSERT_STREQ(err, "controlnets: over 8 entries");
	cJSON_Delete(a);
	/* The string form: 127 bytes parse, 128 do not. */
	memset(s, '0', 127);
	memcpy(s, "canny:0.", 8);
	s[127] = '\0';
	a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateString(s));
	ASSERT_EQ(cn_parse_list(a, in, &m, &l, err, sizeof err), 0);
	cJSON_Delete(a);
	strcat(s, "0");
	a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateString(s));
	ASSERT_EQ(cn_parse_list(a, in, &m, &l, err, sizeof err), -1);
	ASSERT_STREQ(err, "controlnets[0]: over 127 bytes");
	cJSON_Delete(a);
	/* A type name of 31 bytes fits, 32 do not. */
	a = cJSON_Parse("[\"ttttttttttttttttttttttttttttttt:1\"]");
	ASSERT_EQ(cn_parse_list(a, in, &m, &l, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "controlnets[0].type: 'ttttttttttttttttttttttttttttttt' "
	    "unknown (known: canny, depth)");
	cJSON_Delete(a);
	a = cJSON_Parse("[\"tttttttttttttttttttttttttttttttt:1\"]");
	ASSERT_EQ(cn_parse_list(a, in, &m, &l, err, sizeof err), -1);
	ASSERT_STREQ(err, "controlnets[0]: type over 31 bytes");
	cJSON_Delete(a);
	cJSON_Delete(in);
	/* The type map: 16 types, not 17. */
	for (i = 0, o = 0; i < CN_TYPES_MAX; i++)
		o += (size_t)snprintf(s + o, sizeof s - o,
		    "%st%d=f%d.safetensors", i ? "," : "", i, i);
	ASSERT_EQ(cn_map_parse(s, &m, err, sizeof err), 0);
	ASSERT_EQ(m.n, CN_TYPES_MAX);
	snprintf(s + o, sizeof s - o, ",t16=f.safetensors");
	ASSERT_EQ(cn_map_parse(s, &m, err, sizeof err), -1);
	ASSERT_STREQ(err, "controlnet-models: over 16 types");
}

/*
 * A LoRA or ControlNet entry that is neither a string nor an object (an
 * array, a number, null) is refused with the entry named, also when the
 * spec was filled in code and never went through job_spec_parse (which
 * refuses them first). An array entry used to be walked as an object,
 * its unnamed items compared by name (fuzz_render;
 * tests/fuzz/regress/render/).
 */
static void
test_entry_types(void)
{
	static const char *const bad[] = { "[[\"x\"]]", "[7]", "[null]",
		"[true]", "[[{\"name\":\"x\"}]]" };
	struct wf_registry	*r;
	struct lora_list	 ll;
	struct cn_map		 m;
	struct cn_list		 l;
	struct job_spec		 js;
	struct wf_job		*j;
	const char		*code;
	char			 err[1024];
	cJSON			*a, *root;
	size_t			 i;

	ASSERT_EQ(cn_map_parse(CN_MAP_DEFAULT, &m, err, sizeof err), 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		a = cJSON_Parse(bad[i]);
		memset(&ll, 0, sizeof ll);
		ASSERT_EQ(lora_parse_list(a, &ll, err, sizeof err), -1);
		ASSERT_STREQ(err, "loras[0]: must be a string or an object");
		ASSERT_EQ(cn_parse_list(a, NULL, &m, &l, err, sizeof err), -1);
		ASSERT_STREQ(
		    err, "controlnets[0]: must be a string or an object");
		cJSON_Delete(a);
	}
	r = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err);
	ASSERT_TRUE(r != NULL);
	root = cJSON_Parse("{\"params\":{\"prompt\":\"a\"},"
			   "\"loras\":[\"ok:0.5\",[{\"name\":\"x\"}]],"
			   "\"controlnets\":[[\"canny\"]]}");
	memset(&js, 0, sizeof js);
	js.workflow = "sdxl_txt2img";
	js.params = cJSON_GetObjectItemCaseSensitive(root, "params");
	js.loras = cJSON_GetObjectItemCaseSensitive(root, "loras");
	j = wf_job_new(r, &js, &worker_opts, &code, err, sizeof err);
	ASSERT_TRUE(j == NULL);
	ASSERT_STREQ(err, "loras[1]: must be a string or an object");
	js.loras = NULL;
	js.controlnets = cJSON_GetObjectItemCaseSensitive(root, "controlnets");
	j = wf_job_new(r, &js, &worker_opts, &code, err, sizeof err);
	ASSERT_TRUE(j == NULL);
	ASSERT_STREQ(err, "controlnets[0]: must be a string or an object");
	cJSON_Delete(root);
	wf_registry_free(r);
}

static void
test_graph_limits(void)
{
	cJSON *g = cJSON_CreateObject(), *node;
	char   id[80], err[256];
	int    i;

	for (i = 0; i < GRAPH_NODES_MAX; i++) {
		snprintf(id, sizeof id, "%d", i);
		node = cJSON_AddObjectToObject(g, id);
		cJSON_AddStringToObject(node, "class_type", "SaveImage");
	}
	ASSERT_EQ(graph_validate(g, NULL, err, sizeof err), 0);
	node = cJSON_AddObjectToObject(g, "x");
	cJSON_AddStringToObject(node, "class_type", "SaveImage");
	ASSERT_EQ(graph_validate(g, NULL, err, sizeof err), -1);
	ASSERT_STREQ(err, "graph: over 1000 nodes");
	cJSON_Delete(g);
	memset(id, 'n', 63);
	id[63] = '\0';
	g = cJSON_CreateObject();
	cJSON_AddStringToObject(
	    cJSON_AddObjectToObject(g, id), "class_type", "SaveImage");
	ASSERT_EQ(graph_validate(g, NULL, err, sizeof err), 0);
	cJSON_Delete(g);
	strcat(id, "n");
	g = cJSON_CreateObject();
	cJSON_AddStringToObject(
	    cJSON_AddObjectToObject(g, id), "class_type", "SaveImage");
	ASSERT_EQ(graph_validate(g, NULL, err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "must be 1..63 bytes") != NULL);
	cJSON_Delete(g);
}

/* ComfyUI's name for an upload: 254 bytes fit, a full buffer may be cut. */
static void
test_upload_name(void)
{
	static const char  *spec = "{\"workflow\":\"sdxl_img2img\",\"params\":{"
				   "\"prompt\":\"a\"},\"inputs\":{\"image\":"
				   "\"aGk=\"}}";
	struct wf_registry *r;
	struct job_spec	    js;
	struct wf_job	   *j;
	const char	   *code;
	char		    err[1024];
	cJSON		   *g;

	r = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err);
	ASSERT_TRUE(r != NULL);
	ASSERT_EQ(
	    job_spec_parse(&js, spec, strlen(spec), NULL, err, sizeof err), 0);
	j = wf_job_new(r, &js, &worker_opts, &code, err, sizeof err);
	ASSERT_TRUE(j != NULL);
	memset(wf_job_input(j, 0)->upload, 'u', WF_UPLOAD_MAX - 2);
	wf_job_input(j, 0)->upload[WF_UPLOAD_MAX - 2] = '\0';
	g = wf_job_render(j, "a", NULL, 0, err, sizeof err);
	ASSERT_TRUE(g != NULL);
	cJSON_Delete(g);
	memset(wf_job_input(j, 0)->upload, 'u', WF_UPLOAD_MAX - 1);
	wf_job_input(j, 0)->upload[WF_UPLOAD_MAX - 1] = '\0';
	ASSERT_TRUE(wf_job_render(j, "a", NULL, 0, err, sizeof err) == NULL);
	ASSERT_STREQ(err,
	    "inputs.image: ComfyUI's name for the upload is over 254 bytes");
	snprintf(wf_job_input(j, 0)->upload, WF_UPLOAD_MAX, "../x.png");
	ASSERT_TRUE(wf_job_render(j, "a", NULL, 0, err, sizeof err) == NULL);
	ASSERT_STREQ(err,
	    "inputs.image: ComfyUI's name for the upload, '../x.png', holds "
	    "'..'");
	wf_job_free(j);
	job_spec_free(&js);
	wf_registry_free(r);
}

/* The image buffers: sizes are refused before anything is allocated. */
static void
test_image_sizes(void)
{
	struct img    in = { 8, 8, 1, NULL }, out;
	unsigned char pix[64] = { 0 }, edges[64];
	char	      err[256];

	in.pix = pix;
	ASSERT_EQ(img_fit(&in, 16384, 1, &out, err, sizeof err), 0);
	free(out.pix);
	ASSERT_EQ(img_fit(&in, 16385, 1, &out, err, sizeof err), -1);
	ASSERT_STREQ(err, "fit: 16385x1 is no size");
	ASSERT_EQ(canny(pix, 8, 8, 1, 100, 200, edges, err, sizeof err), 0);
	ASSERT_EQ(
	    canny(NULL, 4097, 4096, 1, 100, 200, NULL, err, sizeof err), -1);
	ASSERT_STREQ(err, "canny: 4097x4096 is no size it takes");
}

const struct unit_test test_bounds[] = {
	{ "job_images", test_job_images },
	{ "input_names", test_input_names },
	{ "template_limits", test_template_limits },
	{ "template_images_job", test_template_images_job },
	{ "template_count", test_template_count },
	{ "loras", test_loras },
	{ "lora_names", test_lora_names },
	{ "controlnets", test_controlnets },
	{ "entry_types", test_entry_types },
	{ "graph_limits", test_graph_limits },
	{ "upload_name", test_upload_name },
	{ "image_sizes", test_image_sizes },
	{ NULL, NULL },
};
