/*
 * Templates and rendering: the shipped templates load, every golden case
 * in tests/data/golden renders byte for byte to its expected graph (and
 * that graph passes link and names checks against a /object_info
 * fixture), and bad params, LoRAs, ControlNets and inputs are refused with
 * exact messages, one at a time or all together (wf_job_new_all: each
 * independent error listed, the first as wf_job_new() writes it, at most
 * WF_ERRORS_MAX), and the checkpoint key of a graph and of a job
 * (wfmodel.c). COMFYQ_GOLDEN_UPDATE=1 rewrites the expected graphs
 * (review the diff before committing it).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "objinfo.h"
#include "template.h"
#include "twf.h"
#include "unit.h"
#include "util.h"
#include "wfjob.h"

static struct wf_registry *
load_registry(void)
{
	struct wf_registry *r;
	char		    err[1024];

	r = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err);
	if (r == NULL)
		unit_fail(__FILE__, __LINE__, "wf_load: %s", err);
	return (r);
}

static void
test_templates_load(void)
{
	static const char *const names[] = { "sdxl_controlnet",
		"sdxl_face_ipadapter", "sdxl_img2img", "sdxl_txt2img",
		"smoke_invert", "svd_img2vid" };
	struct wf_registry	*r = load_registry();
	const struct wf_param	*p;
	char			 rule[256];
	size_t			 i;

	ASSERT_EQ(wf_count(r), 6);
	for (i = 0; i < 6; i++)
		ASSERT_STREQ(wf_name(wf_at(r, i)), names[i]);
	p = wf_param_find(wf_find(r, "sdxl_txt2img"), "width");
	wf_param_rule(p, rule, sizeof rule);
	ASSERT_STREQ(rule, "int 512..2048, multiple of 64");
	p = wf_param_find(wf_find(r, "sdxl_txt2img"), "scheduler");
	wf_param_rule(p, rule, sizeof rule);
	ASSERT_STREQ(
	    rule, "enum: normal, karras, exponential, sgm_uniform, simple");
	ASSERT_STREQ(wf_error_code(wf_find(r, "sdxl_face_ipadapter"),
			 "InsightFace: No face detected."),
	    "no_face");
	ASSERT_TRUE(wf_error_code(wf_find(r, "sdxl_txt2img"),
			"InsightFace: No face detected.") == NULL);
	ASSERT_EQ(wf_vram_mb(wf_find(r, "sdxl_txt2img"), 2048LL * 2048), 18000);
	ASSERT_EQ(wf_vram_mb(wf_find(r, "sdxl_txt2img"), 4096LL * 4096), 18000);
	ASSERT_TRUE(wf_find(r, "nope") == NULL);
	wf_registry_free(r);
}

/* Renders one golden case and compares it with its expected graph. */
static void
golden_case(const struct wf_registry *r, const cJSON *oi, const char *name)
{
	struct job_spec js;
	struct wf_job  *j;
	cJSON	       *c, *spec, *up, *g, *ex, *in;
	const char     *code;
	char	       *text, *want, err[1024], path[512], line[256];
	size_t		i;

	snprintf(path, sizeof path, "golden/%s.case.json", name);
	c = unit_json(path);
	spec = cJSON_GetObjectItemCaseSensitive(c, "spec");
	text = cJSON_PrintUnformatted(spec);
	if (job_spec_parse(&js, text, strlen(text), NULL, err, sizeof err) ==
	    -1)
		unit_fail(__FILE__, __LINE__, "%s: %s", name, err);
	cJSON_free(text);
	if ((j = wf_job_new(r, &js, NULL, &code, err, sizeof err)) == NULL)
		unit_fail(__FILE__, __LINE__, "%s: %s", name, err);
	up = cJSON_GetObjectItemCaseSensitive(c, "uploads");
	in = cJSON_GetObjectItemCaseSensitive(c, "inputs");
	ASSERT_EQ(wf_job_ninputs(j), cJSON_GetArraySize(in));
	for (i = 0; i < wf_job_ninputs(j); i++) {
		struct wf_input *wi = wf_job_input(j, i);
		int		 n;

		n = snprintf(line, sizeof line, "%s %s %dx%d", wi->name,
		    wi->field, wi->width, wi->height);
		if (wi->canny)
			snprintf(line + n, sizeof line - (size_t)n,
			    " canny %g %g", wi->low, wi->high);
		ASSERT_STREQ(line, cJSON_GetArrayItem(in, (int)i)->valuestring);
		snprintf(wi->upload, sizeof wi->upload, "%s",
		    cJSON_GetObjectItemCaseSensitive(up, wi->name)
			->valuestring);
	}
	g = wf_job_render(j,
	    cJSON_GetObjectItemCaseSensitive(c, "job_id")->valuestring,
	    cJSON_GetObjectItemCaseSensitive(c, "prefix")->valuestring, 0, err,
	    sizeof err);
	if (g == NULL)
		unit_fail(__FILE__, __LINE__, "%s: %s", name, err);
	if (graph_validate(g, oi, err, sizeof err) == -1 ||
	    objinfo_check(g, oi, err, sizeof err) == -1)
		unit_fail(__FILE__, __LINE__, "%s: %s", name, err);
	text = graph_print(g);
	snprintf(path, sizeof path, "%s", unit_data("golden/"));
	snprintf(path + strlen(path), sizeof path - strlen(path),
	    "%s.graph.json", name);
	if (getenv("COMFYQ_GOLDEN_UPDATE") != NULL) {
		FILE *f = fopen(path, "w");

		ASSERT_TRUE(f != NULL);
		fputs(text, f);
		fclose(f);
	}
	want = file_slurp(path, 1 << 20, NULL, err, sizeof err);
	if (want == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	if (strcmp(text, want) != 0)
		unit_fail(__FILE__, __LINE__,
		    "%s: rendered graph differs from %s:\n%s", name, path,
		    text);
	ex = cJSON_GetObjectItemCaseSensitive(c, "expect");
	ASSERT_EQ(wf_job_expect(j)->kind,
	    strcmp(cJSON_GetObjectItemCaseSensitive(ex, "kind")->valuestring,
		"video") == 0
		? WF_KIND_VIDEO
		: WF_KIND_IMAGE);
	ASSERT_EQ(wf_job_expect(j)->width,
	    cJSON_GetObjectItemCaseSensitive(ex, "width")->valuedouble);
	ASSERT_EQ(wf_job_expect(j)->height,
	    cJSON_GetObjectItemCaseSensitive(ex, "height")->valuedouble);
	ASSERT_EQ(wf_job_expect(j)->count,
	    cJSON_GetObjectItemCaseSensitive(ex, "count")->valuedouble);
	ASSERT_EQ(wf_job_expect(j)->vram_mb,
	    cJSON_GetObjectItemCaseSensitive(ex, "vram_mb")->valuedouble);
	if (cJSON_GetObjectItemCaseSensitive(ex, "frames") != NULL) {
		ASSERT_EQ(wf_job_expect(j)->frames,
		    cJSON_GetObjectItemCaseSensitive(ex, "frames")
			->valuedouble);
		ASSERT_DBL_EQ(wf_job_expect(j)->duration_s,
		    cJSON_GetObjectItemCaseSensitive(ex, "duration_s")
			->valuedouble);
	}
	free(want);
	free(text);
	cJSON_Delete(g);
	wf_job_free(j);
	job_spec_free(&js);
	cJSON_Delete(c);
}

static int
name_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

static void
test_golden(void)
{
	struct wf_registry *r = load_registry();
	cJSON		   *oi = unit_json("object_info.json");
	struct dirent	   *de;
	DIR		   *d;
	char		   *names[64];
	size_t		    n = 0, i, len;

	d = opendir(unit_data("golden"));
	ASSERT_TRUE(d != NULL);
	while ((de = readdir(d)) != NULL && n < 64) {
		len = strlen(de->d_name);
		if (len > 10 &&
		    strcmp(de->d_name + len - 10, ".case.json") == 0)
			names[n++] = strndup(de->d_name, len - 10);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], name_cmp);
	ASSERT_EQ(n, 13);
	for (i = 0; i < n; i++) {
		golden_case(r, oi, names[i]);
		free(names[i]);
	}
	cJSON_Delete(oi);
	wf_registry_free(r);
}

