/*
 * Image decoding and checks (see img.h), on the stb libraries Debian
 * ships as libstb, except JPEGs: those go to libjpeg-turbo, as the fuzzer
 * (tests/fuzz/fuzz_input.c) found a JPEG whose Huffman table trips an
 * assert in Debian's stb_image (stbi__jpeg_huff_decode) and would abort
 * the worker.
 *
 * A decoder fills in a JPEG cut short without complaint (the missing rows
 * come out grey), so a JPEG must end its last scan with an EOI marker:
 * inside entropy-coded data every 0xFF is followed by 0x00 or a restart
 * marker, so FF D9 after the last FF DA is the real end. Phones store
 * photos sideways with an EXIF orientation tag that ComfyUI's LoadImage
 * honours; decoding applies it too, so a picture we fit or edge-detect is
 * the right way up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

#include "errout.h"
#include "img.h"

const struct img_limits img_limits_default = {
	.max_bytes = 20 << 20,
	.max_pixels = 4096LL * 4096,
	.min_side = 8,
	.max_side = 8192,
};

static unsigned
img_be16(const unsigned char *p, int le)
{
	return (le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]);
}

static unsigned long
img_be32(const unsigned char *p, int le)
{
	return (le ? (unsigned long)img_be16(p, 1) |
		    (unsigned long)img_be16(p + 2, 1) << 16
		   : (unsigned long)img_be16(p, 0) << 16 | img_be16(p + 2, 0));
}

/* Orientation from a TIFF block (the body of an Exif APP1). */
static int
img_tiff_orientation(const unsigned char *t, size_t len)
{
	unsigned long ifd;
	unsigned      n, i;
	int	      le;

	if (len < 8 || (memcmp(t, "II", 2) != 0 && memcmp(t, "MM", 2) != 0))
		return (1);
	le = t[0] == 'I';
	ifd = img_be32(t + 4, le);
	if (ifd + 2 > len)
		return (1);
	n = img_be16(t + ifd, le);
	for (i = 0; i < n && ifd + 2 + (i + 1) * 12 <= len; i++) {
		const unsigned char *e = t + ifd + 2 + i * 12;
		unsigned	     v;

		if (img_be16(e, le) != 0x0112)
			continue;
		v = img_be16(e + 8, le);
		return (v >= 1 && v <= 8 ? (int)v : 1);
	}
	return (1);
}

/* The EXIF orientation (1..8) of a JPEG; 1 when there is none. */
int
img_exif_orientation(const unsigned char *b, size_t len)
{
	size_t i = 2, seg;

	if (len < 4 || b[0] != 0xff || b[1] != 0xd8)
		return (1);
	while (i + 4 <= len && b[i] == 0xff && b[i + 1] != 0xda) {
		seg = img_be16(b + i + 2, 0);
		if (seg < 2 || i + 2 + seg > len)
			return (1);
		if (b[i + 1] == 0xe1 && seg >= 8 &&
		    memcmp(b + i + 4, "Exif\0\0", 6) == 0)
			return (img_tiff_orientation(b + i + 10, seg - 8));
		i += 2 + seg;
	}
	return (1);
}

/* Whether a JPEG's last scan is closed by EOI (see the top comment). */
static int
img_jpeg_complete(const unsigned char *b, size_t len)
{
	size_t i, sos = 0;

	for (i = 2; i + 1 < len; i++)
		if (b[i] == 0xff && b[i + 1] == 0xda)
			sos = i;
	for (i = len - 1; i > sos + 1; i--)
		if (b[i - 1] == 0xff && b[i] == 0xd9)
			return (1);
	return (0);
}

static int
img_check_size(
    int w, int h, const struct img_limits *lim, char *err, size_t errlen)
{
	if (w < lim->min_side || w > lim->max_side)
		ERR_OUT("%dx%d: width %d not in %d..%d", w, h, w, lim->min_side,
		    lim->max_side);
	if (h < lim->min_side || h > lim->max_side)
		ERR_OUT("%dx%d: height %d not in %d..%d", w, h, h,
		    lim->min_side, lim->max_side);
	if ((long long)w * h > lim->max_pixels)
		ERR_OUT("%dx%d: %lld pixels over the %lld limit", w, h,
		    (long long)w * h, lim->max_pixels);
	return (0);
}

