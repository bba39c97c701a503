/*
 * canny_cuda() for builds without nvcc (see canny.h): it says so, and the
 * caller uses canny() instead. Its own file, so only what links the CUDA
 * Canny target (comfyq_canny_cuda) gets either this or canny_cuda.cu.
 */
#include <stdio.h>

#include "canny.h"

int
canny_cuda(const unsigned char *pix, int w, int h, int ch, double low,
    double high, unsigned char *out, char *err, size_t errlen)
{
	(void)pix, (void)w, (void)h, (void)ch, (void)low, (void)high, (void)out;
	snprintf(err, errlen, "canny: this build has no CUDA");
	return (-1);
}