/* One spec that must be refused with exactly this message and code. */
#define refused(r, spec, code, want, line)                                     \
	twf_expect(r, spec, NULL, code, want, __FILE__, line)
#define REFUSED(spec, want) refused(r, spec, "invalid_input", want, __LINE__)

static void
test_bad_params(void)
{
	struct wf_registry *r = load_registry();

	refused(r, "{\"workflow\":\"sdxl_txt3img\"}", "unknown_workflow",
	    "workflow: no template named sdxl_txt3img", __LINE__);
	REFUSED("{\"workflow\":\"sdxl_txt2img\"}", "prompt: required");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"\"}}",
	    "prompt: must not be empty");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"width\":100000}}",
	    "width: 100000 not in 512..2048");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"width\":1000}}",
	    "width: 1000 not a multiple of 64");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"steps\":20.5}}",
	    "steps: 20.5 not an integer");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"cfg\":0.5}}",
	    "cfg: 0.5 not in 1..15");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"seed\":-1}}",
	    "seed: -1 not in 0..9007199254740991");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"sampler\":\"fast\"}}",
	    "sampler: 'fast' not one of euler, euler_ancestral, dpmpp_2m, "
	    "dpmpp_2m_sde, dpmpp_sde, ddim, uni_pc, lcm");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"aspect\":\"4:3\"}}",
	    "aspect: '4:3' not one of 1:1, 16:9, 9:16");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":7}}",
	    "prompt: must be a string");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\","
		"\"style\":\"x\"}}",
	    "style: unknown parameter (see comfyq workflows show "
	    "sdxl_txt2img)");
	REFUSED("{\"workflow\":\"sdxl_img2img\",\"params\":{\"prompt\":\"a\"}}",
	    "image: required (give inputs.image)");
	REFUSED("{\"workflow\":\"sdxl_img2img\",\"params\":{\"prompt\":\"a\","
		"\"image\":\"x\"},\"inputs\":{\"image\":\"x\"}}",
	    "image: an image goes in inputs.image, not in params");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"inputs\":{\"face\":\"x\"}}",
	    "inputs.face: not used (no image param or ControlNet of that "
	    "name)");
	REFUSED(
	    "{\"workflow\":\"sdxl_controlnet\",\"params\":{\"prompt\":\"a\","
	    "\"canny_low\":300},\"inputs\":{\"control_image\":\"x\"}}",
	    "canny_low: 300 above canny_high 200");
	REFUSED(
	    "{\"workflow\":\"sdxl_controlnet\",\"params\":{\"prompt\":\"a\","
	    "\"preprocess\":true,\"control_type\":\"depth\"},"
	    "\"inputs\":{\"control_image\":\"x\"}}",
	    "preprocess: preprocessing is offered for canny only, not depth");
	REFUSED("{\"workflow\":\"svd_img2vid\",\"params\":{\"duration\":6,"
		"\"fps\":24},\"inputs\":{\"image\":\"x\"}}",
	    "duration: 6 s at 24 fps is 144 frames, not in 1..48");
	REFUSED("{\"workflow\":\"svd_img2vid\",\"loras\":[\"a:1\"],"
		"\"inputs\":{\"image\":\"x\"}}",
	    "loras: svd_img2vid takes no LoRAs");
	REFUSED("{\"workflow\":\"smoke_invert\",\"controlnets\":[\"canny:1\"]}",
	    "controlnets: smoke_invert takes no ControlNets");
	wf_registry_free(r);
}

