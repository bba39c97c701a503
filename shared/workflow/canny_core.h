/*
 * The per-pixel arithmetic of Canny, shared by canny.c and canny_cuda.cu
 * so the two cannot drift apart: both compile these same lines, as C on
 * the host and as device code under nvcc. Magnitudes live in a frame one
 * pixel wider on every side (W = w + 2), zero outside the image.
 */
#ifndef COMFYQ_CANNY_CORE_H
#define COMFYQ_CANNY_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#ifdef __CUDACC__
#define CANNY_FN __host__ __device__ static inline
#else
#define CANNY_FN static inline
#endif

#define CANNY_SHIFT 15
#define CANNY_TG22  13573 /* tan(22.5 deg) * 2^15, rounded */

/* BORDER_REFLECT_101: ... 2 1 | 0 1 2 ... n-1 | n-2 ... */
CANNY_FN int
canny_reflect(int i, int n)
{
	if (n == 1)
		return (0);
	while (i < 0 || i >= n)
		i = i < 0 ? -i : 2 * n - 2 - i;
	return (i);
}

/* Grey of one pixel, as OpenCV's RGB2GRAY for 8 bits. */
CANNY_FN unsigned char
canny_gray_px(const unsigned char *p, int ch)
{
	return (ch < 3 ? p[0]
		       : (unsigned char)((9798 * p[0] + 19235 * p[1] +
					     3735 * p[2] + 16384) >>
			     15));
}

/* The binomial 5 kernel [1 4 6 4 1] along row y of grey g, at x. */
CANNY_FN int
canny_blur_row_px(const unsigned char *g, int w, int x, int y)
{
	const unsigned char *r = g + (size_t)y * w;

	return (r[canny_reflect(x - 2, w)] + 4 * r[canny_reflect(x - 1, w)] +
	    6 * r[x] + 4 * r[canny_reflect(x + 1, w)] +
	    r[canny_reflect(x + 2, w)]);
}

/* The same down column x of the row sums, divided by 256, rounded. */
CANNY_FN unsigned char
canny_blur_col_px(const int *row, int w, int h, int x, int y)
{
	int s = row[(size_t)canny_reflect(y - 2, h) * w + x] +
	    4 * row[(size_t)canny_reflect(y - 1, h) * w + x] +
	    6 * row[(size_t)y * w + x] +
	    4 * row[(size_t)canny_reflect(y + 1, h) * w + x] +
	    row[(size_t)canny_reflect(y + 2, h) * w + x];

	return ((unsigned char)((s + 128) >> 8));
}

/* Sobel at (x, y), borders replicated; magnitude into the frame. */
CANNY_FN void
canny_sobel_px(const unsigned char *src, int w, int h, int x, int y, int *mag,
    short *dx, short *dy)
{
	int		     xm = x > 0 ? x - 1 : 0, xp = x < w - 1 ? x + 1 : x;
	int		     ym = y > 0 ? y - 1 : 0, yp = y < h - 1 ? y + 1 : y;
	const unsigned char *r0 = src + (size_t)ym * w,
			    *r1 = src + (size_t)y * w;
	const unsigned char *r2 = src + (size_t)yp * w;
	int gx = r0[xp] - r0[xm] + 2 * (r1[xp] - r1[xm]) + r2[xp] - r2[xm];
	int gy = r2[xm] - r0[xm] + 2 * (r2[x] - r0[x]) + r2[xp] - r0[xp];

	dx[(size_t)y * w + x] = (short)gx;
	dy[(size_t)y * w + x] = (short)gy;
	mag[(size_t)(y + 1) * (w + 2) + x + 1] = gx * gx + gy * gy;
}

/*
 * Non-maximum suppression and double threshold at (x, y): 2 an edge,
 * 0 a weak candidate, 1 nothing.
 */
CANNY_FN unsigned char
canny_nms_px(const int *mag, const short *dx, const short *dy, int w, int x,
    int y, int lo, int hi)
{
	size_t W = (size_t)w + 2, j = (y + 1) * W + x + 1;
	int m = mag[j], xs = dx[(size_t)y * w + x], ys = dy[(size_t)y * w + x];
	int ax = abs(xs), ay = abs(ys) << CANNY_SHIFT, tg22x = ax * CANNY_TG22;
	int keep;

	if (m <= lo)
		return (1);
	if (ay < tg22x)
		keep = m > mag[j - 1] && m >= mag[j + 1];
	else if (ay > tg22x + (ax << (CANNY_SHIFT + 1)))
		keep = m > mag[j - W] && m >= mag[j + W];
	else {
		int s = (xs ^ ys) < 0 ? -1 : 1;

		keep = m > mag[j - W - s] && m > mag[j + W + s];
	}
	return (keep ? (m > hi ? 2 : 0) : 1);
}

/* A threshold on the squared magnitude, as OpenCV derives it. */
CANNY_FN int
canny_threshold(double t)
{
	if (t > 32767.0)
		t = 32767.0;
	if (t > 0)
		t *= t;
	return ((int)floor(t));
}

#endif
