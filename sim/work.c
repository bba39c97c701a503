/*
 * What each node class does, in the sim's terms. Values are small
 * descriptors (an IMAGE is a size, a batch and where its pixels come
 * from), mixed into 64-bit seeds so that every output depends on every
 * input that matters: the same graph and seed give the same pixels, a
 * different seed or prompt text different ones. Time: loading a checkpoint
 * other than the one on the "GPU" costs --model-load-ms (also when a
 * sampler needs a model that /free or an OOM unloaded), and counts as one
 * load (GET /sim/stats); a sampler takes
 * steps x --step-ms with a progress event per step; VHS_VideoCombine
 * reports a step per frame; other nodes take --node-ms. work_plan() says
 * how long a node takes, work_finish() computes its outputs and writes its
 * files. Errors come back as the exception ComfyUI would report.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stb/stb_image.h>

#include "sim.h"
#include "util.h"
#include "xmalloc.h"

static const char *loaded_ckpt; /* the model on the GPU, or NULL */

static struct node_result *
result_new(int n)
{
	struct node_result *r = xcalloc(1, sizeof *r);

	r->refs = 1;
	r->n = n;
	r->out = xcalloc(n > 0 ? (size_t)n : 1, sizeof *r->out);
	return (r);
}

struct node_result *
result_ref(struct node_result *r)
{
	r->refs++;
	return (r);
}

void
result_unref(struct node_result *r)
{
	int i;

	if (r == NULL || --r->refs > 0)
		return;
	for (i = 0; i < r->n; i++)
		free(r->out[i].path);
	cJSON_Delete(r->ui);
	free(r->out);
	free(r);
}

/* str() of a value, as format_value() shows it in current_inputs. */
const char *
value_repr(const struct value *v)
{
	switch (v->t) {
	case V_MODEL:
		return (
		    "<comfy.model_patcher.ModelPatcher object at 0x7f3c5a1e2d90>");
	case V_CLIP:
		return ("<comfy.sd.CLIP object at 0x7f3c5a1e3a10>");
	case V_VAE:
		return ("<comfy.sd.VAE object at 0x7f3c5a1e4b50>");
	case V_COND:
		return (
		    "[[tensor([[[-0.3884,  0.0229, -0.0523,  ..., -0.4902, -0.3066,  0.0674]]]), {'pooled_output': tensor([[-0.1294,  0.2712, ...]])}]]");
	case V_LATENT:
		return (
		    "{'samples': tensor([[[[0., 0., 0.,  ..., 0., 0., 0.]]]])}");
	case V_IMAGE:
	case V_MASK:
		return (
		    "tensor([[[[0.5020, 0.5020, 0.5020],\n          ...]]]])");
	case V_CNET:
		return (
		    "<comfy.controlnet.ControlLora object at 0x7f3c5a1e5c20>");
	case V_CLIPV:
		return (
		    "<comfy.clip_vision.ClipVisionModel object at 0x7f3c5a1e6d30>");
	case V_IPADAPTER:
		return (
		    "{'clipvision': {...}, 'ipadapter': {...}, 'insightface': {...}}");
	case V_FILES:
		return ("(True, [...])");
	case V_NONE:
		break;
	}
	return ("None");
}

static uint64_t
w_mix(uint64_t a, uint64_t b)
{
	uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

static uint64_t
w_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (s != NULL && *s != '\0')
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return (h);
}

static uint64_t
w_dbits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof u);
	return (u);
}

static cJSON *
w_lit(const struct graph *g, int i, const char *name)
{
	return (cJSON_GetObjectItemCaseSensitive(g->v[i].inputs, name));
}

static double
w_num(const struct graph *g, int i, const char *name, double def)
{
	cJSON *v = w_lit(g, i, name);

	if (cJSON_IsNumber(v))
		return (v->valuedouble);
	if (cJSON_IsBool(v))
		return (cJSON_IsTrue(v));
	return (def);
}

