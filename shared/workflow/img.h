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

int  img_info(const unsigned char *, size_t, int *, int *, char *, size_t);
int  img_decode(const unsigned char *, size_t, const struct img_limits *, int,
     struct img *, char *, size_t);
void img_free(struct img *);
int  img_fit(const struct img *, int, int, struct img *, char *, size_t);
unsigned char *img_png(const struct img *, size_t *, char *, size_t);
enum img_blank img_blank(const struct img *);
int	       img_exif_orientation(const unsigned char *, size_t);

#endif
