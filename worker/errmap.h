/*
 * ComfyUI failures to stable error codes (DESIGN.md §5) and readable
 * messages. Pure functions over the reply bodies and event data, so every
 * mapping is unit-tested on captured shapes.
 */
#ifndef COMFYQ_ERRMAP_H
#define COMFYQ_ERRMAP_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "errcode.h"

enum errcode errmap_prompt_refused(long, const char *, size_t, char *, size_t);
int	     errmap_node_errors(const cJSON *, enum errcode *, char *, size_t);
enum errcode errmap_execution_error(const cJSON *, char *, size_t);
int	     errmap_is_gpu_fault(const char *);

#endif
