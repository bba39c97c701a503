/*
 * Canny against OpenCV: tests/data/canny holds test scenes and the grey
 * blur and edge maps OpenCV 4.6 made of them (opencv_reference.cpp says
 * how); ours must match byte for byte. Plus the small cases a person can
 * check by eye, and the refusals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canny.h"
#include "img.h"
#include "unit.h"
#include "util.h"

/* Reads a binary PGM (P5) into a malloc'd buffer. */
static unsigned char *
read_pgm(const char *name, int *w, int *h)
{
	char	       err[256], *text, *p;
	size_t	       len;
	unsigned char *px;
	int	       max, n;

	text = file_slurp(unit_data(name), 1 << 22, &len, err, sizeof err);
	if (text == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	if (sscanf(text, "P5 %d %d %d%n", w, h, &max, &n) != 3)
		unit_fail(__FILE__, __LINE__, "%s: not a PGM", name);
	p = text + n + 1;
	if ((size_t)(p - text) + (size_t)*w * *h != len)
		unit_fail(__FILE__, __LINE__, "%s: bad size", name);
	px = malloc((size_t)*w * *h);
	memcpy(px, p, (size_t)*w * *h);
	free(text);
	return (px);
}

static void
load_scene(const char *name, struct img *im)
{
	char   err[256], *text;
	size_t len;

	text = file_slurp(unit_data(name), 1 << 22, &len, err, sizeof err);
	if (text == NULL ||
	    img_decode(
		(unsigned char *)text, len, NULL, 3, im, err, sizeof err) == -1)
		unit_fail(__FILE__, __LINE__, "%s: %s", name, err);
	free(text);
}

static void
same_bytes(const unsigned char *got, const unsigned char *want, int w, int h,
    const char *what)
{
	int i, diff = 0, first = -1;

	for (i = 0; i < w * h; i++)
		if (got[i] != want[i] && diff++ == 0)
			first = i;
	unit_checks++;
	if (diff != 0)
		unit_fail(__FILE__, __LINE__,
		    "%s: %d of %d bytes differ, first at (%d,%d): %d != %d",
		    what, diff, w * h, first % w, first / w, got[first],
		    want[first]);
}

static void
scene_case(const char *scene, double lo, double hi)
{
	struct img     im;
	unsigned char *blur, *edges, *want, *all;
	char	       name[128], err[256];
	int	       w, h;

	snprintf(name, sizeof name, "canny/%s.ppm", scene);
	load_scene(name, &im);
	blur = malloc((size_t)im.w * im.h);
	edges = malloc((size_t)im.w * im.h);
	all = malloc((size_t)im.w * im.h);
	ASSERT_EQ(
	    canny_gray_blur(im.pix, im.w, im.h, 3, blur, err, sizeof err), 0);
	snprintf(name, sizeof name, "canny/%s.blur.pgm", scene);
	want = read_pgm(name, &w, &h);
	ASSERT_EQ(w, im.w);
	ASSERT_EQ(h, im.h);
	same_bytes(blur, want, w, h, name);
	free(want);
	ASSERT_EQ(canny_edges(blur, w, h, lo, hi, edges, err, sizeof err), 0);
	snprintf(name, sizeof name, "canny/%s.%g-%g.pgm", scene, lo, hi);
	want = read_pgm(name, &w, &h);
	same_bytes(edges, want, w, h, name);
	ASSERT_EQ(
	    canny(im.pix, im.w, im.h, 3, lo, hi, all, err, sizeof err), 0);
	same_bytes(all, want, w, h, "canny() whole");
	free(want);
	free(all);
	free(edges);
	free(blur);
	img_free(&im);
}

static void
test_opencv_scenes(void)
{
	scene_case("scene1", 50, 150);
	scene_case("scene1", 100, 200);
	scene_case("scene2", 30, 90);
	scene_case("square", 100, 200);
}

static void
test_small_cases(void)
{
	unsigned char flat[8 * 8], out[8 * 8], step[8 * 8];
	char	      err[256];
	int	      i, x, y, n = 0;

	/* A flat image has no edges, whatever the thresholds. */
	memset(flat, 77, sizeof flat);
	ASSERT_EQ(canny_edges(flat, 8, 8, 0, 0, out, err, sizeof err), 0);
	for (i = 0; i < 64; i++)
		n += out[i] != 0;
	ASSERT_EQ(n, 0);
	/* A vertical step: the two columns beside it are equally strong;
	 * the tie goes left (m > left, m >= right), so the edge is the dark
	 * side's last column, all rows. */
	for (y = 0; y < 8; y++)
		for (x = 0; x < 8; x++)
			step[y * 8 + x] = x < 4 ? 0 : 200;
	ASSERT_EQ(canny_edges(step, 8, 8, 100, 200, out, err, sizeof err), 0);
	for (y = 0; y < 8; y++)
		for (x = 0; x < 8; x++)
			ASSERT_EQ(out[y * 8 + x], x == 3 ? 255 : 0);
	/* Swapped thresholds are put in order, as OpenCV does. */
	ASSERT_EQ(canny_edges(step, 8, 8, 200, 100, out, err, sizeof err), 0);
	ASSERT_EQ(out[3], 255);
	/* The step is 800 strong (4 x 200): a high threshold above it
	 * leaves nothing. */
	ASSERT_EQ(canny_edges(step, 8, 8, 100, 800, out, err, sizeof err), 0);
	for (i = 0, n = 0; i < 64; i++)
		n += out[i] != 0;
	ASSERT_EQ(n, 0);
	ASSERT_EQ(canny_edges(step, 0, 8, 1, 2, out, err, sizeof err), -1);
	ASSERT_STREQ(err, "canny: 0x8 is no size it takes");
	ASSERT_EQ(canny(step, 5000, 5000, 1, 1, 2, out, err, sizeof err), -1);
	ASSERT_STREQ(err, "canny: 5000x5000 is no size it takes");
}

static void
test_cuda_path(void)
{
	unsigned char step[16 * 16], cpu[16 * 16], gpu[16 * 16];
	char	      err[256];
	int	      i, rc;

	for (i = 0; i < 256; i++)
		step[i] = (unsigned char)((i % 16) < 7 ? 10 : 230);
	ASSERT_EQ(canny(step, 16, 16, 1, 50, 150, cpu, err, sizeof err), 0);
	rc = canny_cuda(step, 16, 16, 1, 50, 150, gpu, err, sizeof err);
	if (rc == -1) {
		/* No CUDA in this build or no device: says so, never
		 * pretends. Equality is checked where a GPU is. */
		ASSERT_TRUE(strstr(err, "CUDA") != NULL);
		return;
	}
	ASSERT_EQ(memcmp(cpu, gpu, sizeof cpu), 0);
}

const struct unit_test test_canny[] = {
	{ "opencv_scenes", test_opencv_scenes },
	{ "small_cases", test_small_cases },
	{ "cuda_path", test_cuda_path },
	{ NULL, NULL },
};
