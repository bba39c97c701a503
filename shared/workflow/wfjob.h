/*
 * One job's workflow: the spec (a template and params, or a raw graph),
 * its LoRAs, ControlNets and input images, checked and turned into the
 * API-format graph sent to ComfyUI. The worker's order of calls:
 *
 *	wf_job_new()		 check the spec; NULL with a code and reason
 *	wf_job_ninputs(), wf_job_input()
 *				 each image; per image, on the thread pool,
 *	wf_input_prepare()	 fetch, check, Canny or fit: the bytes to
 *				 upload; the worker uploads them and records
 *				 ComfyUI's name for them in wf_input.upload
 *	wf_job_render()		 the graph for POST /prompt
 *	wf_job_expect()		 what the outputs must look like
 *	wf_job_error_code()	 maps an execution_error message (no_face)
 *	wf_job_free()
 *
 * wf_job_model() gives the checkpoints its graph loads (wfmodel.c).
 *
 * The CLI calls wf_job_new() at submit to refuse bad params early, and
 * its render renders with placeholder uploads. The HTTP API calls
 * wf_job_new_all(), which lists every independent error in a struct
 * wf_errors (wferrors.h); its first is wf_job_new()'s.
 */
#ifndef COMFYQ_WFJOB_H
#define COMFYQ_WFJOB_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "controlnet.h"
#include "img.h"
#include "inputs.h"
#include "job.h"
#include "template.h"

struct wf_opts {
	const struct cn_map *cn;	 /* NULL: CN_MAP_DEFAULT */
	double		     lora_scale; /* every LoRA strength x this; 0: 1 */
	int		     raw_deny;	 /* refuse raw graphs */
	const char *graph_files; /* files any raw graph may load (confine.h);
				    NULL: not known here, names only */
};

#define WF_UPLOAD_MAX 256

struct wf_input {
	char	    name[WF_NAME_MAX];	     /* file-safe: face, controlnet0 */
	char	    field[WF_NAME_MAX + 16]; /* for errors: inputs.face */
	const char *source;	   /* base64, data URI or http(s) URL */
	int	    width, height; /* fit to this before upload; 0: keep */
	int	    canny;	   /* Canny edge map before upload */
	double	    low, high;	   /* its thresholds */
	char	    upload[WF_UPLOAD_MAX]; /* set by the worker */
};

struct wf_expect {
	enum wf_kind kind;
	int	     width, height; /* 0: unknown (raw graph) */
	int	     count;	    /* images per output node, 0: unknown */
	int	     frames;	    /* video */
	double	     fps, duration_s;
	int	     vram_mb; /* 0: unknown */
	int	     uniform; /* a one-colour image is right (smoke tests) */
};

#define WF_RENDER_PLACEHOLDERS 0x1 /* un-uploaded inputs: "<upload:NAME>" */

struct wf_job;

struct wf_job	*wf_job_new(const struct wf_registry *reg,
      const struct job_spec *js, const struct wf_opts *opts, const char **code,
      char *err, size_t errlen);
struct wf_job	*wf_job_new_all(const struct wf_registry *reg,
      const struct job_spec *js, const struct wf_opts *opts, struct wf_errors *we,
      const char **code, char *err, size_t errlen);
size_t		 wf_job_ninputs(const struct wf_job *j);
struct wf_input *wf_job_input(struct wf_job *j, size_t i);
cJSON *wf_job_render(struct wf_job *j, const char *job_id, const char *prefix,
    int flags, char *err, size_t errlen);
const struct wf_expect *wf_job_expect(const struct wf_job *j);
const char *wf_job_error_code(const struct wf_job *j, const char *message);
void	    wf_job_free(struct wf_job *j);
int wf_input_prepare(const struct wf_input *in, const struct inputs_opts *io,
    const struct img_limits *lim, unsigned char **out, size_t *len, char *err,
    size_t errlen);
unsigned long long wf_seed(const char *job_id);

/* The checkpoint key of a graph and of a job's rendered graph (wfmodel.c);
 * wf_job_model is -1 with out "" when the job cannot be rendered. */
#define WF_MODEL_MAX 1024
void wf_graph_model(const cJSON *graph, char out[WF_MODEL_MAX + 1]);
int  wf_job_model(struct wf_job *j, char out[WF_MODEL_MAX + 1]);

#endif
