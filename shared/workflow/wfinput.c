/*
 * One input image, from the job's text to the bytes the worker uploads
 * (see wfjob.h). Blocking (a URL download, decoding, Canny), so the
 * worker runs it on its thread pool. Every image is decoded and checked,
 * even one that is uploaded as it came: ComfyUI accepts any bytes at
 * upload and fails only later, in LoadImage, after the GPU slot was taken.
 * An image that needs no change goes up as sent (ComfyUI applies its EXIF
 * orientation itself); one that is fitted or edge-detected goes up as PNG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canny.h"
#include "wfjob.h"

/*
 * Returns 0 with the upload bytes in *out (free() them), or -1 with
 * "inputs.face: <reason>" in err.
 */
int
wf_input_prepare(const struct wf_input *in, const struct inputs_opts *io,
    const struct img_limits *lim, unsigned char **out, size_t *len, char *err,
    size_t errlen)
{
	struct img     im, fit, edges;
	unsigned char *raw = NULL;
	size_t	       rawlen = 0;
	char	       why[512];
	int	       rc = -1;

	*out = NULL;
	memset(&fit, 0, sizeof fit);
	memset(&edges, 0, sizeof edges);
	if (inputs_fetch(in->source, io, &raw, &rawlen, why, sizeof why) ==
		-1 ||
	    img_decode(raw, rawlen, lim, in->canny ? 3 : 0, &im, why,
		sizeof why) == -1) {
		snprintf(err, errlen, "%s: %s", in->field, why);
		free(raw);
		return (-1);
	}
	if (!in->canny && in->width == 0) {
		*out = raw;
		*len = rawlen;
		img_free(&im);
		return (0);
	}
	if (in->width > 0 &&
	    img_fit(&im, in->width, in->height, &fit, why, sizeof why) == -1)
		goto done;
	if (in->canny) {
		const struct img *src = fit.pix != NULL ? &fit : &im;

		edges.w = src->w;
		edges.h = src->h;
		edges.channels = 1;
		if ((edges.pix = malloc((size_t)src->w * src->h)) == NULL) {
			snprintf(why, sizeof why, "out of memory");
			goto done;
		}
		if (canny(src->pix, src->w, src->h, src->channels, in->low,
			in->high, edges.pix, why, sizeof why) == -1)
			goto done;
	}
	*out = img_png(edges.pix != NULL ? &edges
		: fit.pix != NULL	 ? &fit
					 : &im,
	    len, why, sizeof why);
	rc = *out == NULL ? -1 : 0;
done:
	if (rc == -1)
		snprintf(err, errlen, "%s: %s", in->field, why);
	free(edges.pix);
	free(fit.pix);
	img_free(&im);
	free(raw);
	return (rc);
}
