/*
 * The independent errors of one job spec, collected for a caller that
 * reports them all (the HTTP API's 400 lists them by field): each is the
 * text the first-error path writes ("steps: 150 not in 1..100"), in the
 * order the checks run, so the first is the one wf_job_new() reports. The
 * checks that take a struct wf_errors stop at the first error when it is
 * NULL, as before.
 */
#ifndef COMFYQ_WFERRORS_H
#define COMFYQ_WFERRORS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "controlnet.h"
#include "lora.h"

#define WF_ERRORS_MAX 32 /* errors one spec reports */
#define WF_ERROR_LEN  512

struct wf_errors {
	char   first[2048];			 /* the first error, whole */
	char   msg[WF_ERRORS_MAX][WF_ERROR_LEN]; /* each, cut to fit */
	int    n;
	int    more; /* errors past the last entry, counted in it */
	size_t cut;  /* where the last entry's "(... and N more)" goes */
};

void wf_errors_add(struct wf_errors *we, const char *msg);
int  wf_errors_fail(struct wf_errors *we, const char *msg);
int  wf_errors_note(struct wf_errors *we, const char *msg);
int  wf_errors_loras(const cJSON *loras, struct lora_list *ll,
     struct wf_errors *we, char *err, size_t errlen);
void wf_errors_cns(const cJSON *arr, const cJSON *inputs,
    const struct cn_map *m, struct wf_errors *we, char *err, size_t errlen);

#endif
