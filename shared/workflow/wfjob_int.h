/*
 * The job object the workflow layer's job files share (wfjob.c checks a
 * spec and builds it, wfrender.c renders its graph); callers see it only
 * through wfjob.h.
 */
#ifndef COMFYQ_WFJOB_INT_H
#define COMFYQ_WFJOB_INT_H

#include <cjson/cJSON.h>

#include "controlnet.h"
#include "lora.h"
#include "wfjob.h"

/* Images of a job: its own (template image params or a raw graph's
 * LoadImage inputs), then one per ControlNet. */
#define WF_INPUTS_MAX (WF_IMAGES_MAX + CN_MAX)

struct wf_job {
	const struct wf_template *t;	  /* or NULL for a raw graph */
	cJSON			 *values; /* template: one value per param */
	cJSON			 *graph;  /* raw: a copy, prompt tags cut */
	struct cn_map		  cn;
	double			  lora_scale;
	struct lora_list	  loras;
	struct cn_list		  cns;
	struct wf_input		  in[WF_INPUTS_MAX];
	size_t			  nin;
	int			  cn_first; /* index of controlnet0 in in[] */
	char			  ph[WF_INPUTS_MAX][WF_NAME_MAX + 16];
	struct wf_expect	  expect;
};

#endif
