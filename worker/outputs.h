/*
 * A finished prompt's outputs: which files in its /history entry are
 * deliverables, whether their names may be used, whether each file is what
 * was asked for, and writing it to the output directory.
 */
#ifndef COMFYQ_OUTPUTS_H
#define COMFYQ_OUTPUTS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define OUT_PATH_MAX 4096

struct out_file {
	char *node;
	char *key; /* images, gifs, audio, ... */
	char *filename;
	char *subfolder;
	char *type;   /* output, temp, input */
	char *format; /* e.g. video/h264-mp4, or NULL */
	int   animated;
	char *stored; /* its name in <output-dir>/<job>/: unique in the job */
};

struct out_list {
	struct out_file *v;
	int		 n;
};

/* What the job asked for, when known (0: not checked), and the cap. */
struct out_expect {
	int	  width;
	int	  height;
	double	  duration_s; /* a video's length */
	int	  allow_blank;
	long long max_pixels; /* the operator's cap on a still image */
};

/*
 * A file on its way into <output-dir>/<job>/: written under a hidden
 * temporary name, renamed into place by output_tmp_commit.
 */
struct out_tmp {
	int  fd; /* -1: none */
	char tmp[OUT_PATH_MAX];
	char path[OUT_PATH_MAX];
};

int outputs_collect(
    const cJSON *entry, struct out_list *l, char *err, size_t errlen);
void	    outputs_free(struct out_list *l);
int	    output_validate(const struct out_file *f, const unsigned char *data,
	    size_t len, const struct out_expect *ex, cJSON *rec, char *err,
	    size_t errlen);
const char *output_mime(const struct out_file *f);

void output_tmp_init(struct out_tmp *t);
int  output_tmp_open(struct out_tmp *t, const char *dir, const char *jid,
     const struct out_file *f, int index, char *err, size_t errlen);
int  output_tmp_validate(const struct out_tmp *t, const struct out_file *f,
     const struct out_expect *ex, cJSON *rec, char *err, size_t errlen);
int  output_tmp_commit(struct out_tmp *t, cJSON *rec, char *err, size_t errlen);
void output_tmp_discard(struct out_tmp *t);
int output_store_dir(const char *dir, const char *jid, const struct out_file *f,
    int index, const unsigned char *data, size_t len, struct out_tmp *keep,
    cJSON *rec, char *err, size_t errlen);

#endif
