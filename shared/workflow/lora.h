/*
 * LoRA: which LoRAs a job asks for, and the graph surgery that applies
 * them. They come from the job's "loras" list ("name:0.8", "name:0.8:0.5",
 * or {"name", "strength_model", "strength_clip", "enabled"}) and from
 * <lora:name:weight> / <lora:name:unet:tenc> tags in prompt text, which are
 * cut out of the text. lora_inject() puts a chain of LoraLoader nodes
 * between the checkpoint loader and every consumer of its MODEL and CLIP
 * outputs, in the order given (LoraLoaderModelOnly where nothing reads the
 * loader's CLIP).
 */
#ifndef COMFYQ_LORA_H
#define COMFYQ_LORA_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define LORA_MAX	16   /* per job, list and tags together */
#define LORA_NAME_MAX	256  /* a file name, with its NUL */
#define LORA_WEIGHT_MAX 10.0 /* |strength| */

struct lora {
	char   name[LORA_NAME_MAX]; /* file name, .safetensors added */
	double strength_model;
	double strength_clip;
	char   from[128]; /* "loras[1]", "prompt: <lora:x:1>" (for errors) */
};

struct lora_list {
	struct lora l[LORA_MAX];
	int	    n;
};

int lora_parse_entry(const cJSON *v, const char *from, struct lora_list *ll,
    char *err, size_t errlen);
int lora_parse_list(
    const cJSON *loras, struct lora_list *ll, char *err, size_t errlen);
int lora_parse_tags(char *text, const char *field, struct lora_list *ll,
    char *err, size_t errlen);
int lora_inject(cJSON *graph, const struct lora_list *ll, double scale,
    char *err, size_t errlen);
int lora_name_ok(const char *s);

#endif
