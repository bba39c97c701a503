/*
 * Image decoding on a corpus of good and broken files (tests/data/images),
 * EXIF orientation, fitting, PNG round trip and blank frames.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "unit.h"
#include "util.h"
#include "wfjob.h"

static int
decode_file(const char *name, const struct img_limits *lim, int ch,
    struct img *im, char *err, size_t errlen)
{
	char   path[256], *buf;
	size_t len;
	int    rc;

	snprintf(path, sizeof path, "images/%s", name);
	buf = file_slurp(unit_data(path), 1 << 22, &len, err, errlen);
	if (buf == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	rc = img_decode((unsigned char *)buf, len, lim, ch, im, err, errlen);
	free(buf);
	return (rc);
}

static void
refused(const char *name, const char *want, int line)
{
	struct img im;
	char	   err[256] = "";

	unit_checks++;
	if (decode_file(name, NULL, 3, &im, err, sizeof err) == 0) {
		img_free(&im);
		unit_fail(__FILE__, line, "%s: accepted", name);
	}
	if (strcmp(err, want) != 0)
		unit_fail(
		    __FILE__, line, "%s: \"%s\" != \"%s\"", name, err, want);
	ASSERT_TRUE(im.pix == NULL);
}

#define REFUSED(n, w) refused(n, w, __LINE__)

static void
test_broken_files(void)
{
	struct img_limits lim = img_limits_default;
	struct img	  im;
	char		  err[256];

	REFUSED("empty.bin", "empty");
	REFUSED("text.txt", "not an image (JPEG, PNG, GIF, BMP, TGA or PNM)");
	REFUSED("truncated.png",
	    "64x48: corrupt or truncated image data (outofdata)");
	REFUSED(
	    "truncated.jpg", "64x48 JPEG: truncated (no end of image marker)");
	REFUSED("badheader.jpg",
	    "unreadable JPEG header (Corrupt JPEG data: 17 extraneous bytes "
	    "before marker 0xe0)");
	/* Found by fuzz_input: its Huffman table tripped an assert in
	 * stb_image and aborted the process; libjpeg-turbo reads it. */
	ASSERT_EQ(
	    decode_file("badhuffman.jpg", NULL, 3, &im, err, sizeof err), 0);
	img_free(&im);
	REFUSED("tall.png", "1x100000: width 1 not in 8..8192");
	REFUSED("zero.png", "0x16: width 0 not in 8..8192");
	REFUSED("giant.png", "30000x30000: width 30000 not in 8..8192");
	REFUSED("huge.png", "9000x9000: width 9000 not in 8..8192");
	lim.max_side = 10000;
	ASSERT_EQ(decode_file("huge.png", &lim, 3, &im, err, sizeof err), -1);
	ASSERT_STREQ(err, "9000x9000: 81000000 pixels over the 16777216 limit");
	lim = img_limits_default;
	lim.max_bytes = 1000;
	ASSERT_EQ(decode_file("ok.png", &lim, 3, &im, err, sizeof err), -1);
	ASSERT_STREQ(err, "6616 bytes over the 1000 byte limit");
}

static void
test_good_files(void)
{
	struct img im;
	char	   err[256];

	ASSERT_EQ(decode_file("ok.png", NULL, 0, &im, err, sizeof err), 0);
	ASSERT_EQ(im.w, 64);
	ASSERT_EQ(im.h, 48);
	ASSERT_EQ(im.channels, 3);
	/* Pixel (10, 5) of the generator: (x*4, y*5, 200). */
	ASSERT_EQ(im.pix[(5 * 64 + 10) * 3 + 0], 40);
	ASSERT_EQ(im.pix[(5 * 64 + 10) * 3 + 1], 25);
	ASSERT_EQ(im.pix[(5 * 64 + 10) * 3 + 2], 200);
	img_free(&im);
	ASSERT_EQ(decode_file("ok.jpg", NULL, 4, &im, err, sizeof err), 0);
	ASSERT_EQ(im.w, 64);
	ASSERT_EQ(im.channels, 4);
	img_free(&im);
}

static void
test_exif_orientation(void)
{
	struct img a, b;
	char	   err[256];
	int	   x, y, c, worst = 0;

	ASSERT_EQ(decode_file("ok.jpg", NULL, 3, &a, err, sizeof err), 0);
	ASSERT_EQ(decode_file("exif6.jpg", NULL, 3, &b, err, sizeof err), 0);
	/* Orientation 6: stored sideways, shown turned 90 degrees clockwise. */
	ASSERT_EQ(b.w, 48);
	ASSERT_EQ(b.h, 64);
	for (y = 0; y < b.h; y++)
		for (x = 0; x < b.w; x++)
			for (c = 0; c < 3; c++) {
				int d = b.pix[(y * b.w + x) * 3 + c] -
				    a.pix[((a.h - 1 - x) * a.w + y) * 3 + c];

				if (abs(d) > worst)
					worst = abs(d);
			}
	ASSERT_EQ(worst, 0);
	img_free(&a);
	img_free(&b);
}

