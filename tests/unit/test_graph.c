/*
 * Graph helpers and surgery pieces: validation messages, printing order,
 * prompt tag parsing edge cases, the ControlNet type map, the names check
 * against a /object_info fixture, and template files that must not load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controlnet.h"
#include "graph.h"
#include "lora.h"
#include "objinfo.h"
#include "template.h"
#include "unit.h"
#include "util.h"

static void
validate_is(const char *json, const char *want, int line)
{
	cJSON *g = cJSON_Parse(json);
	char   err[512] = "";
	int    rc;

	if (g == NULL)
		unit_fail(__FILE__, line, "not JSON: %s", json);
	rc = graph_validate(g, NULL, err, sizeof err);
	cJSON_Delete(g);
	unit_checks++;
	if (want == NULL ? rc != 0 : rc != -1 || strcmp(err, want) != 0)
		unit_fail(__FILE__, line, "got %d \"%s\", want \"%s\"", rc, err,
		    want ? want : "(valid)");
}

#define VALID(j)      validate_is(j, NULL, __LINE__)
#define INVALID(j, w) validate_is(j, w, __LINE__)
#define SAVE(src)                                                              \
	"\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":" src "}}"
#define EMPTY "\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{}}"

static void
test_validate(void)
{
	VALID("{" EMPTY "," SAVE("[\"1\",0]") "}");
	/* A class we do not know may be an output node: benefit of doubt. */
	VALID("{\"1\":{\"class_type\":\"MyCustomSaver\",\"inputs\":{}}}");
	INVALID("{}", "graph: must be a non-empty object of nodes");
	INVALID("[1]", "graph: must be a non-empty object of nodes");
	INVALID("{\"1\":{\"inputs\":{}}}", "node 1: no class_type");
	INVALID("{" EMPTY "}",
	    "graph: no output node (SaveImage, PreviewImage, "
	    "VHS_VideoCombine, ...)");
	INVALID("{" EMPTY "," SAVE("[\"2\",0]") "}",
	    "node 9 input images: link to missing node 2");
	INVALID("{" EMPTY "," SAVE("[\"1\",1]") "}",
	    "node 9 input images: node 1 (EmptyImage) has no output 1 (it "
	    "has 1)");
	INVALID("{" EMPTY "," SAVE("[1,0]") "}",
	    "node 9 input images: not a link [\"<node id>\", <output index>] "
	    "(wrap a literal list as {\"__value__\": [...]})");
	INVALID("{" EMPTY "," SAVE("[\"1\",0,0]") "}",
	    "node 9 input images: not a link [\"<node id>\", <output index>] "
	    "(wrap a literal list as {\"__value__\": [...]})");
	INVALID("{" EMPTY "," SAVE("[\"1\",-1]") "}",
	    "node 9 input images: not a link [\"<node id>\", <output index>] "
	    "(wrap a literal list as {\"__value__\": [...]})");
	INVALID("{\"1\":{\"class_type\":\"ImageInvert\",\"inputs\":{\"image\":"
		"[\"2\",0]}},\"2\":{\"class_type\":\"ImageInvert\",\"inputs\":"
		"{\"image\":[\"1\",0]}}," SAVE("[\"1\",0]") "}",
	    "graph: cycle through node 1");
	INVALID("{\"1\":{\"class_type\":\"ImageInvert\",\"inputs\":{\"image\":"
		"[\"1\",0]}}," SAVE("[\"1\",0]") "}",
	    "graph: cycle through node 1");
	INVALID("{" EMPTY ",\"9\":{\"class_type\":\"SaveImage\",\"inputs\":7}}",
	    "node 9: inputs must be an object");
}

