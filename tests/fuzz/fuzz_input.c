/*
 * libFuzzer target: a job's input image as it reaches the worker, through
 * wf_input_prepare() (base64 and data URI decoding, the image checks and
 * decoding with the EXIF orientation, fitting, Canny, PNG encoding), and
 * the same bytes straight into img_decode() as a file a URL would have
 * brought. The first byte picks the fitting and Canny; the rest is the
 * source text. URLs are left out (no network here). Limits are small so
 * that each run is quick. tests/fuzz/run.sh builds and runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "inputs.h"
#include "wfjob.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct img_limits fuzz_limits = {
	.max_bytes = 1 << 20,
	.max_pixels = 512 * 512,
	.min_side = 1,
	.max_side = 2048,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct inputs_opts io = { .max_bytes = 1 << 20 };
	struct wf_input			in;
	struct img			im;
	unsigned char		       *out = NULL;
	size_t				outlen;
	char				err[512], *text;

	if (len < 1)
		return (0);
	/* The bytes as a downloaded file. */
	if (img_decode(data + 1, len - 1, &fuzz_limits, data[0] % 5, &im, err,
		sizeof err) == 0) {
		(void)img_blank(&im);
		img_free(&im);
	}
	(void)img_exif_orientation(data + 1, len - 1);
	/* The bytes as the text of inputs.x. */
	if ((text = malloc(len)) == NULL)
		return (0);
	memcpy(text, data + 1, len - 1);
	text[len - 1] = '\0';
	if (!inputs_is_url(text)) {
		memset(&in, 0, sizeof in);
		strcpy(in.name, "x");
		strcpy(in.field, "inputs.x");
		in.source = text;
		if (data[0] & 0x10) {
			in.width = 8 + (data[0] & 0x7) * 8;
			in.height = 8 + ((data[0] >> 5) & 0x3) * 8;
		}
		in.canny = (data[0] & 0x8) != 0;
		in.low = 100;
		in.high = 200;
		if (wf_input_prepare(&in, &io, &fuzz_limits, &out, &outlen, err,
			sizeof err) == 0 &&
		    outlen == 0)
			abort(); /* an accepted input has bytes */
		free(out);
	}
	free(text);
	return (0);
}
