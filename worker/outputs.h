/*
 * A finished prompt's outputs: which files in its /history entry are
 * deliverables, whether each file is what was asked for, and writing it to
 * the output directory.
 */
#ifndef COMFYQ_OUTPUTS_H
#define COMFYQ_OUTPUTS_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct out_file {
	char *node;
	char *key; /* images, gifs, audio, ... */
	char *filename;
	char *subfolder;
	char *type;   /* output, temp, input */
	char *format; /* e.g. video/h264-mp4, or NULL */
	int   animated;
};

struct out_list {
	struct out_file *v;
	int		 n;
};

/* What the job asked for, when known (0: not checked). */
struct out_expect {
	int    width;
	int    height;
	double duration_s; /* a video's length */
	int    allow_blank;
};

int  outputs_collect(const cJSON *, struct out_list *, char *, size_t);
void outputs_free(struct out_list *);
int  output_validate(const struct out_file *, const unsigned char *, size_t,
     const struct out_expect *, cJSON *, char *, size_t);
int  output_store_dir(const char *, const char *, const struct out_file *,
     const unsigned char *, size_t, cJSON *, char *, size_t);
const char *output_mime(const struct out_file *);

#endif