static void
test_fit_and_png(void)
{
	struct img     a, b, c;
	unsigned char *png;
	size_t	       len;
	char	       err[256];

	ASSERT_EQ(decode_file("ok.png", NULL, 3, &a, err, sizeof err), 0);
	/* 64x48 to 32x32: the middle 48x48 (x 8..55), scaled by 2/3. */
	ASSERT_EQ(img_fit(&a, 32, 32, &b, err, sizeof err), 0);
	ASSERT_EQ(b.w, 32);
	ASSERT_EQ(b.h, 32);
	/* Blue is 200 left of x=32 and 40 right of it: the halves stay. */
	ASSERT_EQ(b.pix[(16 * 32 + 2) * 3 + 2], 200);
	ASSERT_EQ(b.pix[(16 * 32 + 29) * 3 + 2], 40);
	png = img_png(&b, &len, err, sizeof err);
	ASSERT_TRUE(png != NULL);
	ASSERT_EQ(img_decode(png, len, NULL, 0, &c, err, sizeof err), 0);
	ASSERT_EQ(c.w, 32);
	ASSERT_EQ(memcmp(b.pix, c.pix, 32 * 32 * 3), 0);
	free(png);
	img_free(&c);
	ASSERT_EQ(img_fit(&a, 0, 32, &c, err, sizeof err), -1);
	ASSERT_STREQ(err, "fit: 0x32 is no size");
	free(b.pix);
	img_free(&a);
}

static void
test_blank(void)
{
	struct img im;
	char	   err[256];

	ASSERT_EQ(decode_file("black.png", NULL, 3, &im, err, sizeof err), 0);
	ASSERT_EQ(img_blank(&im), IMG_BLANK_BLACK);
	img_free(&im);
	ASSERT_EQ(decode_file("white.png", NULL, 4, &im, err, sizeof err), 0);
	ASSERT_EQ(img_blank(&im), IMG_BLANK_UNIFORM);
	img_free(&im);
	ASSERT_EQ(decode_file("ok.png", NULL, 3, &im, err, sizeof err), 0);
	ASSERT_EQ(img_blank(&im), IMG_BLANK_NO);
	img_free(&im);
}

/* Base64 of a file under tests/data, for wf_input_prepare(). */
static char *
b64_file(const char *name, unsigned char **raw, size_t *rawlen)
{
	char err[256];

	*raw = (unsigned char *)file_slurp(
	    unit_data(name), 1 << 22, rawlen, err, sizeof err);
	if (*raw == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	return (inputs_base64_encode(*raw, *rawlen));
}

static void
test_prepare(void)
{
	struct wf_input in;
	struct img	im;
	unsigned char  *raw, *up;
	size_t		rawlen, len;
	char		err[256], *b64;

	memset(&in, 0, sizeof in);
	snprintf(in.field, sizeof in.field, "inputs.image");
	b64 = b64_file("images/ok.png", &raw, &rawlen);
	in.source = b64;
	/* Nothing to change: the bytes go up as they came. */
	ASSERT_EQ(
	    wf_input_prepare(&in, NULL, NULL, &up, &len, err, sizeof err), 0);
	ASSERT_EQ(len, rawlen);
	ASSERT_EQ(memcmp(up, raw, len), 0);
	free(up);
	/* Fitted: a PNG of exactly the size asked. */
	in.width = 32;
	in.height = 40;
	ASSERT_EQ(
	    wf_input_prepare(&in, NULL, NULL, &up, &len, err, sizeof err), 0);
	ASSERT_EQ(img_decode(up, len, NULL, 0, &im, err, sizeof err), 0);
	ASSERT_EQ(im.w, 32);
	ASSERT_EQ(im.h, 40);
	img_free(&im);
	free(up);
	free(b64);
	free(raw);
	/* Canny: a one-channel PNG, OpenCV's edge map of the picture. */
	b64 = b64_file("canny/square.ppm", &raw, &rawlen);
	free(raw);
	raw = (unsigned char *)file_slurp(unit_data("canny/square.100-200.pgm"),
	    1 << 20, &rawlen, err, sizeof err);
	ASSERT_TRUE(raw != NULL && rawlen == 13 + 256);
	in.source = b64;
	in.width = in.height = 0;
	in.canny = 1;
	in.low = 100;
	in.high = 200;
	ASSERT_EQ(
	    wf_input_prepare(&in, NULL, NULL, &up, &len, err, sizeof err), 0);
	ASSERT_EQ(img_decode(up, len, NULL, 0, &im, err, sizeof err), 0);
	ASSERT_EQ(im.channels, 1);
	ASSERT_EQ(im.w, 16);
	ASSERT_EQ(memcmp(im.pix, raw + 13, 256), 0);
	img_free(&im);
	free(up);
	free(b64);
	free(raw);
	/* A text file is refused with the field named. */
	b64 = b64_file("images/text.txt", &raw, &rawlen);
	in.source = b64;
	ASSERT_EQ(
	    wf_input_prepare(&in, NULL, NULL, &up, &len, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "inputs.image: not an image (JPEG, PNG, GIF, BMP, TGA or PNM)");
	ASSERT_TRUE(up == NULL);
	free(b64);
	free(raw);
}

const struct unit_test test_img[] = {
	{ "prepare", test_prepare },
	{ "broken_files", test_broken_files },
	{ "good_files", test_good_files },
	{ "exif_orientation", test_exif_orientation },
	{ "fit_and_png", test_fit_and_png },
	{ "blank", test_blank },
	{ NULL, NULL },
};
