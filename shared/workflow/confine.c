/*
 * File names in graphs (see confine.h).
 *
 * The table below is the one place that says which (class, input) pairs
 * open a file. A class we know nothing of (not in this table, not in
 * graph.c's) may be a custom loader, so an input of it whose name looks
 * like a file's (image, video, audio, file, path, url, ..._path, ...)
 * and whose value is a string is held to the same rule; a link there is
 * let through, as it usually carries a tensor. Model names (inputs named
 * *_name) are checked against /object_info by objinfo.c; here they only
 * get the name rule, so a path is refused before ComfyUI sees it.
 */
#include <stdio.h>
#include <string.h>

#include "confine.h"
#include "errout.h"
#include "graph.h"

static const struct {
	const char *class;
	const char *input;
	int	    upload; /* a job's inputs.<node id> may fill it */
} confine_files[] = {
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

#define CONFINE_NFILES (sizeof confine_files / sizeof confine_files[0])

/* Input names of unknown classes taken for file names. */
static const char *const confine_guess_names[] = { "image", "video", "audio",
	"file", "path", "filename", "filepath", "directory", "dir", "folder",
	"url", "image_file", "video_file", "audio_file" };
static const char *const confine_guess_suffixes[] = { "_image", "_video",
	"_audio", "_path", "_filename", "_filepath", "_dir", "_directory",
	"_folder", "_url" };

static int
confine_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return (n > m && strcmp(s + n - m, suffix) == 0);
}

static int
confine_looks_like_file(const char *input)
{
	size_t i;

	for (i = 0;
	     i < sizeof confine_guess_names / sizeof *confine_guess_names; i++)
		if (strcmp(input, confine_guess_names[i]) == 0)
			return (1);
	for (i = 0;
	     i < sizeof confine_guess_suffixes / sizeof *confine_guess_suffixes;
	     i++)
		if (confine_ends_with(input, confine_guess_suffixes[i]))
			return (1);
	return (0);
}

/* ckpt_name, lora_name, clip_name1: a model file from /object_info. */
static int
confine_is_model(const char *input)
{
	const char *p = strstr(input, "_name"), *q;

	for (; p != NULL; p = strstr(p + 1, "_name")) {
		for (q = p + 5; *q >= '0' && *q <= '9'; q++)
			;
		if (*q == '\0' && p > input)
			return (1);
	}
	return (0);
}

/* What input of a node of class cls holds; cls may be NULL. */
enum confine_kind
confine_input(const char *cls, const char *input)
{
	size_t i;
	int    known = 0;

	for (i = 0; cls != NULL && i < CONFINE_NFILES; i++) {
		if (strcmp(confine_files[i].class, cls) != 0)
			continue;
		known = 1;
		if (strcmp(confine_files[i].input, input) == 0)
			return (CONFINE_FILE);
	}
	if (confine_is_model(input))
		return (CONFINE_MODEL);
	if (known || (cls != NULL && graph_class_find(cls) != NULL))
		return (CONFINE_NONE);
	return (confine_looks_like_file(input) ? CONFINE_GUESS : CONFINE_NONE);
}

/* 1 when a job's inputs.<node id> may fill the image of a node of cls. */
int
confine_upload_class(const char *cls)
{
	size_t i;

	for (i = 0; cls != NULL && i < CONFINE_NFILES; i++)
		if (confine_files[i].upload &&
		    strcmp(confine_files[i].class, cls) == 0)
			return (1);
	return (0);
}

/*
 * The rule every name obeys: 1..CONFINE_NAME_MAX bytes of a relative
 * path of non-empty components, no "..", no "." component, no backslash,
 * no ':' (drive letters, URLs), no control character, and no trailing
 * annotation (ComfyUI reads a name ending in "[output]", "[input]" or
 * "[temp]" as one in that folder). Returns 0, or -1 with the reason in
 * err ("is an absolute path").
 */
int
confine_name(const char *name, char *err, size_t errlen)
{
	const char *p, *c, *slash;
	size_t	    n = strlen(name), len;

	if (n == 0)
		ERR_OUT("is empty");
	if (n > CONFINE_NAME_MAX)
		ERR_OUT("is over %d bytes", CONFINE_NAME_MAX);
	if (name[0] == '/')
		ERR_OUT("is an absolute path");
	if (strstr(name, "..") != NULL)
		ERR_OUT("holds '..'");
	for (p = name; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			ERR_OUT("holds a control character");
		if (*p == '\\')
			ERR_OUT("holds a backslash");
		if (*p == ':')
			ERR_OUT("holds ':' (a drive letter or a URL)");
	}
	for (c = name;; c = slash + 1) {
		slash = strchr(c, '/');
		len = slash != NULL ? (size_t)(slash - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.'))
			ERR_OUT("has an empty or '.' path component");
		if (slash == NULL)
			break;
	}
	if (name[n - 1] == ']')
		ERR_OUT("ends in an annotation such as ' [output]'");
	return (0);
}

/*
 * 1 when list (the graph-files setting: comma-separated names, and
 * prefixes ending in '/') lets any job name name.
 */
int
confine_listed(const char *list, const char *name)
{
	const char *p = list, *end;
	size_t	    n;

	while (*p != '\0') {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n > 0 &&
		    (p[n - 1] == '/'
			    ? strncmp(name, p, n) == 0
			    : strlen(name) == n && memcmp(name, p, n) == 0))
			return (1);
		p = *end == ',' ? end + 1 : end;
	}
	return (0);
}