static const char *
w_str(const struct graph *g, int i, const char *name)
{
	cJSON *v = w_lit(g, i, name);

	return (cJSON_IsString(v) ? v->valuestring : "");
}

/* The value a linked input carries, or NULL with the exception a node
 * gets when a literal stands where a link belongs. */
static const struct value *
w_in(const struct graph *g, int i, struct node_result **res, const char *name,
    struct pyexc *exc)
{
	cJSON	   *v = w_lit(g, i, name);
	const char *src;
	int	    slot, s;

	if (v == NULL)
		return (NULL);
	if (!graph_link(v, &src, &slot) || (s = graph_find(g, src)) < 0 ||
	    res[s] == NULL || slot < 0 || slot >= res[s]->n) {
		if (exc != NULL)
			py_exc(exc, "AttributeError",
			    "'%s' object has no attribute 'clone'",
			    cJSON_IsString(v) ? "str" : "int");
		return (NULL);
	}
	return (&res[s]->out[slot]);
}

static void
w_copy(struct value *dst, const struct value *src)
{
	*dst = *src;
	dst->path = src->path != NULL ? xstrdup(src->path) : NULL;
}

static int
w_round(double d)
{
	return ((int)nearbyint(d));
}

/* How long node i takes (before it runs). */
int
work_plan(const struct graph *g, int i, struct node_result **res,
    struct work *w, struct pyexc *exc)
{
	const struct value *m, *img;

	memset(w, 0, sizeof *w);
	w->load_ms = sim.cfg.node_ms;
	w->step_ms = sim.cfg.step_ms;
	switch (g->v[i].cls->kind) {
	case NK_CKPT:
	case NK_CKPT_VIDEO:
		if (loaded_ckpt == NULL ||
		    strcmp(loaded_ckpt, w_str(g, i, "ckpt_name")) != 0) {
			w->load_ms += sim.cfg.model_load_ms;
			stats_model_load();
		}
		break;
	case NK_KSAMPLER:
		if ((m = w_in(g, i, res, "model", exc)) == NULL)
			return (-1);
		if (m->ckpt != loaded_ckpt) {
			w->load_ms += sim.cfg.model_load_ms;
			stats_model_load();
		}
		w->steps = (int)w_num(g, i, "steps", 20);
		break;
	case NK_VHS_COMBINE:
		if ((img = w_in(g, i, res, "images", exc)) == NULL)
			return (-1);
		w->steps = img->batch;
		w->progress_only = 1;
		break;
	default:
		break;
	}
	return (0);
}

static const char *
w_list_entry(const struct strlist *l, const char *name)
{
	size_t k;

	for (k = 0; k < l->n; k++)
		if (strcmp(l->v[k], name) == 0)
			return (l->v[k]);
	return (NULL);
}

static int
w_list_match(const struct strlist *l, const char *a, const char *b)
{
	size_t k;

	for (k = 0; k < l->n; k++)
		if (str_icontains(l->v[k], a) &&
		    (b == NULL || str_icontains(l->v[k], b)))
			return (1);
	return (0);
}

/* IPAdapterUnifiedLoaderFaceID: the preset's files must be installed. */
static int
w_faceid_files(const struct graph *g, int i, struct pyexc *exc)
{
	const char *preset = w_str(g, i, "preset");

	if (sim.clip_vision.n == 0) {
		py_exc(exc, "Exception", "ClipVision model not found.");
		return (-1);
	}
	if (!w_list_match(&sim.ipadapters, "faceid", NULL)) {
		py_exc(exc, "Exception", "IPAdapter model not found.");
		return (-1);
	}
	if ((strcmp(preset, "FACEID") == 0 ||
		strncmp(preset, "FACEID PLUS", 11) == 0) &&
	    !w_list_match(&sim.loras, "faceid", "lora")) {
		py_exc(exc, "Exception", "LoRA model not found.");
		return (-1);
	}
	return (0);
}

