/*
 * Checks a rendered graph against ComfyUI's GET /object_info before it is
 * submitted: every class is installed, and every literal value of a combo
 * input (checkpoint, LoRA and ControlNet file names, samplers, presets) is
 * one ComfyUI offers. The worker keeps /object_info cached; when this
 * check fails it fetches /object_info again once (a file may have been
 * added since) and checks again before failing the job with
 * invalid_input and this message, so nothing runs with a missing file.
 */
#ifndef COMFYQ_OBJINFO_H
#define COMFYQ_OBJINFO_H

#include <stddef.h>

#include <cjson/cJSON.h>

int objinfo_check(
    const cJSON *graph, const cJSON *object_info, char *err, size_t errlen);

#endif