/* Checks the graph-files setting. Returns 0, or -1 with err. */
int
confine_list_check(const char *list, char *err, size_t errlen)
{
	const char *p = list, *end;
	char	    e[CONFINE_NAME_MAX + 2], why[128];
	size_t	    n;

	while (*p != '\0') {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n > CONFINE_NAME_MAX)
			ERR_OUT("graph-files: an entry over %d bytes",
			    CONFINE_NAME_MAX);
		memcpy(e, p, n);
		e[n] = '\0';
		if (n > 1 && e[n - 1] == '/')
			e[n - 1] = '\0'; /* a prefix */
		if (confine_name(e, why, sizeof why) == -1)
			ERR_OUT("graph-files: '%.*s' %s", (int)n, p, why);
		if (strcmp(e, "comfyq") == 0 || strncmp(e, "comfyq/", 7) == 0)
			ERR_OUT(
			    "graph-files: '%.*s': comfyq/ holds the jobs' own uploads",
			    (int)n, p);
		p = *end == ',' ? end + 1 : end;
	}
	return (0);
}

/*
 * Checks the name a job gave to what ("node 3 (LoadImage) input image"),
 * an input of kind k. list is the worker's graph-files, or NULL where it
 * is not known (the CLI at submit): then only the name rule applies.
 * hint, when not NULL, says how the job could send the file instead.
 * Returns 0, or -1 with err.
 */
int
confine_value(const char *what, enum confine_kind k, const char *name,
    const char *list, const char *hint, char *err, size_t errlen)
{
	char why[128];

	if (k == CONFINE_NONE)
		return (0);
	if (confine_name(name, why, sizeof why) == -1)
		ERR_OUT("%s: '%.100s' %s", what, name, why);
	if (k == CONFINE_MODEL || list == NULL || confine_listed(list, name))
		return (0);
	ERR_OUT("%s: '%.100s' is not a file of this job (%s%s)", what, name,
	    hint != NULL ? hint : "",
	    hint != NULL
		? "; other files only as the worker's graph-files setting lists them"
		: "only files the worker's graph-files setting lists may be named here");
}

/*
 * Checks every file and model name of a raw graph. inputs is the job's
 * inputs object (or NULL): a LoadImage (or LoadImageMask) whose node id
 * is a key of it gets the job's upload, so its own value does not count.
 * list as for confine_value(). Returns 0, or -1 with err naming the node
 * and the input.
 */
int
confine_graph(const cJSON *graph, const cJSON *inputs, const char *list,
    char *err, size_t errlen)
{
	const cJSON	 *node, *v;
	const char	 *cls, *id;
	enum confine_kind k;
	char		  what[GRAPH_ID_MAX + 160], hint[GRAPH_ID_MAX + 48];
	int		  slot, up;

	cJSON_ArrayForEach(node, graph) {
		cls = graph_node_class(node);
		up = confine_upload_class(cls);
		cJSON_ArrayForEach(
		    v, cJSON_GetObjectItemCaseSensitive(node, "inputs")) {
			if ((k = confine_input(cls, v->string)) == CONFINE_NONE)
				continue;
			if (up && strcmp(v->string, "image") == 0 &&
			    cJSON_GetObjectItemCaseSensitive(
				inputs, node->string) != NULL)
				continue; /* the job's upload goes here */
			snprintf(what, sizeof what,
			    "node %s (%.64s) input %.64s", node->string,
			    cls != NULL ? cls : "?", v->string);
			if (!cJSON_IsString(v)) {
				if (k == CONFINE_FILE)
					ERR_OUT("%s: must be a file name%s",
					    what,
					    graph_link_parse(v, &id, &slot)
						? ", not a link"
						: "");
				continue;
			}
			snprintf(hint, sizeof hint,
			    "send the image as inputs.%s", node->string);
			if (confine_value(what, k, v->valuestring, list,
				up ? hint : NULL, err, errlen) == -1)
				return (-1);
		}
	}
	return (0);
}