static void
test_validate_object_info(void)
{
	char   err[512], *text;
	cJSON *oi, *g;

	text = file_slurp(
	    unit_data("object_info.json"), 1 << 20, NULL, err, sizeof err);
	ASSERT_TRUE(text != NULL);
	oi = cJSON_Parse(text);
	free(text);
	g = cJSON_Parse("{\"1\":{\"class_type\":\"Foo\",\"inputs\":{}}}");
	ASSERT_EQ(graph_validate(g, oi, err, sizeof err), -1);
	ASSERT_STREQ(err, "node 1: class Foo is not installed");
	ASSERT_EQ(objinfo_check(g, oi, err, sizeof err), -1);
	ASSERT_STREQ(err, "node 1: class Foo is not installed in ComfyUI");
	cJSON_Delete(g);
	g = cJSON_Parse(
	    "{\"4\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{"
	    "\"ckpt_name\":\"sd_xl_base_1.0.safetensors\"}},\"10\":{"
	    "\"class_type\":\"LoraLoader\",\"inputs\":{\"model\":[\"4\",0],"
	    "\"clip\":[\"4\",1],\"lora_name\":\"missing.safetensors\","
	    "\"strength_model\":1,\"strength_clip\":1}},\"11\":{"
	    "\"class_type\":\"LoadImage\",\"inputs\":{\"image\":\"uploaded-"
	    "after-the-cache.png\"}}}");
	ASSERT_EQ(objinfo_check(g, oi, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "node 10 (LoraLoader) lora_name: 'missing.safetensors' is not in "
	    "ComfyUI's list (style.safetensors, face.safetensors, "
	    "anime.safetensors, detail/more_details.safetensors, "
	    "motion.safetensors)");
	/* Links are fine; output_node comes from /object_info too. */
	ASSERT_EQ(graph_validate(g, oi, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "graph: no output node (SaveImage, PreviewImage, "
	    "VHS_VideoCombine, ...)");
	cJSON_ReplaceItemInObjectCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(g, "10"), "inputs"),
	    "lora_name", cJSON_CreateString("anime.safetensors"));
	ASSERT_EQ(objinfo_check(g, oi, err, sizeof err), 0);
	cJSON_Delete(g);
	/* A V3 combo (["COMBO", {"options": [...]}]) is checked as well. */
	g = cJSON_Parse("{\"1\":{\"class_type\":\"VHS_VideoCombine\","
			"\"inputs\":{\"format\":\"video/avi\"}}}");
	ASSERT_EQ(objinfo_check(g, oi, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "node 1 (VHS_VideoCombine) format: 'video/avi' is not in "
	    "ComfyUI's list (image/gif, image/webp, video/h264-mp4, "
	    "video/h265-mp4, video/webm)");
	cJSON_Delete(g);
	cJSON_Delete(oi);
}

static void
test_print_order(void)
{
	cJSON *g = cJSON_Parse("{\"10\":{\"class_type\":\"B\",\"inputs\":{"
			       "\"z\":1,\"a\":[\"9\",0]}},\"9\":{\"class_"
			       "type\":\"A\"},\"x\":{\"class_type\":\"C\"}}");
	char  *text = graph_print(g);

	ASSERT_STREQ(text,
	    "{\n\t\"9\":\t{\n\t\t\"class_type\":\t\"A\"\n\t},\n\t\"10\":\t{\n"
	    "\t\t\"class_type\":\t\"B\",\n\t\t\"inputs\":\t{\n\t\t\t\"a\":\t"
	    "[\"9\", 0],\n\t\t\t\"z\":\t1\n\t\t}\n\t},\n\t\"x\":\t{\n\t\t"
	    "\"class_type\":\t\"C\"\n\t}\n}\n");
	free(text);
	cJSON_Delete(g);
	/* Empty objects print too (the fuzzer's find: no qsort of none). */
	g = cJSON_Parse("{\"1\":{\"inputs\":{}}}");
	text = graph_print(g);
	ASSERT_STREQ(
	    text, "{\n\t\"1\":\t{\n\t\t\"inputs\":\t{\n\t\t}\n\t}\n}\n");
	free(text);
	cJSON_Delete(g);
}

/* Parses tags in text; checks the text left and the LoRAs found. */
static void
tags_are(const char *in, const char *out, const char *loras, int line)
{
	struct lora_list ll;
	char		 buf[512], got[512], err[256];
	int		 i, o = 0;

	memset(&ll, 0, sizeof ll);
	snprintf(buf, sizeof buf, "%s", in);
	if (lora_parse_tags(buf, "prompt", &ll, err, sizeof err) == -1)
		unit_fail(__FILE__, line, "refused: %s", err);
	got[0] = '\0';
	for (i = 0; i < ll.n; i++)
		o += snprintf(got + o, sizeof got - (size_t)o, "%s%s=%g/%g",
		    i ? " " : "", ll.l[i].name, ll.l[i].strength_model,
		    ll.l[i].strength_clip);
	unit_checks++;
	if (strcmp(buf, out) != 0 || strcmp(got, loras) != 0)
		unit_fail(__FILE__, line,
		    "\"%s\" -> \"%s\" [%s], want \"%s\" [%s]", in, buf, got,
		    out, loras);
}

#define TAGS(in, out, loras) tags_are(in, out, loras, __LINE__)

static void
test_lora_tags(void)
{
	struct lora_list ll;
	char		 buf[256], err[256];

	TAGS("a red fox <lora:anime:0.8>", "a red fox",
	    "anime.safetensors=0.8/0.8");
	TAGS("<lora:anime:0.8> a fox", "a fox", "anime.safetensors=0.8/0.8");
	TAGS("a <lora:a:1> <lora:b:0.5:0.25> fox", "a fox",
	    "a.safetensors=1/1 b.safetensors=0.5/0.25");
	TAGS("a,<lora:a:1>fox", "a,fox", "a.safetensors=1/1");
	TAGS("x <LoRA: style/ink.pt : -0.5 > y", "x y",
	    "style/ink.pt=-0.5/-0.5");
	TAGS("x <lora:plain> y", "x y", "plain.safetensors=1/1");
	/* Malformed tags stay text. */
	TAGS("x <lora:a:0.5", "x <lora:a:0.5", "");
	TAGS("x <lora:a:abc> y", "x <lora:a:abc> y", "");
	TAGS("x <lora::1> y", "x <lora::1> y", "");
	TAGS("x <lora:a:1:2:3> y", "x <lora:a:1:2:3> y", "");
	TAGS("x <lora:a:> y", "x <lora:a:> y", "");
	TAGS("x <lora:a:1\n> y", "x <lora:a:1\n> y", "");
	TAGS("x <lora:a<lora:b:1> y", "x <lora:a y", "b.safetensors=1/1");
	TAGS("x <lyco:a:1> <loraa:1> y", "x <lyco:a:1> <loraa:1> y", "");
	TAGS("x <lora:../up:1> y", "x <lora:../up:1> y", "");
	TAGS("x <lora:a:nan> <lora:a:1e999> y",
	    "x <lora:a:nan> <lora:a:1e999> y", "");
	TAGS("no tags at all", "no tags at all", "");
	TAGS("", "", "");
	/* Weights out of range are refused, not ignored. */
	memset(&ll, 0, sizeof ll);
	snprintf(buf, sizeof buf, "a <lora:x:10.5>");
	ASSERT_EQ(lora_parse_tags(buf, "prompt", &ll, err, sizeof err), -1);
	ASSERT_STREQ(err, "prompt: <lora:x:10.5>: weight 10.5 not in -10..10");
	memset(&ll, 0, sizeof ll);
	snprintf(buf, sizeof buf, "a <lora:x:1:-11>");
	ASSERT_EQ(lora_parse_tags(buf, "prompt", &ll, err, sizeof err), -1);
	ASSERT_STREQ(err, "prompt: <lora:x:1:-11>: weight -11 not in -10..10");
	memset(&ll, 0, sizeof ll);
	snprintf(buf, sizeof buf,
	    "<lora:a><lora:b><lora:c><lora:d><lora:e><lora:f><lora:g><lora:h>"
	    "<lora:i><lora:j><lora:k><lora:l><lora:m><lora:n><lora:o><lora:p>"
	    "<lora:q>");
	ASSERT_EQ(lora_parse_tags(buf, "prompt", &ll, err, sizeof err), -1);
	ASSERT_STREQ(err, "prompt: <lora:q>: over 16 LoRAs");
}

static void
test_cn_map(void)
{
	struct cn_map m;
	char	      err[256];

	ASSERT_EQ(cn_map_parse(CN_MAP_DEFAULT, &m, err, sizeof err), 0);
	ASSERT_EQ(m.n, 2);
	ASSERT_STREQ(
	    cn_map_file(&m, "depth"), "control-lora-depth-rank256.safetensors");
	ASSERT_TRUE(cn_map_file(&m, "pose") == NULL);
	ASSERT_EQ(
	    cn_map_parse("canny=a.safetensors,pose", &m, err, sizeof err), -1);
	ASSERT_STREQ(err, "controlnet-models: 'pose' is not TYPE=FILE");
	ASSERT_EQ(cn_map_parse("=x", &m, err, sizeof err), -1);
	ASSERT_STREQ(err, "controlnet-models: '=x' is not TYPE=FILE");
}

/* Writes one template file into a fresh folder and loads it. */
static void
bad_template(const char *name, const char *text, const char *want, int line)
{
	char dir[] = "/tmp/comfyq-wf.XXXXXX", path[256], err[1024];
	struct wf_registry *r;
	FILE		   *f;

	if (mkdtemp(dir) == NULL)
		unit_fail(__FILE__, line, "mkdtemp");
	snprintf(path, sizeof path, "%s/%s.json", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	r = wf_load(dir, err, sizeof err);
	unlink(path);
	rmdir(dir);
	unit_checks++;
	if (r != NULL) {
		wf_registry_free(r);
		unit_fail(__FILE__, line, "loaded: %s", text);
	}
	if (strncmp(err, dir, strlen(dir)) != 0 ||
	    strcmp(err + strlen(dir) + strlen(name) + 8, want) != 0)
		unit_fail(
		    __FILE__, line, "\"%s\", want \"...: %s\"", err, want);
}

#define GOOD_GRAPH                                                             \
	"\"graph\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{"         \
	"\"width\":8,\"height\":8}},\"2\":{\"class_type\":\"SaveImage\","      \
	"\"inputs\":{\"images\":[\"1\",0]}}}"
#define OUT_VRAM                                                               \
	"\"output\":{\"kind\":\"image\",\"width\":\"w\",\"height\":\"h\"},"    \
	"\"vram\":[{\"max_pixels\":100,\"mb\":1}]"
#define WH                                                                     \
	"{\"name\":\"w\",\"type\":\"int\",\"default\":8,\"targets\":[{"        \
	"\"node\":\"1\",\"input\":\"width\"}]},{\"name\":\"h\",\"type\":"      \
	"\"int\",\"default\":8,\"targets\":[{\"node\":\"1\",\"input\":"        \
	"\"height\"}]}"
#define BAD(name, text, want) bad_template(name, text, want, __LINE__)

static void
test_bad_templates(void)
{
	char		    err[256];
	struct wf_registry *r;

	BAD("t", "{", "not valid JSON");
	BAD("t", "{\"name\":\"u\"}", "name: must be \"t\", as the file");
	BAD("t", "{\"name\":\"t\",\"graph\":{}}",
	    "graph: graph: must be a non-empty object of nodes");
	BAD("t",
	    "{\"name\":\"t\"," GOOD_GRAPH ",\"params\":[" WH
	    ",{\"name\":\"x\",\"type\":\"text\"}]," OUT_VRAM "}",
	    "params[2]: type: must be one of string, int, float, bool, enum, "
	    "image");
	BAD("t",
	    "{\"name\":\"t\"," GOOD_GRAPH ",\"params\":[" WH
	    ",{\"name\":\"x\",\"type\":\"int\",\"targets\":[{\"node\":"
	    "\"1\",\"input\":\"colour\"}]}]," OUT_VRAM "}",
	    "params[2]: targets[0]: the graph has no input 1.colour");
	BAD("t",
	    "{\"name\":\"t\"," GOOD_GRAPH ",\"params\":[" WH
	    ",{\"name\":\"x\",\"type\":\"int\",\"default\":9,\"min\":1,"
	    "\"max\":4}]," OUT_VRAM "}",
	    "x: 9 not in 1..4");
	BAD("t",
	    "{\"name\":\"t\"," GOOD_GRAPH ",\"params\":[" WH "," WH
	    "]," OUT_VRAM "}",
	    "params.w: given twice");
	BAD("t",
	    "{\"name\":\"t\"," GOOD_GRAPH ",\"params\":[" WH
	    "],\"output\":{\"kind\":\"image\",\"width\":\"w\",\"height\":"
	    "\"x\"},\"vram\":[{\"max_pixels\":1,\"mb\":1}]}",
	    "output: width and height must name int params");
	BAD("t",
	    "{\"name\":\"t\"," GOOD_GRAPH ",\"params\":[" WH
	    "],\"output\":{\"kind\":\"image\",\"width\":\"w\",\"height\":"
	    "\"h\"},\"vram\":[{\"max_pixels\":2,\"mb\":1},{\"max_pixels\":"
	    "1,\"mb\":1}]}",
	    "vram: must be a list of {max_pixels, mb}, max_pixels ascending");
	r = wf_load("/nonexistent", err, sizeof err);
	ASSERT_TRUE(r == NULL);
	ASSERT_STREQ(err, "/nonexistent: No such file or directory");
}

const struct unit_test test_graph[] = {
	{ "validate", test_validate },
	{ "validate_object_info", test_validate_object_info },
	{ "print_order", test_print_order },
	{ "lora_tags", test_lora_tags },
	{ "cn_map", test_cn_map },
	{ "bad_templates", test_bad_templates },
	{ NULL, NULL },
};
