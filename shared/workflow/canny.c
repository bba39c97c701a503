/*
 * Canny on the CPU (see canny.h), in two halves that the tests check
 * separately against OpenCV: canny_gray_blur() (grey = (9798 R + 19235 G +
 * 3735 B + 16384) >> 15, then the 5x5 binomial kernel [1 4 6 4 1]^2 / 256
 * rounded half up, mirrored at the borders as BORDER_REFLECT_101) and
 * canny_edges() (3x3 Sobel with replicated borders, squared L2 magnitude,
 * non-maximum suppression along the gradient quantised with tan 22.5 in
 * 15-bit fixed point, double threshold, then hysteresis: a weak pixel is
 * an edge when 8-connected through weak pixels to a strong one).
 * Magnitudes outside the image count as zero. Everything is integer
 * arithmetic, so the result is the same on every machine.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canny.h"
#include "canny_core.h"

static int
canny_size_ok(int w, int h, char *err, size_t errlen)
{
	if (w < 1 || h < 1 || (long long)w * h > CANNY_MAX_PIXELS) {
		snprintf(err, errlen, "canny: %dx%d is no size it takes", w, h);
		return (0);
	}
	return (1);
}

/*
 * Grey and blur: pix (w x h, channels 1..4, RGB order) to out (w x h).
 * Returns 0, or -1 with err.
 */
int
canny_gray_blur(const unsigned char *pix, int w, int h, int ch,
    unsigned char *out, char *err, size_t errlen)
{
	unsigned char *g;
	int	      *row;
	size_t	       n = (size_t)w * h, i;
	int	       x, y;

	if (!canny_size_ok(w, h, err, errlen))
		return (-1);
	g = malloc(n);
	row = malloc(n * sizeof *row);
	if (g == NULL || row == NULL) {
		free(g);
		free(row);
		snprintf(err, errlen, "canny: out of memory for %dx%d", w, h);
		return (-1);
	}
	for (i = 0; i < n; i++)
		g[i] = canny_gray_px(pix + i * (size_t)ch, ch);
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			row[(size_t)y * w + x] = canny_blur_row_px(g, w, x, y);
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			out[(size_t)y * w + x] =
			    canny_blur_col_px(row, w, h, x, y);
	free(g);
	free(row);
	return (0);
}

/* Sobel, magnitude, non-maximum suppression: map 0 weak, 1 none, 2 edge. */
static void
canny_nms(const unsigned char *src, int w, int h, int lo, int hi, int *mag,
    short *dx, short *dy, unsigned char *map)
{
	size_t W = (size_t)w + 2;
	int    x, y;

	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			canny_sobel_px(src, w, h, x, y, mag, dx, dy);
	memset(map, 1, W * (size_t)(h + 2));
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			map[(y + 1) * W + x + 1] =
			    canny_nms_px(mag, dx, dy, w, x, y, lo, hi);
}

/*
 * Edges of a grey image src (w x h) into out (w x h, 0 or 255) with the
 * low and high thresholds on the gradient magnitude. Returns 0, or -1.
 */
int
canny_edges(const unsigned char *src, int w, int h, double low, double high,
    unsigned char *out, char *err, size_t errlen)
{
	size_t	       W = (size_t)w + 2, cells, top = 0, j;
	int	      *mag = NULL;
	size_t	      *stack = NULL;
	short	      *dx = NULL, *dy = NULL;
	unsigned char *map = NULL;
	int	       x, y, d, rc = -1;

	if (!canny_size_ok(w, h, err, errlen))
		return (-1);
	if (low > high) {
		double t = low;

		low = high;
		high = t;
	}
	cells = W * (size_t)(h + 2);
	mag = calloc(cells, sizeof *mag);
	map = malloc(cells);
	dx = malloc((size_t)w * h * sizeof *dx);
	dy = malloc((size_t)w * h * sizeof *dy);
	stack = malloc((size_t)w * h * sizeof *stack);
	if (mag == NULL || map == NULL || dx == NULL || dy == NULL ||
	    stack == NULL) {
		snprintf(err, errlen, "canny: out of memory for %dx%d", w, h);
		goto done;
	}
	canny_nms(src, w, h, canny_threshold(low), canny_threshold(high), mag,
	    dx, dy, map);
	for (j = 0; j < cells; j++)
		if (map[j] == 2)
			stack[top++] = j;
	while (top > 0) {
		const ptrdiff_t nb[8] = { -1, 1, -(ptrdiff_t)W, (ptrdiff_t)W,
			-(ptrdiff_t)W - 1, -(ptrdiff_t)W + 1, (ptrdiff_t)W - 1,
			(ptrdiff_t)W + 1 };

		j = stack[--top];
		for (d = 0; d < 8; d++)
			if (map[j + nb[d]] == 0) {
				map[j + nb[d]] = 2;
				stack[top++] = j + nb[d];
			}
	}
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			out[(size_t)y * w + x] =
			    map[(y + 1) * W + x + 1] == 2 ? 255 : 0;
	rc = 0;
done:
	free(mag);
	free(map);
	free(dx);
	free(dy);
	free(stack);
	return (rc);
}

/* The whole preprocessor: grey, blur, edges. Returns 0, or -1 with err. */
int
canny(const unsigned char *pix, int w, int h, int ch, double low, double high,
    unsigned char *out, char *err, size_t errlen)
{
	unsigned char *blur;
	int	       rc;

	if (!canny_size_ok(w, h, err, errlen))
		return (-1);
	if ((blur = malloc((size_t)w * h)) == NULL) {
		snprintf(err, errlen, "canny: out of memory for %dx%d", w, h);
		return (-1);
	}
	rc = canny_gray_blur(pix, w, h, ch, blur, err, errlen);
	if (rc == 0)
		rc = canny_edges(blur, w, h, low, high, out, err, errlen);
	free(blur);
	return (rc);
}
