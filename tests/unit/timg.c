/*
 * Test images (see timg.h), encoded by the workflow layer's own img_png so
 * the tests write PNGs the way the code under test reads them. A failure
 * fails the running test.
 */
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "timg.h"
#include "unit.h"

unsigned char *
timg_png(int w, int h, int fill, int *len)
{
	struct img     im = { w, h, 3, NULL };
	unsigned char *png;
	char	       err[256];
	size_t	       i, n = (size_t)w * h * 3, plen;

	im.pix = malloc(n);
	ASSERT_TRUE(im.pix != NULL);
	for (i = 0; i < n; i++)
		im.pix[i] = fill == TIMG_GRADIENT ? (unsigned char)(i * 7 % 251)
						  : (unsigned char)fill;
	png = img_png(&im, &plen, err, sizeof err);
	free(im.pix);
	if (png == NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	*len = (int)plen;
	return (png);
}
