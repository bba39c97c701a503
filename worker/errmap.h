/*
 * ComfyUI failures to stable error codes (docs/design.md §5) and readable
 * messages. Pure functions over the reply bodies and event data, so every
 * mapping is unit-tested on captured shapes.
 */
#ifndef COMFYQ_ERRMAP_H
#define COMFYQ_ERRMAP_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "errcode.h"

enum errcode errmap_prompt_refused(
    long status, const char *body, size_t blen, char *msg, size_t len);
int errmap_node_errors(
    const cJSON *ne, enum errcode *code, char *msg, size_t len);
enum errcode errmap_execution_error(const cJSON *data, char *msg, size_t len);
int	     errmap_is_gpu_fault(const char *text);

#endif
