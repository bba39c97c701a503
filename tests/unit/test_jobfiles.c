/*
 * The files a graph reads, as job_files records them (worker/jobfiles.c):
 * the upload inputs /object_info marks, annotated folders, duplicates once,
 * names that would leave their folder refused.
 */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "jobfiles.h"
#include "unit.h"

static const char objinfo[] =
    "{\"LoadImage\":{\"input\":{\"required\":{\"image\":[[\"a.png\"],"
    "{\"image_upload\":true}]}}},"
    "\"LoadVideo\":{\"input\":{\"optional\":{\"file\":[[],"
    "{\"video_upload\":true}]}}},"
    "\"CheckpointLoaderSimple\":{\"input\":{\"required\":{\"ckpt_name\":"
    "[[\"m.safetensors\"],{}]}}}}";

/* The collected list printed, or "ERR: <reason>". */
static char *
collect(const char *graph)
{
	cJSON *g = cJSON_Parse(graph), *info = cJSON_Parse(objinfo), *l;
	char   err[512], *out;

	if ((l = jobfiles_collect(g, info, err, sizeof err)) == NULL) {
		out = malloc(sizeof err + 8);
		snprintf(out, sizeof err + 8, "ERR: %s", err);
	} else
		out = cJSON_PrintUnformatted(l);
	cJSON_Delete(l);
	cJSON_Delete(g);
	cJSON_Delete(info);
	return (out);
}

#define ASSERT_COLLECT(graph, want)                                            \
	do {                                                                   \
		char *_got = collect(graph);                                   \
		ASSERT_STREQ(_got, want);                                      \
		free(_got);                                                    \
	} while (0)

static void
test_collect(void)
{
	ASSERT_COLLECT("{\"1\":{\"class_type\":\"CheckpointLoaderSimple\","
		       "\"inputs\":{\"ckpt_name\":\"m.safetensors\"}}}",
	    "[]");
	ASSERT_COLLECT("{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":"
		       "{\"image\":\"comfyq/j1/image.png\"}},"
		       "\"2\":{\"class_type\":\"LoadImage\",\"inputs\":"
		       "{\"image\":\"faces/a.png\"}},"
		       "\"3\":{\"class_type\":\"LoadImage\",\"inputs\":"
		       "{\"image\":\"faces/a.png\"}},"
		       "\"4\":{\"class_type\":\"LoadImage\",\"inputs\":"
		       "{\"image\":\"out_00001_.png [output]\"}},"
		       "\"5\":{\"class_type\":\"LoadVideo\",\"inputs\":"
		       "{\"file\":\"v.mp4 [temp]\"}},"
		       "\"6\":{\"class_type\":\"LoadImage\",\"inputs\":"
		       "{\"image\":[\"1\",0]}}}",
	    "[\"input/comfyq/j1/image.png\",\"input/faces/a.png\","
	    "\"output/out_00001_.png\",\"temp/v.mp4\"]");
	/* A class ComfyUI does not list reads nothing we know of. */
	ASSERT_COLLECT("{\"1\":{\"class_type\":\"Foo\",\"inputs\":"
		       "{\"image\":\"x.png\"}}}",
	    "[]");
}

static void
test_refused(void)
{
	static const char *const bad[] = { "../x.png", "/etc/passwd",
		"a/../../b.png", "a//b.png", "./a.png", "dir/", "", " [output]",
		"../x.png [input]" };
	char			 graph[256];
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *got;

		snprintf(graph, sizeof graph,
		    "{\"7\":{\"class_type\":\"LoadImage\",\"inputs\":"
		    "{\"image\":\"%s\"}}}",
		    bad[i]);
		got = collect(graph);
		ASSERT_TRUE(
		    strncmp(got, "ERR: node 7 (LoadImage) image: '", 32) == 0);
		free(got);
	}
}

static void
test_too_many(void)
{
	cJSON *g = cJSON_CreateObject(), *info = cJSON_Parse(objinfo), *n, *l;
	char   id[16], name[32], err[256];
	int    i;

	for (i = 0; i <= JOBFILES_MAX; i++) {
		snprintf(id, sizeof id, "%d", i);
		snprintf(name, sizeof name, "f%d.png", i);
		n = cJSON_AddObjectToObject(g, id);
		cJSON_AddStringToObject(n, "class_type", "LoadImage");
		cJSON_AddStringToObject(
		    cJSON_AddObjectToObject(n, "inputs"), "image", name);
	}
	ASSERT_TRUE(jobfiles_collect(g, info, err, sizeof err) == NULL);
	ASSERT_STREQ(err, "the graph reads more than 64 files");
	cJSON_DeleteItemFromObject(g, "0");
	l = jobfiles_collect(g, info, err, sizeof err);
	ASSERT_EQ(cJSON_GetArraySize(l), JOBFILES_MAX);
	cJSON_Delete(l);
	cJSON_Delete(g);
	cJSON_Delete(info);
}

const struct unit_test test_jobfiles[] = {
	{ "collect", test_collect },
	{ "refused", test_refused },
	{ "too_many", test_too_many },
	{ NULL, NULL },
};