/*
 * Decodes a JPEG into im: 1 channel for a grey file, 3 otherwise, or for
 * channels 1..4 grey or RGB (the caller adds alpha). Returns 0 with
 * im->pix the caller's (img_free), or -1 with nothing allocated.
 */
static int
img_jpeg_decode(const unsigned char *buf, size_t len,
    const struct img_limits *lim, int channels, struct img *im, char *err,
    size_t errlen)
{
	tjhandle tj;
	int	 w, h, sub, cs, pf, rc;

	if ((tj = tjInitDecompress()) == NULL)
		ERR_OUT("JPEG: libjpeg-turbo did not start");
	if (tjDecompressHeader3(
		tj, buf, (unsigned long)len, &w, &h, &sub, &cs) == -1) {
		snprintf(err, errlen, "unreadable JPEG header (%s)",
		    tjGetErrorStr2(tj));
		tjDestroy(tj);
		return (-1);
	}
	if (img_check_size(w, h, lim, err, errlen) == -1) {
		tjDestroy(tj);
		return (-1);
	}
	if (!img_jpeg_complete(buf, len)) {
		tjDestroy(tj);
		ERR_OUT("%dx%d JPEG: truncated (no end of image marker)", w, h);
	}
	if (channels == 0)
		channels = cs == TJCS_GRAY ? 1 : 3;
	channels = channels <= 2 ? 1 : 3; /* alpha is added after */
	pf = channels == 1 ? TJPF_GRAY : TJPF_RGB;
	if ((im->pix = malloc((size_t)w * h * channels)) == NULL) {
		tjDestroy(tj);
		ERR_OUT("out of memory for a %dx%d image", w, h);
	}
	im->w = w;
	im->h = h;
	im->channels = channels;
	rc =
	    tjDecompress2(tj, buf, (unsigned long)len, im->pix, w, 0, h, pf, 0);
	/* A warning (extra bytes, say) leaves a whole picture. */
	if (rc == -1 && tjGetErrorCode(tj) != TJERR_WARNING) {
		snprintf(err, errlen, "%dx%d: corrupt JPEG data (%s)", w, h,
		    tjGetErrorStr2(tj));
		free(im->pix);
		memset(im, 0, sizeof *im);
		tjDestroy(tj);
		return (-1);
	}
	tjDestroy(tj);
	return (0);
}

/*
 * Adds an opaque alpha channel: 1 -> 2 or 3 -> 4 channels, in a new
 * im->pix (the old one is freed). On -1 im is as it was, still the
 * caller's to free.
 */
static int
img_add_alpha(struct img *im, char *err, size_t errlen)
{
	size_t	       n = (size_t)im->w * im->h, i;
	int	       c = im->channels, k;
	unsigned char *out;

	if ((out = malloc(n * (c + 1))) == NULL)
		ERR_OUT("out of memory for a %dx%d image", im->w, im->h);
	for (i = 0; i < n; i++) {
		for (k = 0; k < c; k++)
			out[i * (c + 1) + k] = im->pix[i * c + k];
		out[i * (c + 1) + c] = 255;
	}
	free(im->pix);
	im->pix = out;
	im->channels = c + 1;
	return (0);
}

/*
 * Applies EXIF orientation o (2..8) to im, in a new im->pix (the old one is
 * freed). On -1 im is as it was, still the caller's to free.
 */
