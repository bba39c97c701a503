/*
 * The node classes the sim knows, as ComfyUI declares them: input names,
 * types, defaults, bounds and combo lists, outputs, and whether a class is
 * an output node. Validation, execution and /object_info all read this one
 * table. Core classes follow nodes.py and comfy_extras at ComfyUI v0.8.0;
 * IPAdapterUnifiedLoaderFaceID and IPAdapterFaceID follow cubiq's
 * ComfyUI_IPAdapter_plus, VHS_VideoCombine Kosinkadink's
 * ComfyUI-VideoHelperSuite. Model combos list the sim's configured model
 * files; LoadImage's lists the image files in the input directory.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"
#include "xmalloc.h"

#define MAX_RES 16384

#define LINK(n, t)                                                             \
	{                                                                      \
		.name = (n), .type = IT_LINK, .io = (t)                        \
	}
#define OPTLINK(n, t)                                                          \
	{                                                                      \
		.name = (n), .type = IT_LINK, .io = (t), .flags = IN_OPTIONAL  \
	}
#define NUM(n, ty, io_, d, lo, hi, st, fl)                                     \
	{                                                                      \
		.name = (n), .type = (ty), .io = (io_), .def = (d),            \
		.min = (lo), .max = (hi), .step = (st), .flags = (fl)          \
	}
#define INT(n, d, lo, hi, st)                                                  \
	NUM(n, IT_INT, "INT", d, lo, hi, st, IN_HAS_MIN | IN_HAS_MAX)
#define FLT(n, d, lo, hi, st)                                                  \
	NUM(n, IT_FLOAT, "FLOAT", d, lo, hi, st, IN_HAS_MIN | IN_HAS_MAX)
#define STR(n, d, fl)                                                          \
	{                                                                      \
		.name = (n), .type = IT_STRING, .io = "STRING", .def = (d),    \
		.flags = (fl)                                                  \
	}
#define BOOL(n, d)                                                             \
	{                                                                      \
		.name = (n), .type = IT_BOOLEAN, .io = "BOOLEAN", .def = (d)   \
	}
#define COMBO(n, s)                                                            \
	{                                                                      \
		.name = (n), .type = IT_COMBO, .src = (s)                      \
	}
#define LIST(n, o)                                                             \
	{                                                                      \
		.name = (n), .type = IT_COMBO, .src = CS_STATIC,               \
		.options = (o)                                                 \
	}
#define END                                                                    \
	{                                                                      \
		.name = NULL                                                   \
	}

static const char *const samplers[] = { "euler", "euler_cfg_pp",
	"euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
	"exp_heun_2_x0", "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms",
	"dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
	"dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m",
	"dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
	"dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde",
	"dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis",
	"res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
	"res_multistep_ancestral_cfg_pp", "gradient_estimation",
	"gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3",
	"sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2", NULL };
static const char *const schedulers[] = { "simple", "sgm_uniform", "karras",
	"exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
	"kl_optimal", NULL };
static const char *const upscale[] = { "nearest-exact", "bilinear", "area",
	"bicubic", "lanczos", NULL };
static const char *const crops[] = { "disabled", "center", NULL };
static const char *const faceid_presets[] = { "FACEID",
	"FACEID PLUS - SD1.5 only", "FACEID PLUS V2",
	"FACEID PORTRAIT (style transfer)",
	"FACEID PORTRAIT UNNORM - SDXL only (strong)", NULL };
static const char *const providers[] = { "CPU", "CUDA", "ROCM", "DirectML",
	"OpenVINO", "CoreML", NULL };
static const char *const weight_types[] = { "linear", "ease in", "ease out",
	"ease in-out", "reverse in-out", "weak input", "weak output",
	"weak middle", "strong middle", "style transfer", "composition",
	"strong style transfer", "style and composition",
	"style transfer precise", "composition precise", NULL };
static const char *const combine_embeds[] = { "concat", "add", "subtract",
	"average", "norm average", NULL };
static const char *const embeds_scaling[] = { "V only", "K+V",
	"K+V w/ C penalty", "K+mean(V) w/ C penalty", NULL };
static const char *const vhs_formats[] = { "image/gif", "image/webp",
	"video/16bit-png", "video/8bit-png", "video/ProRes", "video/av1-webm",
	"video/ffmpeg-gif", "video/ffv1-mkv", "video/h264-mp4",
	"video/h265-mp4", "video/nvenc_av1-mp4", "video/nvenc_h264-mp4",
	"video/nvenc_hevc-mp4", "video/webm", NULL };
static const char *const webp_methods[] = { "default", "fastest", "slowest",
	NULL };

static const char *const o_model_clip_vae[] = { "MODEL", "CLIP", "VAE", NULL };
static const char *const o_model_clipv_vae[] = { "MODEL", "CLIP_VISION", "VAE",
	NULL };
static const char *const o_cond[] = { "CONDITIONING", NULL };
static const char *const o_cond2[] = { "CONDITIONING", "CONDITIONING", NULL };
static const char *const n_posneg[] = { "positive", "negative", NULL };
static const char *const o_svd[] = { "CONDITIONING", "CONDITIONING", "LATENT",
	NULL };
static const char *const n_svd[] = { "positive", "negative", "latent", NULL };
static const char *const o_latent[] = { "LATENT", NULL };
static const char *const o_image[] = { "IMAGE", NULL };
static const char *const o_image_mask[] = { "IMAGE", "MASK", NULL };
static const char *const o_model[] = { "MODEL", NULL };
static const char *const o_model_clip[] = { "MODEL", "CLIP", NULL };
static const char *const o_cnet[] = { "CONTROL_NET", NULL };
static const char *const o_model_ipa[] = { "MODEL", "IPADAPTER", NULL };
static const char *const n_model_ipa[] = { "MODEL", "ipadapter", NULL };
static const char *const o_model_image[] = { "MODEL", "IMAGE", NULL };
static const char *const n_model_face[] = { "MODEL", "face_image", NULL };
static const char *const o_files[] = { "VHS_FILENAMES", NULL };
static const char *const n_files[] = { "Filenames", NULL };
static const char *const o_none[] = { NULL };

static const struct node_input in_ckpt[] = { COMBO("ckpt_name", CS_CHECKPOINTS),
	END };
static const struct node_input in_clip_encode[] = {
	STR("text", NULL, IN_MULTILINE | IN_DYNPROMPT), LINK("clip", "CLIP"),
	END
};
static const struct node_input in_empty_latent[] = { INT("width", "512", 16,
							 MAX_RES, 8),
	INT("height", "512", 16, MAX_RES, 8),
	INT("batch_size", "1", 1, 4096, 0), END };
static const struct node_input in_ksampler[] = { LINK("model", "MODEL"),
	INT("seed", "0", 0, 18446744073709551615.0, 0),
	INT("steps", "20", 1, 10000, 0),
	NUM("cfg", IT_FLOAT, "FLOAT", "8.0", 0, 100, 0.1,
	    IN_HAS_MIN | IN_HAS_MAX),
	LIST("sampler_name", samplers), LIST("scheduler", schedulers),
	LINK("positive", "CONDITIONING"), LINK("negative", "CONDITIONING"),
	LINK("latent_image", "LATENT"), FLT("denoise", "1.0", 0, 1, 0.01),
	END };
static const struct node_input in_vae_decode[] = { LINK("samples", "LATENT"),
	LINK("vae", "VAE"), END };
static const struct node_input in_vae_encode[] = { LINK("pixels", "IMAGE"),
	LINK("vae", "VAE"), END };
static const struct node_input in_save_image[] = { LINK("images", "IMAGE"),
	STR("filename_prefix", "\"ComfyUI\"", 0), END };
static const struct node_input in_preview_image[] = { LINK("images", "IMAGE"),
	END };
static const struct node_input in_lora[] = { LINK("model", "MODEL"),
	LINK("clip", "CLIP"), COMBO("lora_name", CS_LORAS),
	FLT("strength_model", "1.0", -100, 100, 0.01),
	FLT("strength_clip", "1.0", -100, 100, 0.01), END };
static const struct node_input in_lora_model[] = { LINK("model", "MODEL"),
	COMBO("lora_name", CS_LORAS),
	FLT("strength_model", "1.0", -100, 100, 0.01), END };
static const struct node_input in_cnet_loader[] = {
	COMBO("control_net_name", CS_CONTROLNETS), END
};
static const struct node_input in_cnet_apply[] = { LINK("positive",
						       "CONDITIONING"),
	LINK("negative", "CONDITIONING"), LINK("control_net", "CONTROL_NET"),
	LINK("image", "IMAGE"), FLT("strength", "1.0", 0, 10, 0.01),
	FLT("start_percent", "0.0", 0, 1, 0.001),
	FLT("end_percent", "1.0", 0, 1, 0.001), OPTLINK("vae", "VAE"), END };
static const struct node_input in_load_image[] = { { .name = "image",
						       .type = IT_COMBO,
						       .src = CS_INPUT_IMAGES,
						       .flags = IN_UPLOAD |
							   IN_CUSTOM_VAL },
	END };
static const struct node_input in_empty_image[] = { INT("width", "512", 1,
							MAX_RES, 1),
	INT("height", "512", 1, MAX_RES, 1), INT("batch_size", "1", 1, 4096, 0),
	INT("color", "0", 0, 0xFFFFFF, 1), END };
static const struct node_input in_invert[] = { LINK("image", "IMAGE"), END };
static const struct node_input in_scale[] = { LINK("image", "IMAGE"),
	LIST("upscale_method", upscale), INT("width", "512", 0, MAX_RES, 1),
	INT("height", "512", 0, MAX_RES, 1), LIST("crop", crops), END };
static const struct node_input in_scale_by[] = { LINK("image", "IMAGE"),
	LIST("upscale_method", upscale), FLT("scale_by", "1.0", 0.01, 8, 0.01),
	END };
static const struct node_input in_faceid_loader[] = { LINK("model", "MODEL"),
	LIST("preset", faceid_presets),
	NUM("lora_strength", IT_FLOAT, "FLOAT", "0.6", 0, 1, 0.01,
	    IN_HAS_MIN | IN_HAS_MAX | IN_MIN_INT | IN_MAX_INT),
	LIST("provider", providers), OPTLINK("ipadapter", "IPADAPTER"), END };
static const struct node_input in_faceid[] = { LINK("model", "MODEL"),
	LINK("ipadapter", "IPADAPTER"), LINK("image", "IMAGE"),
	NUM("weight", IT_FLOAT, "FLOAT", "1.0", -1, 3, 0.05,
	    IN_HAS_MIN | IN_HAS_MAX | IN_MIN_INT | IN_MAX_INT),
	NUM("weight_faceidv2", IT_FLOAT, "FLOAT", "1.0", -1, 5.0, 0.05,
	    IN_HAS_MIN | IN_HAS_MAX | IN_MIN_INT),
	LIST("weight_type", weight_types),
	LIST("combine_embeds", combine_embeds),
	FLT("start_at", "0.0", 0, 1, 0.001), FLT("end_at", "1.0", 0, 1, 0.001),
	LIST("embeds_scaling", embeds_scaling),
	OPTLINK("image_negative", "IMAGE"), OPTLINK("attn_mask", "MASK"),
	OPTLINK("clip_vision", "CLIP_VISION"),
	OPTLINK("insightface", "INSIGHTFACE"), END };
static const struct node_input in_svd_cond[] = {
	LINK("clip_vision", "CLIP_VISION"), LINK("init_image", "IMAGE"),
	LINK("vae", "VAE"), INT("width", "1024", 16, MAX_RES, 8),
	INT("height", "576", 16, MAX_RES, 8),
	INT("video_frames", "14", 1, 4096, 0),
	INT("motion_bucket_id", "127", 1, 1023, 0), INT("fps", "6", 1, 1024, 0),
	FLT("augmentation_level", "0.0", 0, 10, 0.01), END
};
static const struct node_input in_video_cfg[] = { LINK("model", "MODEL"),
	FLT("min_cfg", "1.0", 0, 100, 0.5), END };
static const struct node_input in_vhs_combine[] = {
	{ .name = "images", .type = IT_LINK, .io = "IMAGE", .also = "LATENT" },
	NUM("frame_rate", IT_FLOAT, "FLOAT", "8", 1, 0, 1,
	    IN_HAS_MIN | IN_MIN_INT),
	INT("loop_count", "0", 0, 100, 1),
	STR("filename_prefix", "\"AnimateDiff\"", 0),
	LIST("format", vhs_formats), BOOL("pingpong", "false"),
	BOOL("save_output", "true"), OPTLINK("audio", "AUDIO"),
	OPTLINK("meta_batch", "VHS_BatchManager"), OPTLINK("vae", "VAE"), END
};
static const struct node_input in_save_webp[] = { LINK("images", "IMAGE"),
	STR("filename_prefix", "\"ComfyUI\"", 0),
	FLT("fps", "6.0", 0.01, 1000, 0.01), BOOL("lossless", "true"),
	INT("quality", "80", 0, 100, 0), LIST("method", webp_methods), END };

#define CORE	"nodes"
#define PNGINFO "prompt,extra_pnginfo"

static const struct node_class classes[] = {
	{ "CheckpointLoaderSimple", "Load Checkpoint", "loaders", CORE,
	    "Loads a diffusion model checkpoint.", NK_CKPT, 0, in_ckpt,
	    o_model_clip_vae, NULL, NULL },
	{ "CLIPTextEncode", "CLIP Text Encode (Prompt)", "conditioning", CORE,
	    "Encodes a text prompt with a CLIP model.", NK_CLIP_ENCODE, 0,
	    in_clip_encode, o_cond, NULL, NULL },
	{ "EmptyLatentImage", "Empty Latent Image", "latent", CORE,
	    "Creates a batch of empty latent images.", NK_EMPTY_LATENT, 0,
	    in_empty_latent, o_latent, NULL, NULL },
	{ "KSampler", "KSampler", "sampling", CORE, "Denoises a latent image.",
	    NK_KSAMPLER, 0, in_ksampler, o_latent, NULL, NULL },
	{ "VAEDecode", "VAE Decode", "latent", CORE,
	    "Decodes latent images into pixel space.", NK_VAE_DECODE, 0,
	    in_vae_decode, o_image, NULL, NULL },
	{ "VAEEncode", "VAE Encode", "latent", CORE, "", NK_VAE_ENCODE, 0,
	    in_vae_encode, o_latent, NULL, NULL },
	{ "SaveImage", "Save Image", "image", CORE,
	    "Saves the input images to the output directory.", NK_SAVE_IMAGE, 1,
	    in_save_image, o_none, NULL, PNGINFO },
	{ "PreviewImage", "Preview Image", "image", CORE,
	    "Saves the input images to the temp directory.", NK_PREVIEW_IMAGE,
	    1, in_preview_image, o_none, NULL, PNGINFO },
	{ "LoraLoader", "Load LoRA", "loaders", CORE,
	    "Applies a LoRA to a model and its CLIP.", NK_LORA, 0, in_lora,
	    o_model_clip, NULL, NULL },
	{ "LoraLoaderModelOnly", "LoraLoaderModelOnly", "loaders", CORE, "",
	    NK_LORA_MODEL, 0, in_lora_model, o_model, NULL, NULL },
	{ "ControlNetLoader", "Load ControlNet Model", "loaders", CORE, "",
	    NK_CNET_LOADER, 0, in_cnet_loader, o_cnet, NULL, NULL },
	{ "ControlNetApplyAdvanced", "Apply ControlNet",
	    "conditioning/controlnet", CORE, "", NK_CNET_APPLY, 0,
	    in_cnet_apply, o_cond2, n_posneg, NULL },
	{ "LoadImage", "Load Image", "image", CORE, "", NK_LOAD_IMAGE, 0,
	    in_load_image, o_image_mask, NULL, NULL },
	{ "EmptyImage", "EmptyImage", "image", CORE, "", NK_EMPTY_IMAGE, 0,
	    in_empty_image, o_image, NULL, NULL },
	{ "ImageInvert", "Invert Image", "image", CORE, "", NK_INVERT, 0,
	    in_invert, o_image, NULL, NULL },
	{ "ImageScale", "Upscale Image", "image/upscaling", CORE, "", NK_SCALE,
	    0, in_scale, o_image, NULL, NULL },
	{ "ImageScaleBy", "Upscale Image By", "image/upscaling", CORE, "",
	    NK_SCALE_BY, 0, in_scale_by, o_image, NULL, NULL },
	{ "ImageOnlyCheckpointLoader",
	    "Image Only Checkpoint Loader (img2vid model)",
	    "loaders/video_models", "comfy_extras.nodes_video_model", "",
	    NK_CKPT_VIDEO, 0, in_ckpt, o_model_clipv_vae, NULL, NULL },
	{ "SVD_img2vid_Conditioning", "SVD_img2vid_Conditioning",
	    "conditioning/video_models", "comfy_extras.nodes_video_model", "",
	    NK_SVD_COND, 0, in_svd_cond, o_svd, n_svd, NULL },
	{ "VideoLinearCFGGuidance", "VideoLinearCFGGuidance",
	    "sampling/video_models", "comfy_extras.nodes_video_model", "",
	    NK_VIDEO_CFG, 0, in_video_cfg, o_model, NULL, NULL },
	{ "SaveAnimatedWEBP", "SaveAnimatedWEBP", "image/animation",
	    "comfy_extras.nodes_images", "", NK_SAVE_WEBP, 1, in_save_webp,
	    o_none, NULL, PNGINFO },
	{ "IPAdapterUnifiedLoaderFaceID", "IPAdapter Unified Loader FaceID",
	    "ipadapter/faceid", "custom_nodes.ComfyUI_IPAdapter_plus", "",
	    NK_FACEID_LOADER, 0, in_faceid_loader, o_model_ipa, n_model_ipa,
	    NULL },
	{ "IPAdapterFaceID", "IPAdapter FaceID", "ipadapter/faceid",
	    "custom_nodes.ComfyUI_IPAdapter_plus", "", NK_FACEID, 0, in_faceid,
	    o_model_image, n_model_face, NULL },
	{ "VHS_VideoCombine",
	    "Video Combine \xf0\x9f\x8e\xa5\xf0\x9f\x85\xa5\xf0\x9f\x85\x97\xf0\x9f\x85\xa2",
	    "Video Helper Suite \xf0\x9f\x8e\xa5\xf0\x9f\x85\xa5\xf0\x9f\x85\x97\xf0\x9f\x85\xa2",
	    "custom_nodes.ComfyUI-VideoHelperSuite", "", NK_VHS_COMBINE, 1,
	    in_vhs_combine, o_files, n_files,
	    "prompt,extra_pnginfo,unique_id" },
};

#define NCLASSES (sizeof classes / sizeof classes[0])

const struct node_class *
node_class_find(const char *name)
{
	size_t i;

	for (i = 0; i < NCLASSES; i++)
		if (strcmp(classes[i].name, name) == 0)
			return (&classes[i]);
	return (NULL);
}

const struct node_input *
node_input_find(const struct node_class *c, const char *name)
{
	const struct node_input *in;

	for (in = c->inputs; in->name != NULL; in++)
		if (strcmp(in->name, name) == 0)
			return (in);
	return (NULL);
}

size_t
node_noutputs(const struct node_class *c)
{
	size_t n = 0;

	while (c->outputs[n] != NULL)
		n++;
	return (n);
}

static int
node_is_image(const char *name)
{
	static const char *const ext[] = { ".png", ".jpg", ".jpeg", ".webp",
		".gif", ".bmp", ".tif", ".tiff", NULL };
	const char		*dot = strrchr(name, '.');
	size_t			 i;

	for (i = 0; dot != NULL && ext[i] != NULL; i++)
		if (strcasecmp(dot, ext[i]) == 0)
			return (1);
	return (0);
}

static int
node_strcmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Image files directly in the input directory, sorted (LoadImage). */
static cJSON *
node_input_images(void)
{
	DIR	      *d;
	struct dirent *de;
	char	     **v = NULL;
	size_t	       n = 0, i;
	cJSON	      *a = cJSON_CreateArray();

	if ((d = opendir(sim.input_dir)) == NULL)
		return (a);
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_REG || !node_is_image(de->d_name))
			continue;
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof *v, node_strcmp);
	for (i = 0; i < n; i++) {
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
		free(v[i]);
	}
	free(v);
	return (a);
}

