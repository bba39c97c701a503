/*
 * File names in graphs (confine.h): the name rule, which (class, input)
 * pairs name files, the graph-files list, and each rule as a job meets
 * it: a raw graph's nodes of every file class, an unknown class, model
 * names, a template's string param, raw graphs turned off, and the last
 * check against /object_info.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confine.h"
#include "objinfo.h"
#include "twf.h"
#include "unit.h"

static void
name_is(const char *name, const char *want, int line)
{
	char why[128] = "";
	int  rc = confine_name(name, why, sizeof why);

	unit_checks++;
	if (want == NULL ? rc != 0 : rc != -1 || strcmp(why, want) != 0)
		unit_fail(__FILE__, line, "'%s': %d \"%s\", want \"%s\"", name,
		    rc, why, want != NULL ? want : "(ok)");
}

#define NAME_OK(n)	 name_is(n, NULL, __LINE__)
#define NAME_BAD(n, why) name_is(n, why, __LINE__)

static void
test_name_rule(void)
{
	char long_name[CONFINE_NAME_MAX + 2];

	NAME_OK("a.png");
	NAME_OK("examples/a.png");
	NAME_OK("sub/dir/a b.png");
	NAME_OK("photo[1].png");
	NAME_OK("sd_xl_base_1.0.safetensors");
	NAME_BAD("", "is empty");
	NAME_BAD("/etc/passwd", "is an absolute path");
	NAME_BAD("../x.png", "holds '..'");
	NAME_BAD("a/../../b.png", "holds '..'");
	NAME_BAD("x.png [output]", "ends in an annotation such as ' [output]'");
	NAME_BAD("x.png [input]", "ends in an annotation such as ' [output]'");
	NAME_BAD("x.png[temp]", "ends in an annotation such as ' [output]'");
	NAME_BAD("C:/x.png", "holds ':' (a drive letter or a URL)");
	NAME_BAD(
	    "http://10.0.0.1/x.png", "holds ':' (a drive letter or a URL)");
	NAME_BAD("a\\b.png", "holds a backslash");
	NAME_BAD("a\nb.png", "holds a control character");
	NAME_BAD("a\x7f.png", "holds a control character");
	NAME_BAD("a//b.png", "has an empty or '.' path component");
	NAME_BAD("./a.png", "has an empty or '.' path component");
	NAME_BAD("a/./b.png", "has an empty or '.' path component");
	NAME_BAD("a/", "has an empty or '.' path component");
	memset(long_name, 'a', CONFINE_NAME_MAX);
	long_name[CONFINE_NAME_MAX] = '\0';
	NAME_OK(long_name);
	long_name[CONFINE_NAME_MAX] = 'a';
	long_name[CONFINE_NAME_MAX + 1] = '\0';
	NAME_BAD(long_name, "is over 1024 bytes");
}

/* The class table, as README documents it. */
static const struct {
	const char *class, *input;
	int upload;
} file_classes[] = {
	{ "LoadImage", "image", 1 },
	{ "LoadImageMask", "image", 1 },
	{ "LoadImageOutput", "image", 0 },
	{ "LoadAudio", "audio", 0 },
	{ "LoadVideo", "file", 0 },
	{ "LoadLatent", "latent", 0 },
	{ "Load3D", "model_file", 0 },
	{ "Load3DAnimation", "model_file", 0 },
	{ "VHS_LoadVideo", "video", 0 },
	{ "VHS_LoadVideoPath", "video", 0 },
	{ "VHS_LoadVideoFFmpeg", "video", 0 },
	{ "VHS_LoadVideoFFmpegPath", "video", 0 },
	{ "VHS_LoadImagePath", "image", 0 },
	{ "VHS_LoadImages", "directory", 0 },
	{ "VHS_LoadImagesPath", "directory", 0 },
	{ "VHS_LoadAudio", "audio_file", 0 },
	{ "VHS_LoadAudioUpload", "audio", 0 },
};
#define NFILE_CLASSES (sizeof file_classes / sizeof file_classes[0])