static int
img_orient(struct img *im, int o, char *err, size_t errlen)
{
	unsigned char *out;
	int	       w = im->w, h = im->h, c = im->channels, x, y, sx, sy;
	int	       ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;

	if ((out = malloc((size_t)w * h * c)) == NULL)
		ERR_OUT("out of memory for a %dx%d image", w, h);
	for (y = 0; y < oh; y++)
		for (x = 0; x < ow; x++) {
			switch (o) {
			case 2:
				sx = w - 1 - x;
				sy = y;
				break;
			case 3:
				sx = w - 1 - x;
				sy = h - 1 - y;
				break;
			case 4:
				sx = x;
				sy = h - 1 - y;
				break;
			case 5:
				sx = y;
				sy = x;
				break;
			case 6:
				sx = y;
				sy = h - 1 - x;
				break;
			case 7:
				sx = w - 1 - y;
				sy = h - 1 - x;
				break;
			default:
				sx = w - 1 - y;
				sy = x;
				break;
			}
			memcpy(out + ((size_t)y * ow + x) * c,
			    im->pix + ((size_t)sy * w + sx) * c, (size_t)c);
		}
	free(im->pix);
	im->pix = out;
	im->w = ow;
	im->h = oh;
	return (0);
}

/* The size in an image's header, from stb_image; -1 with err if none. */
static int
img_stb_info(const unsigned char *buf, size_t len, int *w, int *h, int *comp,
    char *err, size_t errlen)
{
	const char *why;

	if (len <= INT32_MAX &&
	    stbi_info_from_memory(buf, (int)len, w, h, comp))
		return (0);
	why = stbi_failure_reason();
	if (why == NULL || strcmp(why, "unknown image type") == 0)
		ERR_OUT("not an image (JPEG, PNG, GIF, BMP, TGA or PNM)");
	ERR_OUT("unreadable image header (%s)", why);
}

static int
img_is_png(const unsigned char *buf, size_t len)
{
	return (len >= 24 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0);
}

/*
 * The size an image declares, read from its header without decoding
 * anything: a PNG's IHDR as it stands (whatever it claims), other formats
 * through stb_image. Returns 0, or -1 with err when there is no header.
 */
int
img_info(const unsigned char *buf, size_t len, int *w, int *h, char *err,
    size_t errlen)
{
	int comp;

	if (img_is_png(buf, len)) {
		*w = (int)(img_be32(buf + 16, 0) & 0x7fffffff);
		*h = (int)(img_be32(buf + 20, 0) & 0x7fffffff);
		return (0);
	}
	return (img_stb_info(buf, len, w, h, &comp, err, errlen));
}

/*
 * Decodes buf[0..len) into im, checking it against lim (NULL: the
 * defaults). channels is 0 to keep the file's, or 1..4 to convert. Returns
 * 0, the caller then freeing im with img_free(), or -1 with a reason such
 * as "1x100000: height 100000 not in 8..8192" and nothing left in im.
 */
int
img_decode(const unsigned char *buf, size_t len, const struct img_limits *lim,
    int channels, struct img *im, char *err, size_t errlen)
{
	int w, h, comp, o;

	memset(im, 0, sizeof *im);
	if (lim == NULL)
		lim = &img_limits_default;
	if (len == 0)
		ERR_OUT("empty");
	if (len > lim->max_bytes)
		ERR_OUT(
		    "%zu bytes over the %zu byte limit", len, lim->max_bytes);
	/* A PNG's own header, so a 0 or giant size is named as such. */
	if (img_is_png(buf, len) &&
	    (img_info(buf, len, &w, &h, err, errlen) == -1 ||
		img_check_size(w, h, lim, err, errlen) == -1))
		return (-1);
	/* stb_image takes FF FF .. D8 for a JPEG too: never let it see one. */
	if (buf[0] == 0xff) {
		if (img_jpeg_decode(buf, len, lim, channels, im, err, errlen) ==
			-1 ||
		    (channels != 0 && im->channels < channels &&
			img_add_alpha(im, err, errlen) == -1))
			goto fail;
	} else {
		if (img_stb_info(buf, len, &w, &h, &comp, err, errlen) == -1 ||
		    img_check_size(w, h, lim, err, errlen) == -1)
			return (-1);
		im->pix = stbi_load_from_memory(
		    buf, (int)len, &im->w, &im->h, &comp, channels);
		if (im->pix == NULL)
			ERR_OUT("%dx%d: corrupt or truncated image data (%s)",
			    w, h, stbi_failure_reason());
		im->channels = channels ? channels : comp;
	}
	o = img_exif_orientation(buf, len);
	if (o > 1 && img_orient(im, o, err, errlen) == -1)
		goto fail;
	return (0);
fail:
	img_free(im);
	return (-1);
}