static cJSON *
node_strings(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	size_t i;

	for (i = 0; n == (size_t)-1 ? v[i] != NULL : i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return (a);
}

/* The combo options of an input, as a new array. */
cJSON *
node_options(const struct node_input *in)
{
	const struct strlist *l = NULL;

	switch (in->src) {
	case CS_STATIC:
		return (node_strings(in->options, (size_t)-1));
	case CS_INPUT_IMAGES:
		return (node_input_images());
	case CS_CHECKPOINTS:
		l = &sim.checkpoints;
		break;
	case CS_LORAS:
		l = &sim.loras;
		break;
	case CS_CONTROLNETS:
		l = &sim.controlnets;
		break;
	}
	return (node_strings((const char *const *)l->v, l->n));
}

/* A bound as Python prints it; 2^64-1 does not fit a double. */
static cJSON *
node_bound(double v)
{
	if (v >= 18446744073709551615.0)
		return (cJSON_CreateRaw("18446744073709551615"));
	return (cJSON_CreateNumber(v));
}

static cJSON *
node_opts(const struct node_input *in)
{
	cJSON *o = cJSON_CreateObject(), *d;

	if (in->def != NULL && (d = cJSON_Parse(in->def)) != NULL)
		cJSON_AddItemToObject(o, "default", d);
	if (in->flags & IN_HAS_MIN)
		cJSON_AddItemToObject(o, "min", node_bound(in->min));
	if (in->flags & IN_HAS_MAX)
		cJSON_AddItemToObject(o, "max", node_bound(in->max));
	if (in->step != 0)
		cJSON_AddNumberToObject(o, "step", in->step);
	if (in->flags & IN_MULTILINE)
		cJSON_AddTrueToObject(o, "multiline");
	if (in->flags & IN_DYNPROMPT)
		cJSON_AddTrueToObject(o, "dynamicPrompts");
	if (in->flags & IN_UPLOAD)
		cJSON_AddTrueToObject(o, "image_upload");
	return (o);
}

static cJSON *
node_type(const struct node_input *in)
{
	return (in->type == IT_COMBO ? node_options(in)
				     : cJSON_CreateString(in->io));
}

/* (input_type, extra_info), as validation echoes it in input_config. */
cJSON *
node_input_config(const struct node_input *in)
{
	cJSON *a = cJSON_CreateArray();

	cJSON_AddItemToArray(a, node_type(in));
	cJSON_AddItemToArray(a, node_opts(in));
	return (a);
}

static void
node_add_inputs(cJSON *spec, cJSON *order, const struct node_class *c)
{
	static const char *const cats[] = { "required", "optional" };
	const struct node_input *in;
	cJSON			*group, *names, *s, *o;
	int			 k;

	for (k = 0; k < 2; k++) {
		group = NULL;
		for (in = c->inputs; in->name != NULL; in++) {
			if (!!(in->flags & IN_OPTIONAL) != k)
				continue;
			if (group == NULL) {
				group = cJSON_AddObjectToObject(spec, cats[k]);
				names = cJSON_AddArrayToObject(order, cats[k]);
			}
			s = cJSON_CreateArray();
			cJSON_AddItemToArray(s, node_type(in));
			o = node_opts(in);
			if (o->child != NULL)
				cJSON_AddItemToArray(s, o);
			else
				cJSON_Delete(o);
			cJSON_AddItemToObject(group, in->name, s);
			cJSON_AddItemToArray(
			    names, cJSON_CreateString(in->name));
		}
	}
}

static void
node_add_hidden(cJSON *spec, cJSON *order, const struct node_class *c)
{
	cJSON *h, *names;
	char  *list, *tok, *save;

	if (c->hidden == NULL)
		return;
	h = cJSON_AddObjectToObject(spec, "hidden");
	names = cJSON_AddArrayToObject(order, "hidden");
	list = xstrdup(c->hidden);
	for (tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char   up[32];
		size_t i;

		for (i = 0; tok[i] != '\0' && i + 1 < sizeof up; i++)
			up[i] =
			    (char)(tok[i] >= 'a' && tok[i] <= 'z' ? tok[i] - 32
								  : tok[i]);
		up[i] = '\0';
		cJSON_AddStringToObject(h, tok, up);
		cJSON_AddItemToArray(names, cJSON_CreateString(tok));
	}
	free(list);
}

static cJSON *
node_info(const struct node_class *c)
{
	cJSON *info = cJSON_CreateObject(), *spec, *order, *a;
	size_t i, n = node_noutputs(c);

	spec = cJSON_AddObjectToObject(info, "input");
	order = cJSON_AddObjectToObject(info, "input_order");
	node_add_inputs(spec, order, c);
	node_add_hidden(spec, order, c);
	cJSON_AddItemToObject(info, "output", node_strings(c->outputs, n));
	a = cJSON_AddArrayToObject(info, "output_is_list");
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateFalse());
	cJSON_AddItemToObject(info, "output_name",
	    node_strings(c->output_names ? c->output_names : c->outputs, n));
	cJSON_AddStringToObject(info, "name", c->name);
	cJSON_AddStringToObject(info, "display_name", c->display);
	cJSON_AddStringToObject(info, "description", c->description);
	cJSON_AddStringToObject(info, "python_module", c->module);
	cJSON_AddStringToObject(info, "category", c->category);
	cJSON_AddBoolToObject(info, "output_node", c->output_node);
	return (info);
}

/* GET /object_info (only NULL) or /object_info/<class> ({} if unknown). */
cJSON *
node_object_info(const char *only)
{
	cJSON *o = cJSON_CreateObject();
	size_t i;

	for (i = 0; i < NCLASSES; i++)
		if (only == NULL || strcmp(only, classes[i].name) == 0)
			cJSON_AddItemToObject(
			    o, classes[i].name, node_info(&classes[i]));
	return (o);
}