static void
test_input_kinds(void)
{
	size_t i;

	for (i = 0; i < NFILE_CLASSES; i++) {
		ASSERT_EQ(
		    confine_input(file_classes[i].class, file_classes[i].input),
		    CONFINE_FILE);
		ASSERT_EQ(confine_upload_class(file_classes[i].class),
		    file_classes[i].upload);
		/* A class in the table names files only where it says. */
		ASSERT_EQ(confine_input(file_classes[i].class, "frame_rate"),
		    CONFINE_NONE);
	}
	ASSERT_EQ(confine_input("CheckpointLoaderSimple", "ckpt_name"),
	    CONFINE_MODEL);
	ASSERT_EQ(confine_input("LoraLoader", "lora_name"), CONFINE_MODEL);
	ASSERT_EQ(confine_input("DualCLIPLoader", "clip_name2"), CONFINE_MODEL);
	ASSERT_EQ(confine_input("MyLoader", "_name"), CONFINE_NONE);
	/* Known classes: their image inputs are tensors. */
	ASSERT_EQ(confine_input("ImageInvert", "image"), CONFINE_NONE);
	ASSERT_EQ(
	    confine_input("ControlNetApplyAdvanced", "image"), CONFINE_NONE);
	ASSERT_EQ(confine_input("SaveImage", "filename_prefix"), CONFINE_NONE);
	/* An unknown class: names that look like a file's. */
	ASSERT_EQ(confine_input("MyLoader", "image"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "video"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "audio"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "file"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "path"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "url"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "folder"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "image_path"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "input_dir"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "audio_file"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "start_image"), CONFINE_GUESS);
	ASSERT_EQ(confine_input("MyLoader", "strength"), CONFINE_NONE);
	ASSERT_EQ(confine_input("MyLoader", "filename_prefix"), CONFINE_NONE);
	ASSERT_EQ(confine_input("MyLoader", "image_format"), CONFINE_NONE);
	ASSERT_EQ(confine_input(NULL, "image"), CONFINE_GUESS);
}

