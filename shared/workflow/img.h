/*
 * Images in memory: decode and check what a producer sent (stb_image),
 * detect a blank output frame, fit a picture to a template's size, and
 * encode PNG for upload. Every limit is checked before pixels are
 * allocated, from the header alone, so a small file that claims to be
 * 30000x30000 costs nothing. Functions are thread-safe (they run on the
 * worker's thread pool).
 */
#ifndef COMFYQ_IMG_H
#define COMFYQ_IMG_H

#include <stddef.h>

struct img_limits {
	size_t	  max_bytes;  /* encoded size */
	long long max_pixels; /* width x height */
	int	  min_side, max_side;
};

extern const struct img_limits img_limits_default;

struct img {
	int	       w, h, channels; /* channels: 1..4 */
	unsigned char *pix;	       /* w * h * channels, rows top down */
};

enum img_blank {
	IMG_BLANK_NO,
	IMG_BLANK_BLACK,   /* every pixel near black */
	IMG_BLANK_UNIFORM, /* one colour */
};

int  img_info(const unsigned char *buf, size_t len, int *w, int *h, char *err,
     size_t errlen);
int  img_decode(const unsigned char *buf, size_t len,
     const struct img_limits *lim, int channels, struct img *im, char *err,
     size_t errlen);
void img_free(struct img *im);
int  img_fit(const struct img *in, int w, int h, struct img *out, char *err,
     size_t errlen);
unsigned char *img_png(
    const struct img *im, size_t *len, char *err, size_t errlen);
enum img_blank img_blank(const struct img *im);
int	       img_exif_orientation(const unsigned char *b, size_t len);

#endif
