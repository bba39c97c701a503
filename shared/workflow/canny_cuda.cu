/*
 * Canny on a CUDA GPU (see canny.h). Every per-pixel step is the code of
 * canny_core.h, the same lines canny.c runs, compiled for the device: one
 * thread a pixel, one kernel a step. Hysteresis is a fixed point instead
 * of the CPU's flood fill: a pass turns every weak pixel next to an edge
 * into an edge, and passes repeat until one changes nothing, which
 * reaches the same set of pixels.
 *
 * Built only where nvcc is found (shared/CMakeLists.txt). Errors never
 * abort: they come back in err, and the caller uses the CPU path.
 */
#include <stdio.h>

#include <cuda_runtime.h>

#include "canny_core.h"

#define CANNY_MAX_PIXELS (4096LL * 4096)

__global__ static void
cc_gray(const unsigned char *pix, int n, int ch, unsigned char *g)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		g[i] = canny_gray_px(pix + (size_t)i * ch, ch);
}

/* The 2-D kernels: one thread a pixel, doing one step of canny_core.h. */
enum cc_step { CC_BLUR_ROWS, CC_BLUR_COLS, CC_SOBEL, CC_NMS, CC_OUT };

struct cc_bufs {
	const unsigned char *g;
	int		    *row;
	unsigned char	    *blur;
	int		    *mag;
	short		    *dx, *dy;
	unsigned char	    *map, *out;
	int		     lo, hi;
};

__global__ static void
cc_step(enum cc_step step, struct cc_bufs b, int w, int h)
{
	int    x = blockIdx.x * blockDim.x + threadIdx.x;
	int    y = blockIdx.y * blockDim.y + threadIdx.y;
	size_t j = (size_t)(y + 1) * (w + 2) + x + 1;

	if (x >= w || y >= h)
		return;
	switch (step) {
	case CC_BLUR_ROWS:
		b.row[(size_t)y * w + x] = canny_blur_row_px(b.g, w, x, y);
		break;
	case CC_BLUR_COLS:
		b.blur[(size_t)y * w + x] = canny_blur_col_px(b.row, w, h, x, y);
		break;
	case CC_SOBEL:
		canny_sobel_px(b.blur, w, h, x, y, b.mag, b.dx, b.dy);
		break;
	case CC_NMS:
		b.map[j] = canny_nms_px(b.mag, b.dx, b.dy, w, x, y, b.lo, b.hi);
		break;
	case CC_OUT:
		b.out[(size_t)y * w + x] = b.map[j] == 2 ? 255 : 0;
		break;
	}
}

/* One hysteresis pass: a weak pixel next to an edge becomes one. */
__global__ static void
cc_grow(unsigned char *map, int w, int h, int *changed)
{
	int    x = blockIdx.x * blockDim.x + threadIdx.x;
	int    y = blockIdx.y * blockDim.y + threadIdx.y;
	size_t W = (size_t)w + 2, j = (size_t)(y + 1) * W + x + 1;

	if (x >= w || y >= h || map[j] != 0)
		return;
	if (map[j - 1] == 2 || map[j + 1] == 2 || map[j - W] == 2 ||
	    map[j + W] == 2 || map[j - W - 1] == 2 || map[j - W + 1] == 2 ||
	    map[j + W - 1] == 2 || map[j + W + 1] == 2) {
		map[j] = 2;
		*changed = 1;
	}
}

#define CC_TRY(call)                                                           \
	do {                                                                   \
		cudaError_t e_ = (call);                                       \
		if (e_ != cudaSuccess) {                                       \
			snprintf(err, errlen, "canny: CUDA %s: %s", #call,     \
			    cudaGetErrorString(e_));                           \
			goto done;                                             \
		}                                                              \
	} while (0)

