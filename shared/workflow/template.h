/*
 * Workflow templates (workflows/NAME.json): an API-format graph and the
 * schema of its parameters in one file. A producer names a template and
 * gives params; the schema says which node input each param lands in, its
 * type, default and bounds, and what the job is expected to produce. The
 * registry is loaded once at start and is read-only afterwards, so threads
 * may share it. README.md documents the file format.
 *
 * One param's schema and rules are in wfparam.h; template.c holds the
 * file and the registry, wfresolve.c the resolution of a job's params.
 */
#ifndef COMFYQ_TEMPLATE_H
#define COMFYQ_TEMPLATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "graph.h"
#include "wferrors.h"
#include "wfparam.h"

#define WF_FILE_MAX	 (1 << 20)
#define WF_TEMPLATES_MAX 256
#define WF_PARAMS_MAX	 64 /* params of one template */
#define WF_IMAGES_MAX	 32 /* image params of a template, images of a job */

enum wf_kind { WF_KIND_IMAGE, WF_KIND_VIDEO };

/* What a template's output is, by the names of the params that set it. */
struct wf_output {
	enum wf_kind	  kind;
	char		  width[WF_NAME_MAX], height[WF_NAME_MAX];
	char		  count[WF_NAME_MAX]; /* images per output node */
	char		  fps[WF_NAME_MAX], duration[WF_NAME_MAX];
	struct wf_target *frames; /* where fps x duration goes */
	size_t		  nframes;
	long long	  max_frames;
	int		  uniform; /* a one-colour output is right */
};

struct wf_registry;
struct wf_template;

struct wf_registry	 *wf_load(const char *dir, char *err, size_t errlen);
void			  wf_registry_free(struct wf_registry *r);
size_t			  wf_count(const struct wf_registry *r);
const struct wf_template *wf_at(const struct wf_registry *r, size_t i);
const struct wf_template *wf_find(
    const struct wf_registry *r, const char *name);

const char	      *wf_name(const struct wf_template *t);
const char	      *wf_description(const struct wf_template *t);
const cJSON	      *wf_graph(const struct wf_template *t);
const cJSON	      *wf_json(const struct wf_template *t);
size_t		       wf_nparams(const struct wf_template *t);
const struct wf_param *wf_param_at(const struct wf_template *t, size_t i);
const struct wf_param *wf_param_find(
    const struct wf_template *t, const char *name);
const struct wf_output *wf_output(const struct wf_template *t);
int			wf_accepts_loras(const struct wf_template *t);
int			wf_accepts_controlnets(const struct wf_template *t);
int	    wf_vram_mb(const struct wf_template *t, long long pixels);
const char *wf_error_code(const struct wf_template *t, const char *message);

int wf_resolve(const struct wf_template *t, const cJSON *params,
    const cJSON *inputs, cJSON **values, struct wf_errors *we, char *err,
    size_t errlen);

#endif
