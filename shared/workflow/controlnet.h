/*
 * ControlNet: the job's "controlnets" entries ("canny:0.8[:START:END]" or
 * {"type", "strength" | "conditioning_scale", "start", "end", "image",
 * "preprocess", "low", "high"}) and the graph surgery that applies them:
 * per entry a ControlNetLoader (the model file from a type -> file map in
 * the config), a LoadImage of the uploaded condition image, and a
 * ControlNetApplyAdvanced chained between the conditioning and the
 * sampler's positive and negative inputs; several stack in order.
 */
#ifndef COMFYQ_CONTROLNET_H
#define COMFYQ_CONTROLNET_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define CN_MAX	     8
#define CN_TYPES_MAX 16
#define CN_TYPE_MAX  32	 /* a type name, with its NUL */
#define CN_FILE_MAX  256 /* a model file name, with its NUL */
#define CN_MAP_DEFAULT                                                         \
	"canny=control-lora-canny-rank256.safetensors,"                        \
	"depth=control-lora-depth-rank256.safetensors"

struct cn_map {
	int  n;
	char type[CN_TYPES_MAX][CN_TYPE_MAX];
	char file[CN_TYPES_MAX][CN_FILE_MAX];
};

struct cn_entry {
	char	    type[CN_TYPE_MAX];
	double	    strength, start, end;
	const char *source;	/* the image: base64, data URI or URL */
	char	    input[64];	/* the inputs key it came from, or "" */
	int	    preprocess; /* run Canny on it before upload */
	double	    low, high;	/* Canny thresholds */
};

struct cn_list {
	struct cn_entry e[CN_MAX];
	int		n;
};

int cn_map_parse(const char *s, struct cn_map *m, char *err, size_t errlen);
const char *cn_map_file(const struct cn_map *m, const char *type);
int cn_parse_entry(const cJSON *v, const char *from, const cJSON *inputs,
    const struct cn_map *m, struct cn_entry *e, char *err, size_t errlen);
int cn_parse_list(const cJSON *arr, const cJSON *inputs, const struct cn_map *m,
    struct cn_list *l, char *err, size_t errlen);
int cn_inject(cJSON *graph, const struct cn_list *l, const struct cn_map *m,
    const char *const *images, char *err, size_t errlen);

#endif