extern "C" int
canny_cuda(const unsigned char *pix, int w, int h, int ch, double low,
    double high, unsigned char *out, char *err, size_t errlen)
{
	unsigned char *d_pix = NULL, *d_g = NULL, *d_blur = NULL, *d_map = NULL;
	unsigned char *d_out = NULL;
	int	      *d_row = NULL, *d_mag = NULL, *d_changed = NULL;
	short	      *d_dx = NULL, *d_dy = NULL;
	size_t	       n = (size_t)w * h, cells = (size_t)(w + 2) * (h + 2);
	int	       devices = 0, changed, rc = -1, i;
	dim3	       b(16, 16), g((w + 15) / 16, (h + 15) / 16);
	struct cc_bufs bufs;

	if (w < 1 || h < 1 || (long long)w * h > CANNY_MAX_PIXELS) {
		snprintf(err, errlen, "canny: %dx%d is no size it takes", w, h);
		return (-1);
	}
	if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
		snprintf(err, errlen, "canny: no CUDA device");
		return (-1);
	}
	if (low > high) {
		double t = low;

		low = high;
		high = t;
	}
	CC_TRY(cudaMalloc((void **)&d_pix, n * ch));
	CC_TRY(cudaMalloc((void **)&d_g, n));
	CC_TRY(cudaMalloc((void **)&d_blur, n));
	CC_TRY(cudaMalloc((void **)&d_out, n));
	CC_TRY(cudaMalloc((void **)&d_row, n * sizeof(int)));
	CC_TRY(cudaMalloc((void **)&d_dx, n * sizeof(short)));
	CC_TRY(cudaMalloc((void **)&d_dy, n * sizeof(short)));
	CC_TRY(cudaMalloc((void **)&d_mag, cells * sizeof(int)));
	CC_TRY(cudaMalloc((void **)&d_map, cells));
	CC_TRY(cudaMalloc((void **)&d_changed, sizeof(int)));
	CC_TRY(cudaMemcpy(d_pix, pix, n * ch, cudaMemcpyHostToDevice));
	CC_TRY(cudaMemset(d_mag, 0, cells * sizeof(int)));
	CC_TRY(cudaMemset(d_map, 1, cells));
	bufs.g = d_g;
	bufs.row = d_row;
	bufs.blur = d_blur;
	bufs.mag = d_mag;
	bufs.dx = d_dx;
	bufs.dy = d_dy;
	bufs.map = d_map;
	bufs.out = d_out;
	bufs.lo = canny_threshold(low);
	bufs.hi = canny_threshold(high);
	cc_gray<<<(unsigned)((n + 255) / 256), 256>>>(d_pix, (int)n, ch, d_g);
	cc_step<<<g, b>>>(CC_BLUR_ROWS, bufs, w, h);
	cc_step<<<g, b>>>(CC_BLUR_COLS, bufs, w, h);
	cc_step<<<g, b>>>(CC_SOBEL, bufs, w, h);
	cc_step<<<g, b>>>(CC_NMS, bufs, w, h);
	CC_TRY(cudaGetLastError());
	/* Each pass grows edges by at least a pixel; check every 16. */
	for (i = 0; i < w * h; i += 16) {
		int k;

		changed = 0;
		CC_TRY(cudaMemcpy(d_changed, &changed, sizeof changed,
		    cudaMemcpyHostToDevice));
		for (k = 0; k < 16; k++)
			cc_grow<<<g, b>>>(d_map, w, h, d_changed);
		CC_TRY(cudaMemcpy(&changed, d_changed, sizeof changed,
		    cudaMemcpyDeviceToHost));
		if (!changed)
			break;
	}
	cc_step<<<g, b>>>(CC_OUT, bufs, w, h);
	CC_TRY(cudaGetLastError());
	CC_TRY(cudaMemcpy(out, d_out, n, cudaMemcpyDeviceToHost));
	rc = 0;
done:
	cudaFree(d_pix);
	cudaFree(d_g);
	cudaFree(d_blur);
	cudaFree(d_out);
	cudaFree(d_row);
	cudaFree(d_dx);
	cudaFree(d_dy);
	cudaFree(d_mag);
	cudaFree(d_map);
	cudaFree(d_changed);
	return (rc);
}
