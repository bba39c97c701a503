/*
 * The files a job's graph reads from ComfyUI's folders, as the paths
 * job_files records (lua/janitor.lua) so the file cleanup keeps them
 * while the job runs: "input/comfyq/<jid>/image.png", "input/faces/a.png",
 * "output/x.png" for a " [output]" annotated name.
 */
#ifndef COMFYQ_JOBFILES_H
#define COMFYQ_JOBFILES_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define JOBFILES_MAX	  64  /* job_files takes at most this many */
#define JOBFILES_PATH_MAX 512 /* and paths up to this long */

cJSON *jobfiles_collect(
    const cJSON *graph, const cJSON *objinfo, char *err, size_t errlen);

#endif