static void
test_bad_surgery(void)
{
	struct wf_registry *r = load_registry();

	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"loras\":[\"x:11\"]}",
	    "loras[0]: weight 11 not in -10..10");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a "
		"<lora:x:-12>\"}}",
	    "prompt: <lora:x:-12>: weight -12 not in -10..10");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a "
		"<lora:x:0.5>\"},\"loras\":[\"x\"]}",
	    "prompt: <lora:x:0.5>: x.safetensors is already given by "
	    "loras[0]");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"loras\":[\"x:abc\"]}",
	    "loras[0]: 'x:abc' is not NAME[:WEIGHT[:CLIP_WEIGHT]]");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"loras\":[\"../etc/passwd:1\"]}",
	    "loras[0]: name '../etc/passwd' must be a relative path of 1..200 "
	    "bytes without control characters, '\\', ':', '<', '>', '..', "
	    "empty parts or a trailing '.'");
	/* "x." would become "x..safetensors". */
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"loras\":[\"style/x.:1\"]}",
	    "loras[0]: name 'style/x.' must be a relative path of 1..200 "
	    "bytes without control characters, '\\', ':', '<', '>', '..', "
	    "empty parts or a trailing '.'");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"loras\":[{\"name\":\"x\",\"weight\":1}]}",
	    "loras[0].weight: unknown field (name, strength_model, "
	    "strength_clip, enabled)");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"controlnets\":[\"pose:1\"],\"inputs\":{\"pose\":\"x\"}}",
	    "controlnets[0].type: 'pose' unknown (known: canny, depth)");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"controlnets\":[\"canny:0.8\"]}",
	    "controlnets[0]: no condition image (give \"image\" or "
	    "inputs.canny)");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"controlnets\":[\"canny:11\"],\"inputs\":{\"canny\":\"x\"}}",
	    "controlnets[0]: '11' not a number in 0..10 in 'canny:11'");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"controlnets\":[{\"type\":\"canny\",\"image\":\"x\","
		"\"start\":0.8,\"end\":0.2}]}",
	    "controlnets[0]: start 0.8 after end 0.2");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"controlnets\":[{\"type\":\"depth\",\"image\":\"x\","
		"\"preprocess\":true}]}",
	    "controlnets[0]: preprocess is offered for canny only, not depth");
	REFUSED("{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a\"},"
		"\"controlnets\":[{\"type\":\"canny\",\"image\":\"x\","
		"\"strength\":1,\"conditioning_scale\":1}]}",
	    "controlnets[0]: give strength or conditioning_scale, not both");
	REFUSED(
	    "{\"graph\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":"
	    "{}},\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
	    "[\"1\",0]}}},\"loras\":[\"x\"]}",
	    "loras: the graph has no checkpoint loader");
	REFUSED(
	    "{\"graph\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":"
	    "{}},\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
	    "[\"1\",0]}}},\"params\":{\"seed\":1}}",
	    "params: a raw graph takes no params (set the values in the "
	    "graph)");
	REFUSED(
	    "{\"graph\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":"
	    "{}},\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
	    "[\"3\",0]}}}}",
	    "node 2 input images: link to missing node 3");
	REFUSED(
	    "{\"graph\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":"
	    "{}},\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
	    "[\"1\",0]}}},\"inputs\":{\"1\":\"x\"}}",
	    "inputs.1: not used (no LoadImage node or ControlNet of that "
	    "name)");
	wf_registry_free(r);
}

