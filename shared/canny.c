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

#define CANNY_SHIFT 15
#define CANNY_TG22  13573 /* tan(22.5 deg) * 2^15, rounded */

static int
canny_reflect(int i, int n)
{
	if (n == 1)
		return (0);
	while (i < 0 || i >= n)
		i = i < 0 ? -i : 2 * n - 2 - i;
	return (i);
}

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
	static const int k[5] = { 1, 4, 6, 4, 1 };
	unsigned char	*g;
	int		*row;
	size_t		 n = (size_t)w * h, i;
	int		 x, y, t;

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
	for (i = 0; i < n; i++) {
		const unsigned char *p = pix + i * (size_t)ch;

		g[i] = ch < 3 ? p[0]
			      : (unsigned char)((9798 * p[0] + 19235 * p[1] +
						    3735 * p[2] + 16384) >>
				    15);
	}
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++) {
			int s = 0;

			for (t = 0; t < 5; t++)
				s += k[t] *
				    g[(size_t)y * w +
					canny_reflect(x + t - 2, w)];
			row[(size_t)y * w + x] = s;
		}
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++) {
			int s = 0;

			for (t = 0; t < 5; t++)
				s += k[t] *
				    row[(size_t)canny_reflect(y + t - 2, h) *
					    w +
					x];
			out[(size_t)y * w + x] =
			    (unsigned char)((s + 128) >> 8);
		}
	free(g);
	free(row);
	return (0);
}

/* A threshold on the squared magnitude, as OpenCV derives it. */
static int
canny_threshold(double t)
{
	if (t > 32767.0)
		t = 32767.0;
	if (t > 0)
		t *= t;
	return ((int)floor(t));
}

/* Sobel, magnitude, non-maximum suppression: map 0 weak, 1 none, 2 edge. */
static void
canny_nms(const unsigned char *src, int w, int h, int lo, int hi, int *mag,
    short *dx, short *dy, unsigned char *map)
{
	size_t W = (size_t)w + 2;
	int    x, y;

	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++) {
			int xm = x > 0 ? x - 1 : 0, xp = x < w - 1 ? x + 1 : x;
			int ym = y > 0 ? y - 1 : 0, yp = y < h - 1 ? y + 1 : y;
#define P(yy, xx) ((int)src[(size_t)(yy)*w + (xx)])
			int gx = P(ym, xp) - P(ym, xm) +
			    2 * (P(y, xp) - P(y, xm)) + P(yp, xp) - P(yp, xm);
			int gy = P(yp, xm) - P(ym, xm) +
			    2 * (P(yp, x) - P(ym, x)) + P(yp, xp) - P(ym, xp);
#undef P
			dx[(size_t)y * w + x] = (short)gx;
			dy[(size_t)y * w + x] = (short)gy;
			mag[(y + 1) * W + x + 1] = gx * gx + gy * gy;
		}
	memset(map, 1, W * (size_t)(h + 2));
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++) {
			size_t j = (y + 1) * W + x + 1;
			int    m = mag[j], xs = dx[(size_t)y * w + x];
			int    ys = dy[(size_t)y * w + x], ax = abs(xs);
			int    ay = abs(ys) << CANNY_SHIFT,
			    tg22x = ax * CANNY_TG22;
			int keep;

			if (m <= lo)
				continue;
			if (ay < tg22x)
				keep = m > mag[j - 1] && m >= mag[j + 1];
			else if (ay > tg22x + (ax << (CANNY_SHIFT + 1)))
				keep = m > mag[j - W] && m >= mag[j + W];
			else {
				int s = (xs ^ ys) < 0 ? -1 : 1;

				keep = m > mag[j - W - s] && m > mag[j + W + s];
			}
			if (keep)
				map[j] = m > hi ? 2 : 0;
		}
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

#ifndef COMFYQ_CANNY_CUDA
/* Builds without nvcc: the caller uses canny() instead. */
int
canny_cuda(const unsigned char *pix, int w, int h, int ch, double low,
    double high, unsigned char *out, char *err, size_t errlen)
{
	(void)pix, (void)w, (void)h, (void)ch, (void)low, (void)high, (void)out;
	snprintf(err, errlen, "canny: this build has no CUDA");
	return (-1);
}
#endif