static void
test_list(void)
{
	char err[256];

	ASSERT_EQ(confine_listed("examples/,a.png", "examples/x.png"), 1);
	ASSERT_EQ(confine_listed("examples/,a.png", "examples/sub/x.png"), 1);
	ASSERT_EQ(confine_listed("examples/,a.png", "a.png"), 1);
	ASSERT_EQ(confine_listed("examples/,a.png", "examples"), 0);
	ASSERT_EQ(confine_listed("examples/,a.png", "a.png2"), 0);
	ASSERT_EQ(confine_listed("examples/,a.png", "b/a.png"), 0);
	ASSERT_EQ(confine_listed("examples/,a.png", "xexamples/a.png"), 0);
	ASSERT_EQ(confine_listed("", "a.png"), 0);
	ASSERT_EQ(confine_list_check("", err, sizeof err), 0);
	ASSERT_EQ(confine_list_check("examples/,a.png", err, sizeof err), 0);
	ASSERT_EQ(confine_list_check("comfyq/", err, sizeof err), -1);
	ASSERT_STREQ(
	    err, "graph-files: 'comfyq/': comfyq/ holds the jobs' own uploads");
	ASSERT_EQ(confine_list_check("a.png,comfyq", err, sizeof err), -1);
	ASSERT_STREQ(
	    err, "graph-files: 'comfyq': comfyq/ holds the jobs' own uploads");
	ASSERT_EQ(confine_list_check("/srv/", err, sizeof err), -1);
	ASSERT_STREQ(err, "graph-files: '/srv/' is an absolute path");
	ASSERT_EQ(confine_list_check("./", err, sizeof err), -1);
	ASSERT_STREQ(
	    err, "graph-files: './' has an empty or '.' path component");
	ASSERT_EQ(confine_list_check("a,,b", err, sizeof err), -1);
	ASSERT_STREQ(err, "graph-files: '' is empty");
	ASSERT_EQ(confine_list_check("x.png [output]", err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "graph-files: 'x.png [output]' ends in an annotation such as ' "
	    "[output]'");
}

/* A raw graph: node 1 of cls with input = value (JSON), saved by node 2;
 * node 3 is something to link to. */
static const char *
raw1(const char *cls, const char *input, const char *value, const char *extra)
{
	static char spec[4096];

	snprintf(spec, sizeof spec,
	    "{\"graph\":{\"1\":{\"class_type\":\"%s\",\"inputs\":{\"%s\":%s}},"
	    "\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
	    "[\"1\",0],\"filename_prefix\":\"x\"}},\"3\":{\"class_type\":"
	    "\"EmptyImage\",\"inputs\":{}}}%s}",
	    cls, input, value, extra != NULL ? extra : "");
	return (spec);
}

static const struct wf_opts worker_opts = { .graph_files = "examples/,a.png" };

static void
test_raw_every_class(void)
{
	char   want[512];
	size_t i;

	for (i = 0; i < NFILE_CLASSES; i++) {
		const char *c = file_classes[i].class,
			   *in = file_classes[i].input;

		/* Another job's upload, an annotated name, a path. */
		snprintf(want, sizeof want,
		    "node 1 (%s) input %s: 'comfyq/0abc/face.png' is not a "
		    "file of this job (%s%s)",
		    c, in,
		    file_classes[i].upload ? "send the image as inputs.1; "
					   : "",
		    file_classes[i].upload
			? "other files only as the worker's graph-files "
			  "setting lists them"
			: "only files the worker's graph-files setting lists "
			  "may be named here");
		REFUSED_AS(NULL, &worker_opts,
		    raw1(c, in, "\"comfyq/0abc/face.png\"", NULL), want);
		snprintf(want, sizeof want,
		    "node 1 (%s) input %s: 'x.png [output]' ends in an "
		    "annotation such as ' [output]'",
		    c, in);
		REFUSED_AS(NULL, &worker_opts,
		    raw1(c, in, "\"x.png [output]\"", NULL), want);
		snprintf(want, sizeof want,
		    "node 1 (%s) input %s: '/etc/passwd' is an absolute path",
		    c, in);
		REFUSED_AS(NULL, &worker_opts,
		    raw1(c, in, "\"/etc/passwd\"", NULL), want);
		/* A link or a number is no file name. */
		snprintf(want, sizeof want,
		    "node 1 (%s) input %s: must be a file name, not a link", c,
		    in);
		REFUSED_AS(
		    NULL, &worker_opts, raw1(c, in, "[\"3\",0]", NULL), want);
		/* The operator's list. */
		ACCEPTED(NULL, &worker_opts,
		    raw1(c, in, "\"examples/cat.png\"", NULL));
		ACCEPTED(NULL, &worker_opts, raw1(c, in, "\"a.png\"", NULL));
	}
}

static void
test_raw_rules(void)
{
	static const struct wf_opts none = { .graph_files = "" };

	REFUSED_AS(NULL, &worker_opts,
	    raw1("LoadImage", "image", "\"../input/x.png\"", NULL),
	    "node 1 (LoadImage) input image: '../input/x.png' holds '..'");
	REFUSED_AS(NULL, &worker_opts,
	    raw1("LoadImage", "image", "\"C:\\\\x.png\"", NULL),
	    "node 1 (LoadImage) input image: 'C:\\x.png' holds ':' (a drive "
	    "letter or a URL)");
	REFUSED_AS(NULL, &worker_opts,
	    raw1("LoadImage", "image", "\"a\\\\x.png\"", NULL),
	    "node 1 (LoadImage) input image: 'a\\x.png' holds a backslash");
	REFUSED_AS(NULL, &worker_opts,
	    raw1("LoadImage", "image", "\"a\\u0001.png\"", NULL),
	    "node 1 (LoadImage) input image: 'a\001.png' holds a control "
	    "character");
	REFUSED_AS(NULL, &worker_opts, raw1("LoadImage", "image", "7", NULL),
	    "node 1 (LoadImage) input image: must be a file name");
	/* Empty graph-files: nothing but the job's own inputs. */
	REFUSED_AS(NULL, &none, raw1("LoadImage", "image", "\"a.png\"", NULL),
	    "node 1 (LoadImage) input image: 'a.png' is not a file of this "
	    "job (send the image as inputs.1; other files only as the "
	    "worker's graph-files setting lists them)");
	/* An input of the job fills the node: its own value is moot. */
	ACCEPTED(NULL, &none,
	    raw1("LoadImage", "image", "\"../whatever\"",
		",\"inputs\":{\"1\":\"aGk=\"}"));
	ACCEPTED(NULL, &none,
	    raw1("LoadImageMask", "image", "\"x.png\"",
		",\"inputs\":{\"1\":\"aGk=\"}"));
	/* ...but only where an upload can go. */
	REFUSED_AS(NULL, &none,
	    raw1("VHS_LoadVideo", "video", "\"x.mp4\"",
		",\"inputs\":{\"1\":\"aGk=\"}"),
	    "node 1 (VHS_LoadVideo) input video: 'x.mp4' is not a file of this "
	    "job (only files the worker's graph-files setting lists may be "
	    "named here)");
	/* An unknown class: strings in file-like inputs are held to it... */
	REFUSED_AS(NULL, &worker_opts,
	    raw1("MyLoader", "image_path", "\"comfyq/0abc/a.png\"", NULL),
	    "node 1 (MyLoader) input image_path: 'comfyq/0abc/a.png' is not a "
	    "file of this job (only files the worker's graph-files setting "
	    "lists may be named here)");
	REFUSED_AS(NULL, &worker_opts,
	    raw1("MyLoader", "url", "\"http://169.254.169.254/\"", NULL),
	    "node 1 (MyLoader) input url: 'http://169.254.169.254/' holds ':' "
	    "(a drive letter or a URL)");
	ACCEPTED(NULL, &worker_opts,
	    raw1("MyLoader", "image_path", "\"examples/a.png\"", NULL));
	/* ...links and other inputs are not. */
	ACCEPTED(NULL, &none, raw1("MyLoader", "image", "[\"3\",0]", NULL));
	ACCEPTED(
	    NULL, &none, raw1("MyLoader", "text", "\"/etc/passwd\"", NULL));
	/* A key given twice: cJSON reads the first, ComfyUI the last. */
	REFUSED_AS(NULL, &none,
	    "{\"graph\":{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":"
	    "{\"image\":\"x\"}},\"1\":{\"class_type\":\"LoadImage\",\"inputs\":"
	    "{\"image\":\"/etc/passwd\"}},\"2\":{\"class_type\":\"SaveImage\","
	    "\"inputs\":{\"images\":[\"1\",0]}}},\"inputs\":{\"1\":\"aGk=\"}}",
	    "graph: node id '1' given twice");
	REFUSED_AS(NULL, &none,
	    raw1("LoadImage", "image", "\"x\",\"image\":\"/etc/passwd\"",
		",\"inputs\":{\"1\":\"aGk=\"}"),
	    "node 1: 'image' given twice");
	REFUSED_AS(NULL, &none,
	    "{\"graph\":{\"1\":{\"class_type\":\"EmptyImage\",\"class_type\":"
	    "\"LoadImage\",\"inputs\":{\"image\":\"/etc/passwd\"}},\"2\":{"
	    "\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"1\",0]}}}}",
	    "node 1: 'class_type' given twice");
	REFUSED_AS(NULL, &none,
	    raw1("LoadImage", "image", "\"x\"",
		",\"inputs\":{\"1\":\"aGk=\",\"1\":\"aGk=\"}"),
	    "inputs.1: given twice");
	/* Model names: the name rule, no list. */
	REFUSED_AS(NULL, &none,
	    raw1("CheckpointLoaderSimple", "ckpt_name",
		"\"../../../etc/passwd\"", NULL),
	    "node 1 (CheckpointLoaderSimple) input ckpt_name: "
	    "'../../../etc/passwd' holds '..'");
	REFUSED_AS(NULL, &none,
	    raw1("MyLoader", "unet_name", "\"/models/x.safetensors\"", NULL),
	    "node 1 (MyLoader) input unet_name: '/models/x.safetensors' is an "
	    "absolute path");
	ACCEPTED(NULL, &none,
	    raw1("CheckpointLoaderSimple", "ckpt_name",
		"\"sdxl/base.safetensors\"", NULL));
	/* Where the list is not known (the CLI), only names are checked. */
	ACCEPTED(NULL, NULL,
	    raw1("LoadImage", "image", "\"comfyq/0abc/face.png\"", NULL));
	REFUSED_AS(NULL, NULL, raw1("LoadImage", "image", "\"../x.png\"", NULL),
	    "node 1 (LoadImage) input image: '../x.png' holds '..'");
}

static void
test_raw_deny(void)
{
	static const struct wf_opts deny = { .raw_deny = 1, .graph_files = "" };
	struct wf_registry	   *r;
	char			    err[1024];

	REFUSED_AS(NULL, &deny, raw1("EmptyImage", "width", "8", NULL),
	    "graph: raw graphs are turned off on this worker");
	r = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err);
	ASSERT_TRUE(r != NULL);
	ACCEPTED(r, &deny,
	    "{\"workflow\":\"smoke_invert\",\"params\":{\"width\":64}}");
	wf_registry_free(r);
}

