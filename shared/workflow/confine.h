/*
 * Which node inputs name files, and which names a job may give them. A
 * LoadImage opens what its input names relative to ComfyUI's input
 * folder, or its output or temp folder when the name ends in an
 * annotation such as " [output]"; VideoHelperSuite's *Path nodes open
 * any path. A job must read only what it brought, so in a raw graph such
 * an input holds a name only where the job's inputs fill it (the worker
 * uploads the image and puts ComfyUI's name for it there) or where the
 * operator's graph-files list names it; and every name, a model's too,
 * is relative, without "..", backslashes, drive letters, control
 * characters or annotations. README.md (Raw graphs) has the rules.
 */
#ifndef COMFYQ_CONFINE_H
#define COMFYQ_CONFINE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define CONFINE_NAME_MAX 1024 /* a file or model name, in bytes */

enum confine_kind {
	CONFINE_NONE,
	CONFINE_FILE,  /* a file the node opens (the class table) */
	CONFINE_GUESS, /* a class we do not know; the input looks like one */
	CONFINE_MODEL, /* a model name: ckpt_name, lora_name, ... */
};

enum confine_kind confine_input(const char *cls, const char *input);
int		  confine_upload_class(const char *cls);
int		  confine_name(const char *name, char *err, size_t errlen);
int		  confine_listed(const char *list, const char *name);
int confine_list_check(const char *list, char *err, size_t errlen);
int confine_value(const char *what, enum confine_kind k, const char *name,
    const char *list, const char *hint, char *err, size_t errlen);
int confine_graph(const cJSON *graph, const cJSON *inputs, const char *list,
    char *err, size_t errlen);

#endif