static void
test_seed_and_placeholders(void)
{
	struct wf_registry *r = load_registry();
	struct job_spec	    js;
	struct wf_job	   *j;
	const char	   *code,
	    *spec =
		"{\"workflow\":\"sdxl_img2img\",\"params\":{\"prompt\":\"a\"},"
		"\"inputs\":{\"image\":\"x\"}}";
	char   err[512];
	cJSON *g, *seed;

	ASSERT_EQ(wf_seed(""), 0xcbf29ce484222325ULL & ((1ULL << 53) - 1));
	ASSERT_EQ(
	    job_spec_parse(&js, spec, strlen(spec), NULL, err, sizeof err), 0);
	j = wf_job_new(r, &js, NULL, &code, err, sizeof err);
	ASSERT_TRUE(j != NULL);
	/* Without an upload name the worker's render is refused... */
	ASSERT_TRUE(wf_job_render(j, "a", NULL, 0, err, sizeof err) == NULL);
	ASSERT_STREQ(err, "inputs.image: not uploaded");
	/* ...and `comfyq render` shows a placeholder. */
	g = wf_job_render(
	    j, "a", NULL, WF_RENDER_PLACEHOLDERS, err, sizeof err);
	ASSERT_TRUE(g != NULL);
	ASSERT_STREQ(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(g, "10"), "inputs"),
		"image")
		->valuestring,
	    "<upload:image>");
	seed = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(g, "3"), "inputs"),
	    "seed");
	ASSERT_DBL_EQ(seed->valuedouble, (double)wf_seed("a"));
	ASSERT_STREQ(wf_job_input(j, 0)->upload, "");
	cJSON_Delete(g);
	wf_job_free(j);
	job_spec_free(&js);
	wf_registry_free(r);
}