/* A template whose string params land in a LoadImage and a ckpt_name. */
#define T_FILE                                                                 \
	"{\"name\":\"t\",\"graph\":{"                                          \
	"\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":8,"        \
	"\"height\":8}},"                                                      \
	"\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"          \
	"[\"1\",0]}},"                                                         \
	"\"3\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":"           \
	"\"default.png\"}},"                                                   \
	"\"4\":{\"class_type\":\"PreviewImage\",\"inputs\":{\"images\":"       \
	"[\"3\",0]}},"                                                         \
	"\"5\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{"        \
	"\"ckpt_name\":\"a.safetensors\"}}},"                                  \
	"\"params\":[{\"name\":\"w\",\"type\":\"int\",\"default\":8,"          \
	"\"targets\":[{\"node\":\"1\",\"input\":\"width\"}]},"                 \
	"{\"name\":\"h\",\"type\":\"int\",\"default\":8},"                     \
	"{\"name\":\"file\",\"type\":\"string\",\"targets\":[{\"node\":"       \
	"\"3\",\"input\":\"image\"}]},"                                        \
	"{\"name\":\"ckpt\",\"type\":\"string\",\"targets\":[{\"node\":"       \
	"\"5\",\"input\":\"ckpt_name\"}]}],"                                   \
	"\"output\":{\"kind\":\"image\",\"width\":\"w\",\"height\":\"h\"},"    \
	"\"vram\":[{\"max_pixels\":100,\"mb\":1}]}"