static int
w_load_image(
    const struct graph *g, int i, struct node_result *r, struct pyexc *exc)
{
	char path[8192];
	int  w, h, n;

	path_annotated(w_str(g, i, "image"), sim.input_dir, path, sizeof path);
	if (!stbi_info(path, &w, &h, &n)) {
		py_exc(exc, "PIL.UnidentifiedImageError",
		    "cannot identify image file '%s'", path);
		return (-1);
	}
	r->out[0] = (struct value){
		.t = V_IMAGE, .w = w, .h = h, .batch = 1, .path = xstrdup(path)
	};
	r->out[1] = (struct value){ .t = V_MASK, .w = 64, .h = 64, .batch = 1 };
	return (0);
}

static void
w_scale(const struct graph *g, int i, const struct value *img, struct value *o)
{
	int w = (int)w_num(g, i, "width", 0), h = (int)w_num(g, i, "height", 0);

	w_copy(o, img);
	if (w == 0 && h == 0)
		return;
	if (w == 0)
		w = w_round((double)img->w * h / img->h) > 1
		    ? w_round((double)img->w * h / img->h)
		    : 1;
	else if (h == 0)
		h = w_round((double)img->h * w / img->w) > 1
		    ? w_round((double)img->h * w / img->w)
		    : 1;
	o->w = w;
	o->h = h;
}

static char *
w_preview_prefix(void)
{
	static const char letters[] = "abcdefghijklmnopqrstupvxyz";
	char		  s[6];
	int		  k;

	for (k = 0; k < 5; k++)
		s[k] = letters[rand_u64() % (sizeof letters - 1)];
	s[5] = '\0';
	return (xasprintf("ComfyUI_temp_%s", s));
}

#define IN(name)                                                               \
	do {                                                                   \
		if ((a = w_in(g, i, res, (name), exc)) == NULL)                \
			goto fail;                                             \
	} while (0)

/*
 * Runs node i: its outputs into *out (with the UI dict of an output node).
 * faults: OUT_* flags for the files it writes. Returns 0, or -1 with exc.
 */
int
work_finish(const struct graph *g, int i, struct node_result **res,
    const char *prompt_id, const struct exec_fault *f, struct node_result **out,
    struct pyexc *exc)
{
	const struct node_class *cls = g->v[i].cls;
	struct node_result	*r = result_new((int)node_noutputs(cls));
	const struct value	*a, *b, *c;
	cJSON			*list;
	char			*prefix;
	int			 of = 0, rc;
	uint64_t		 s;