/*
 * Checks spec with wf_job_new_all() into we; the first error must be
 * wf_job_new()'s, byte for byte.
 */
static void
check_all(const struct wf_registry *r, const char *spec, struct wf_errors *we)
{
	struct job_spec js;
	struct wf_job  *j;
	const char     *code, *code1;
	char		err[2048], err1[2048];

	memset(we, 0, sizeof *we);
	ASSERT_EQ(
	    job_spec_parse(&js, spec, strlen(spec), NULL, err, sizeof err), 0);
	j = wf_job_new_all(r, &js, NULL, we, &code, err, sizeof err);
	ASSERT_TRUE(j == NULL);
	ASSERT_TRUE(
	    wf_job_new(r, &js, NULL, &code1, err1, sizeof err1) == NULL);
	ASSERT_STREQ(err, err1);
	ASSERT_STREQ(code, code1);
	ASSERT_STREQ(we->first, err1);
	job_spec_free(&js);
}

static void
test_errors_all(void)
{
	struct wf_registry *r = load_registry();
	struct wf_errors   *we = calloc(1, sizeof *we);
	char		    spec[4096];
	int		    i, o;

	/* Three params, each wrong on its own. */
	check_all(r,
	    "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"x\","
	    "\"steps\":150,\"width\":7,\"bogus\":1}}",
	    we);
	ASSERT_EQ(we->n, 3);
	ASSERT_EQ(we->more, 0);
	ASSERT_STREQ(we->msg[0],
	    "bogus: unknown parameter (see comfyq workflows show sdxl_txt2img)");
	ASSERT_STREQ(we->msg[1], "steps: 150 not in 1..60");
	ASSERT_STREQ(we->msg[2], "width: 7 not in 512..2048");
	/* LoRA entries and a param together; a missing required one. */
	check_all(r,
	    "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"steps\":150},"
	    "\"loras\":[\"a:99\",\"b:0.5\",{\"name\":\"c\","
	    "\"strength_model\":\"x\"},\"b\"]}",
	    we);
	ASSERT_EQ(we->n, 5);
	ASSERT_STREQ(we->msg[0], "loras[0]: weight 99 not in -10..10");
	ASSERT_STREQ(we->msg[1], "loras[2].strength_model: must be a number");
	ASSERT_STREQ(
	    we->msg[2], "loras[3]: b.safetensors is already given by loras[1]");
	ASSERT_STREQ(we->msg[3], "prompt: required");
	ASSERT_STREQ(we->msg[4], "steps: 150 not in 1..60");
	/* ControlNet entries and unused inputs. */
	check_all(r,
	    "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"x\"},"
	    "\"controlnets\":[{\"type\":\"canny\",\"image\":\"aGk=\"},"
	    "{\"type\":\"pose\",\"image\":\"aGk=\"},"
	    "{\"type\":\"depth\",\"image\":\"aGk=\",\"start\":2}]}",
	    we);
	ASSERT_EQ(we->n, 2);
	ASSERT_STREQ(we->msg[0],
	    "controlnets[1].type: 'pose' unknown (known: canny, depth)");
	ASSERT_STREQ(we->msg[1], "controlnets[2].start: 2 not in 0..1");
	check_all(r,
	    "{\"workflow\":\"smoke_invert\",\"inputs\":{\"face\":\"aGk=\","
	    "\"nope\":\"aGk=\"}}",
	    we);
	ASSERT_EQ(we->n, 2);
	ASSERT_STREQ(we->msg[0],
	    "inputs.face: not used (no image param or ControlNet of that name)");
	ASSERT_STREQ(we->msg[1],
	    "inputs.nope: not used (no image param or ControlNet of that name)");
	/* 40 unknown params: 32 entries, the last counts the 8 left out. */
	o = snprintf(spec, sizeof spec,
	    "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"x\"");
	for (i = 0; i < 40; i++)
		o += snprintf(
		    spec + o, sizeof spec - (size_t)o, ",\"p%02d\":1", i);
	snprintf(spec + o, sizeof spec - (size_t)o, "}}");
	check_all(r, spec, we);
	ASSERT_EQ(we->n, WF_ERRORS_MAX);
	ASSERT_EQ(we->more, 8);
	ASSERT_STREQ(we->msg[0],
	    "p00: unknown parameter (see comfyq workflows show sdxl_txt2img)");
	ASSERT_STREQ(we->msg[31],
	    "p31: unknown parameter (see comfyq workflows show sdxl_txt2img)"
	    " (... and 8 more)");
	free(we);
	wf_registry_free(r);
}