static void
test_template_params(void)
{
	const char	   *dir = twf_dir();
	struct wf_registry *r;
	char		    err[1024];

	twf_write(dir, "t", T_FILE);
	r = wf_load(dir, err, sizeof err);
	twf_rmdir(dir);
	if (r == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	ACCEPTED(r, &worker_opts, "{\"workflow\":\"t\"}");
	ACCEPTED(r, &worker_opts,
	    "{\"workflow\":\"t\",\"params\":{\"file\":\"examples/a.png\"}}");
	REFUSED_AS(r, &worker_opts,
	    "{\"workflow\":\"t\",\"params\":{\"file\":\"comfyq/0abc/a.png\"}}",
	    "file (node 3 (LoadImage) input image): 'comfyq/0abc/a.png' is not "
	    "a file of this job (only files the worker's graph-files setting "
	    "lists may be named here)");
	REFUSED_AS(r, NULL,
	    "{\"workflow\":\"t\",\"params\":{\"file\":\"a.png [temp]\"}}",
	    "file (node 3 (LoadImage) input image): 'a.png [temp]' ends in an "
	    "annotation such as ' [output]'");
	REFUSED_AS(r, &worker_opts,
	    "{\"workflow\":\"t\",\"params\":{\"ckpt\":\"/x.safetensors\"}}",
	    "ckpt (node 5 (CheckpointLoaderSimple) input ckpt_name): "
	    "'/x.safetensors' is an absolute path");
	ACCEPTED(r, &worker_opts,
	    "{\"workflow\":\"t\",\"params\":{\"ckpt\":\"b.safetensors\"}}");
	wf_registry_free(r);
}

/* objinfo_check(): model names, the last check before POST /prompt. */
static void
objinfo_is(const cJSON *oi, const char *cls, const char *input,
    const char *value, const char *want, int line)
{
	cJSON *spec = cJSON_Parse(raw1(cls, input, value, NULL));
	char   err[512] = "";
	int    rc;

	rc = objinfo_check(cJSON_GetObjectItemCaseSensitive(spec, "graph"), oi,
	    err, sizeof err);
	cJSON_Delete(spec);
	unit_checks++;
	if (want == NULL ? rc != 0 : rc != -1 || strcmp(err, want) != 0)
		unit_fail(__FILE__, line, "got %d \"%s\", want \"%s\"", rc, err,
		    want != NULL ? want : "(ok)");
}

static void
test_objinfo_names(void)
{
	cJSON *oi = unit_json("object_info.json");

	/* File inputs were judged with the job (confine_graph()). */
	objinfo_is(oi, "LoadImage", "image", "\"comfyq/0abc/face.png\"", NULL,
	    __LINE__);
	objinfo_is(oi, "CheckpointLoaderSimple", "ckpt_name",
	    "\"sd_xl_base_1.0.safetensors\"", NULL, __LINE__);
	objinfo_is(oi, "CheckpointLoaderSimple", "ckpt_name",
	    "\"/x.safetensors\"",
	    "node 1 (CheckpointLoaderSimple) ckpt_name: '/x.safetensors' is an "
	    "absolute path",
	    __LINE__);
	cJSON_Delete(oi);
}

const struct unit_test test_confine[] = {
	{ "name_rule", test_name_rule },
	{ "input_kinds", test_input_kinds },
	{ "list", test_list },
	{ "raw_every_class", test_raw_every_class },
	{ "raw_rules", test_raw_rules },
	{ "raw_deny", test_raw_deny },
	{ "template_params", test_template_params },
	{ "objinfo_names", test_objinfo_names },
	{ NULL, NULL },
};
