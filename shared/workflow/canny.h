/*
 * Canny edge detection for ControlNet condition images (the "canny"
 * preprocessor), so a producer may send a photo instead of an edge map.
 * CPU code always; canny_cuda.cu gives the same bytes on a GPU where the
 * build has CUDA. Output: one byte per pixel, 255 on an edge, 0 elsewhere.
 * The steps and their rounding are those of OpenCV's cvtColor(RGB2GRAY),
 * GaussianBlur(5x5, sigma 0) and Canny(L2 gradient), and the tests hold
 * this code to OpenCV's output byte for byte.
 */
#ifndef COMFYQ_CANNY_H
#define COMFYQ_CANNY_H

#include <stddef.h>

#define CANNY_MAX_PIXELS (4096LL * 4096)

int canny(const unsigned char *pix, int w, int h, int ch, double low,
    double high, unsigned char *out, char *err, size_t errlen);
int canny_gray_blur(const unsigned char *pix, int w, int h, int ch,
    unsigned char *out, char *err, size_t errlen);
int canny_edges(const unsigned char *src, int w, int h, double low, double high,
    unsigned char *out, char *err, size_t errlen);
int canny_cuda(const unsigned char *pix, int w, int h, int ch, double low,
    double high, unsigned char *out, char *err, size_t errlen);

#endif