/* The key of one spec's job through wf_job_model. */
static const char *
job_model(const struct wf_registry *r, const char *spec)
{
	static char	out[WF_MODEL_MAX + 1];
	struct job_spec js;
	struct wf_job  *j;
	const char     *code;
	char		err[512];

	ASSERT_EQ(
	    job_spec_parse(&js, spec, strlen(spec), NULL, err, sizeof err), 0);
	j = wf_job_new(r, &js, NULL, &code, err, sizeof err);
	ASSERT_TRUE(j != NULL);
	ASSERT_EQ(wf_job_model(j, out), 0);
	wf_job_free(j);
	job_spec_free(&js);
	return (out);
}

/* The checkpoint key (wfmodel.c), by the rule lua/enqueue.lua applies to
 * raw graphs: every ckpt_name string, distinct, sorted bytewise, joined
 * with ',', cut to WF_MODEL_MAX bytes. */
static void
test_model_key(void)
{
	struct wf_registry *r = load_registry();
	char		    out[WF_MODEL_MAX + 1];
	cJSON		   *g, *n;
	int		    i;

	g = cJSON_Parse(
	    "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":"
	    "{\"ckpt_name\":\"b.st\"}},\"2\":{\"class_type\":\"X\",\"inputs\":"
	    "{\"ckpt_name\":\"a.st\"}},\"3\":{\"class_type\":\"Y\",\"inputs\":"
	    "{\"ckpt_name\":\"b.st\"}},\"4\":{\"class_type\":\"Z\",\"inputs\":"
	    "{\"ckpt_name\":\"B.st\"}},\"5\":{\"class_type\":\"W\",\"inputs\":"
	    "{\"ckpt_name\":[\"1\",0]}},\"6\":{\"class_type\":\"V\"}}");
	wf_graph_model(g, out);
	ASSERT_STREQ(out, "B.st,a.st,b.st");
	cJSON_Delete(g);
	g = cJSON_Parse(
	    "{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{}}}");
	wf_graph_model(g, out);
	ASSERT_STREQ(out, "");
	cJSON_Delete(g);
	/* 300 names of 9 bytes: 2999 bytes joined, cut to 1024. */
	g = cJSON_CreateObject();
	for (i = 0; i < 300; i++) {
		char id[16], name[16];

		snprintf(id, sizeof id, "%d", i);
		snprintf(name, sizeof name, "m%03d.ckpt", i);
		n = cJSON_AddObjectToObject(g, id);
		cJSON_AddStringToObject(
		    cJSON_AddObjectToObject(n, "inputs"), "ckpt_name", name);
	}
	wf_graph_model(g, out);
	ASSERT_EQ(strlen(out), WF_MODEL_MAX);
	ASSERT_TRUE(strncmp(out, "m000.ckpt,m001.ckpt,", 20) == 0);
	ASSERT_TRUE(strncmp(out + 1020, "m102", 4) == 0);
	cJSON_Delete(g);

	/* A template's: its default, or the checkpoint param's value. */
	ASSERT_STREQ(
	    job_model(r,
		"{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":"
		"\"a\"}}"),
	    "sd_xl_base_1.0.safetensors");
	ASSERT_STREQ(
	    job_model(r,
		"{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":"
		"\"a\",\"checkpoint\":\"other.safetensors\"},\"loras\":"
		"[\"style:0.5\"]}"),
	    "other.safetensors");
	ASSERT_STREQ(
	    job_model(r, "{\"workflow\":\"smoke_invert\",\"params\":{}}"), "");
	wf_registry_free(r);
}

const struct unit_test test_workflow[] = {
	{ "templates_load", test_templates_load },
	{ "golden", test_golden },
	{ "bad_params", test_bad_params },
	{ "bad_surgery", test_bad_surgery },
	{ "seed_and_placeholders", test_seed_and_placeholders },
	{ "errors_all", test_errors_all },
	{ "model_key", test_model_key },
	{ NULL, NULL },
};