void
img_free(struct img *im)
{
	stbi_image_free(im->pix);
	memset(im, 0, sizeof *im);
}

/*
 * Fits in to exactly w x h: crops the middle to that aspect ratio, then
 * resizes (as ComfyUI's ImageScale with crop "center"). Returns 0, the
 * caller then freeing out with img_free(), or -1 with nothing left in out.
 */
int
img_fit(const struct img *in, int w, int h, struct img *out, char *err,
    size_t errlen)
{
	int    cw = in->w, ch = in->h, x0, y0;
	size_t stride = (size_t)in->w * in->channels;

	memset(out, 0, sizeof *out);
	if (w < 1 || h < 1 || w > 16384 || h > 16384)
		ERR_OUT("fit: %dx%d is no size", w, h);
	/* The largest centred crop with the target's aspect ratio. */
	if ((long long)in->w * h > (long long)in->h * w)
		cw = (int)((long long)in->h * w / h);
	else
		ch = (int)((long long)in->w * h / w);
	if (cw < 1)
		cw = 1;
	if (ch < 1)
		ch = 1;
	x0 = (in->w - cw) / 2;
	y0 = (in->h - ch) / 2;
	if ((out->pix = malloc((size_t)w * h * in->channels)) == NULL)
		ERR_OUT("out of memory for a %dx%d image", w, h);
	out->w = w;
	out->h = h;
	out->channels = in->channels;
	if (!stbir_resize_uint8(
		in->pix + y0 * stride + (size_t)x0 * in->channels, cw, ch,
		(int)stride, out->pix, w, h, 0, in->channels)) {
		free(out->pix);
		memset(out, 0, sizeof *out);
		ERR_OUT("fit: resizing %dx%d to %dx%d failed", cw, ch, w, h);
	}
	return (0);
}

struct img_buf {
	unsigned char *p;
	size_t	       len, cap;
	int	       failed;
};

static void
img_png_write(void *ctx, void *data, int n)
{
	struct img_buf *b = ctx;
	unsigned char  *np;

	if (b->failed || n <= 0)
		return;
	if (b->len + (size_t)n > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 65536) + (size_t)n;

		if ((np = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, (size_t)n);
	b->len += (size_t)n;
}

/* PNG bytes of im (free() them), or NULL with err. */
unsigned char *
img_png(const struct img *im, size_t *len, char *err, size_t errlen)
{
	struct img_buf b = { NULL, 0, 0, 0 };

	if (!stbi_write_png_to_func(img_png_write, &b, im->w, im->h,
		im->channels, im->pix, im->w * im->channels) ||
	    b.failed) {
		free(b.p);
		snprintf(
		    err, errlen, "PNG encoding of %dx%d failed", im->w, im->h);
		return (NULL);
	}
	*len = b.len;
	return (b.p);
}

/*
 * Says whether an output frame is blank: every pixel within 8 of black,
 * or every colour channel within 2 of one value (alpha ignored).
 */
enum img_blank
img_blank(const struct img *im)
{
	unsigned char lo[3] = { 255, 255, 255 }, hi[3] = { 0, 0, 0 };
	size_t	      i, n = (size_t)im->w * im->h;
	int	      c, nc = im->channels >= 3 ? 3 : 1, black = 1, flat = 1;

	for (i = 0; i < n; i++)
		for (c = 0; c < nc; c++) {
			unsigned char v = im->pix[i * im->channels + c];

			if (v < lo[c])
				lo[c] = v;
			if (v > hi[c])
				hi[c] = v;
		}
	for (c = 0; c < nc; c++) {
		if (hi[c] > 8)
			black = 0;
		if (hi[c] - lo[c] > 2)
			flat = 0;
	}
	if (black)
		return (IMG_BLANK_BLACK);
	return (flat ? IMG_BLANK_UNIFORM : IMG_BLANK_NO);
}