	(void)prompt_id;
	if (f != NULL)
		of = (f->fired & FXB(FX_BLACK) ? OUT_BLACK : 0) |
		    (f->fired & FXB(FX_TRUNCATED) ? OUT_TRUNCATED : 0) |
		    (f->fired & FXB(FX_TINY) ? OUT_TINY : 0) |
		    (f->fired & FXB(FX_HUGE) ? OUT_HUGE : 0);
	switch (cls->kind) {
	case NK_CKPT:
	case NK_CKPT_VIDEO:
		loaded_ckpt =
		    w_list_entry(&sim.checkpoints, w_str(g, i, "ckpt_name"));
		s = w_hash(w_str(g, i, "ckpt_name"));
		r->out[0] = (struct value){
			.t = V_MODEL, .seed = s, .ckpt = loaded_ckpt
		};
		r->out[1] = (struct value){ .t = cls->kind == NK_CKPT ? V_CLIP
								      : V_CLIPV,
			.seed = w_mix(s, 1) };
		r->out[2] = (struct value){ .t = V_VAE, .seed = w_mix(s, 2) };
		break;
	case NK_CLIP_ENCODE:
		IN("clip");
		r->out[0] = (struct value){ .t = V_COND,
			.seed = w_mix(a->seed, w_hash(w_str(g, i, "text"))) };
		break;
	case NK_EMPTY_LATENT:
		r->out[0] = (struct value){ .t = V_LATENT,
			.w = (int)w_num(g, i, "width", 512) / 8 * 8,
			.h = (int)w_num(g, i, "height", 512) / 8 * 8,
			.batch = (int)w_num(g, i, "batch_size", 1) };
		break;
	case NK_KSAMPLER:
		IN("latent_image");
		w_copy(&r->out[0], a);
		s = a->seed;
		IN("model");
		loaded_ckpt = a->ckpt;
		s = w_mix(s, a->seed);
		IN("positive");
		s = w_mix(s, a->seed);
		IN("negative");
		s = w_mix(s, a->seed);
		s = w_mix(s, w_dbits(w_num(g, i, "seed", 0)));
		s = w_mix(s, w_dbits(w_num(g, i, "steps", 0)));
		s = w_mix(s, w_dbits(w_num(g, i, "cfg", 0)));
		s = w_mix(s, w_dbits(w_num(g, i, "denoise", 1)));
		s = w_mix(s, w_hash(w_str(g, i, "sampler_name")));
		s = w_mix(s, w_hash(w_str(g, i, "scheduler")));
		r->out[0].seed = s;
		r->out[0].solid = 0;
		break;
	case NK_VAE_DECODE:
		IN("samples");
		r->out[0] = (struct value){ .t = V_IMAGE,
			.w = a->w,
			.h = a->h,
			.batch = a->batch,
			.seed = a->seed };
		break;
	case NK_VAE_ENCODE:
	case NK_SVD_COND:
		IN(cls->kind == NK_VAE_ENCODE ? "pixels" : "init_image");
		s = w_mix(a->seed, a->rgb ^ (uint64_t)a->invert);
		if (cls->kind == NK_VAE_ENCODE) {
			r->out[0] = (struct value){ .t = V_LATENT,
				.w = a->w / 8 * 8,
				.h = a->h / 8 * 8,
				.batch = a->batch,
				.seed = s };
			break;
		}
		r->out[0] = (struct value){ .t = V_COND, .seed = w_mix(s, 1) };
		r->out[1] = (struct value){ .t = V_COND, .seed = w_mix(s, 2) };
		r->out[2] = (struct value){ .t = V_LATENT,
			.w = (int)w_num(g, i, "width", 1024) / 8 * 8,
			.h = (int)w_num(g, i, "height", 576) / 8 * 8,
			.batch = (int)w_num(g, i, "video_frames", 14),
			.seed = w_mix(s, 3) };
		break;
	case NK_SAVE_IMAGE:
	case NK_PREVIEW_IMAGE:
		IN("images");
		prefix = cls->kind == NK_SAVE_IMAGE
		    ? xstrdup(w_str(g, i, "filename_prefix"))
		    : w_preview_prefix();
		r->ui = cJSON_CreateObject();
		list = cJSON_AddArrayToObject(r->ui, "images");
		rc = output_images(a, prefix, cls->kind == NK_PREVIEW_IMAGE, of,
		    f != NULL && (f->fired & FXB(FX_SAME_NAME)) ? f->same_name
								: NULL,
		    list, exc);
		free(prefix);
		if (rc == -1)
			goto fail;
		break;
	case NK_LORA:
	case NK_LORA_MODEL:
		s = w_mix(w_hash(w_str(g, i, "lora_name")),
		    w_dbits(w_num(g, i, "strength_model", 1)));
		IN("model");
		w_copy(&r->out[0], a);
		if (w_num(g, i, "strength_model", 1) != 0 ||
		    w_num(g, i, "strength_clip", 0) != 0)
			r->out[0].seed = w_mix(a->seed, s);
		if (cls->kind == NK_LORA_MODEL)
			break;
		IN("clip");
		w_copy(&r->out[1], a);
		if (w_num(g, i, "strength_clip", 1) != 0)
			r->out[1].seed = w_mix(a->seed,
			    w_mix(s, w_dbits(w_num(g, i, "strength_clip", 1))));
		break;
	case NK_CNET_LOADER:
		r->out[0] = (struct value){ .t = V_CNET,
			.seed = w_hash(w_str(g, i, "control_net_name")) };
		break;
	case NK_CNET_APPLY:
		IN("control_net");
		c = a;
		IN("image");
		s = w_mix(c->seed, w_mix(a->seed, a->rgb));
		s = w_mix(s, w_dbits(w_num(g, i, "strength", 1)));
		IN("positive");
		b = a;
		IN("negative");
		w_copy(&r->out[0], b);
		w_copy(&r->out[1], a);
		if (w_num(g, i, "strength", 1) != 0) {
			r->out[0].seed = w_mix(b->seed, s);
			r->out[1].seed = w_mix(a->seed, s);
		}
		break;
	case NK_LOAD_IMAGE:
		if (w_load_image(g, i, r, exc) == -1)
			goto fail;
		break;
	case NK_EMPTY_IMAGE:
		r->out[0] = (struct value){ .t = V_IMAGE,
			.w = (int)w_num(g, i, "width", 512),
			.h = (int)w_num(g, i, "height", 512),
			.batch = (int)w_num(g, i, "batch_size", 1),
			.solid = 1,
			.rgb = (uint32_t)w_num(g, i, "color", 0) };
		break;
	case NK_INVERT:
		IN("image");
		w_copy(&r->out[0], a);
		r->out[0].invert = !a->invert;
		break;
	case NK_SCALE:
		IN("image");
		w_scale(g, i, a, &r->out[0]);
		break;
	case NK_SCALE_BY:
		IN("image");
		w_copy(&r->out[0], a);
		r->out[0].w = w_round(a->w * w_num(g, i, "scale_by", 1));
		r->out[0].h = w_round(a->h * w_num(g, i, "scale_by", 1));
		break;
	case NK_FACEID_LOADER:
		IN("model");
		if (w_faceid_files(g, i, exc) == -1)
			goto fail;
		w_copy(&r->out[0], a);
		r->out[0].seed = w_mix(a->seed, w_hash(w_str(g, i, "preset")));
		r->out[1] = (struct value){ .t = V_IPADAPTER,
			.seed = w_hash(w_str(g, i, "preset")) };
		break;
	case NK_FACEID:
		IN("image");
		b = a;
		IN("ipadapter");
		IN("model");
		w_copy(&r->out[0], a);
		r->out[0].seed = w_mix(
		    a->seed, w_mix(b->seed, w_dbits(w_num(g, i, "weight", 1))));
		w_copy(&r->out[1], b);
		break;
	case NK_VIDEO_CFG:
		IN("model");
		w_copy(&r->out[0], a);
		r->out[0].seed =
		    w_mix(a->seed, w_dbits(w_num(g, i, "min_cfg", 1)));
		break;
	case NK_VHS_COMBINE:
		IN("images");
		r->ui = cJSON_CreateObject();
		list = cJSON_AddArrayToObject(r->ui, "gifs");
		if (output_video(a, w_num(g, i, "frame_rate", 8),
			w_str(g, i, "filename_prefix"), w_str(g, i, "format"),
			cJSON_IsTrue(w_lit(g, i, "save_output")),
			cJSON_IsTrue(w_lit(g, i, "pingpong")), of, list,
			exc) == -1)
			goto fail;
		r->out[0] = (struct value){ .t = V_FILES };
		break;
	case NK_SAVE_WEBP:
		IN("images");
		r->ui = cJSON_CreateObject();
		list = cJSON_AddArrayToObject(r->ui, "images");
		if (output_webp(a, w_num(g, i, "fps", 6),
			w_str(g, i, "filename_prefix"), of, list, exc) == -1)
			goto fail;
		if (a->batch > 1) {
			list = cJSON_AddArrayToObject(r->ui, "animated");
			cJSON_AddItemToArray(list, cJSON_CreateTrue());
		}
		break;
	}
	*out = r;
	return (0);
fail:
	result_unref(r);
	return (-1);
}

void
work_unload_models(void)
{
	loaded_ckpt = NULL;
}

int
work_model_loaded(void)
{
	return (loaded_ckpt != NULL);
}

/* The checkpoint on the "GPU" (NULL: none) and the loads so far. */
const char *
work_loaded_ckpt(void)
{
	return (loaded_ckpt);
}
