/*
 * Canny on a CUDA GPU (see canny.h), step for step the integer arithmetic
 * of canny.c, so the bytes are the same: grey, 5x5 binomial blur with
 * BORDER_REFLECT_101, Sobel with replicated borders, squared L2
 * magnitude in a frame of zeros, non-maximum suppression with the same
 * tie rules, then hysteresis as a fixed point: a pass turns every weak
 * pixel next to an edge into an edge, and passes repeat until one changes
 * nothing, which is the same set the CPU's flood fill reaches.
 *
 * Built only where nvcc is found (shared/CMakeLists.txt); the program
 * links the CUDA runtime then. Errors never abort: they come back in err,
 * and the caller uses the CPU path.
 */
#include <stdio.h>
#include <math.h>

#include <cuda_runtime.h>

#define CANNY_SHIFT 15
#define CANNY_TG22  13573
#define CANNY_MAX_PIXELS (4096LL * 4096)

__device__ static int
cc_reflect(int i, int n)
{
	if (n == 1)
		return (0);
	while (i < 0 || i >= n)
		i = i < 0 ? -i : 2 * n - 2 - i;
	return (i);
}

__global__ static void
cc_gray(const unsigned char *pix, int n, int ch, unsigned char *g)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= n)
		return;
	const unsigned char *p = pix + (size_t)i * ch;
	g[i] = ch < 3 ? p[0]
		      : (unsigned char)((9798 * p[0] + 19235 * p[1] +
					    3735 * p[2] + 16384) >> 15);
}

__global__ static void
cc_blur_rows(const unsigned char *g, int w, int h, int *row)
{
	const int k[5] = { 1, 4, 6, 4, 1 };
	int	  x = blockIdx.x * blockDim.x + threadIdx.x;
	int	  y = blockIdx.y * blockDim.y + threadIdx.y, s = 0, t;

	if (x >= w || y >= h)
		return;
	for (t = 0; t < 5; t++)
		s += k[t] * g[(size_t)y * w + cc_reflect(x + t - 2, w)];
	row[(size_t)y * w + x] = s;
}

__global__ static void
cc_blur_cols(const int *row, int w, int h, unsigned char *out)
{
	const int k[5] = { 1, 4, 6, 4, 1 };
	int	  x = blockIdx.x * blockDim.x + threadIdx.x;
	int	  y = blockIdx.y * blockDim.y + threadIdx.y, s = 0, t;

	if (x >= w || y >= h)
		return;
	for (t = 0; t < 5; t++)
		s += k[t] * row[(size_t)cc_reflect(y + t - 2, h) * w + x];
	out[(size_t)y * w + x] = (unsigned char)((s + 128) >> 8);
}

__global__ static void
cc_sobel(const unsigned char *src, int w, int h, int *mag, short *dx,
    short *dy)
{
	int x = blockIdx.x * blockDim.x + threadIdx.x;
	int y = blockIdx.y * blockDim.y + threadIdx.y;

	if (x >= w || y >= h)
		return;
	int xm = x > 0 ? x - 1 : 0, xp = x < w - 1 ? x + 1 : x;
	int ym = y > 0 ? y - 1 : 0, yp = y < h - 1 ? y + 1 : y;
#define P(yy, xx) ((int)src[(size_t)(yy) * w + (xx)])
	int gx = P(ym, xp) - P(ym, xm) + 2 * (P(y, xp) - P(y, xm)) +
	    P(yp, xp) - P(yp, xm);
	int gy = P(yp, xm) - P(ym, xm) + 2 * (P(yp, x) - P(ym, x)) +
	    P(yp, xp) - P(ym, xp);
#undef P
	dx[(size_t)y * w + x] = (short)gx;
	dy[(size_t)y * w + x] = (short)gy;
	mag[(size_t)(y + 1) * (w + 2) + x + 1] = gx * gx + gy * gy;
}

__global__ static void
cc_nms(const int *mag, const short *dx, const short *dy, int w, int h,
    int lo, int hi, unsigned char *map)
{
	int    x = blockIdx.x * blockDim.x + threadIdx.x;
	int    y = blockIdx.y * blockDim.y + threadIdx.y;
	size_t W = (size_t)w + 2;

	if (x >= w || y >= h)
		return;
	size_t j = (y + 1) * W + x + 1;
	int    m = mag[j], xs = dx[(size_t)y * w + x];
	int    ys = dy[(size_t)y * w + x], ax = abs(xs);
	int    ay = abs(ys) << CANNY_SHIFT, tg22x = ax * CANNY_TG22, keep;

	map[j] = 1;
	if (m <= lo)
		return;
	if (ay < tg22x)
		keep = m > mag[j - 1] && m >= mag[j + 1];
	else if (ay > tg22x + (ax << (CANNY_SHIFT + 1)))
		keep = m > mag[j - W] && m >= mag[j + W];
	else {
		int s = (xs ^ ys) < 0 ? -1 : 1;

		keep = m > mag[j - W - s] && m > mag[j + W + s];
	}
	if (keep)
		map[j] = m > hi ? 2 : 0;
}

__global__ static void
cc_grow(unsigned char *map, int w, int h, int *changed)
{
	int    x = blockIdx.x * blockDim.x + threadIdx.x;
	int    y = blockIdx.y * blockDim.y + threadIdx.y;
	size_t W = (size_t)w + 2;

	if (x >= w || y >= h)
		return;
	size_t j = (y + 1) * W + x + 1;
	if (map[j] != 0)
		return;
	if (map[j - 1] == 2 || map[j + 1] == 2 || map[j - W] == 2 ||
	    map[j + W] == 2 || map[j - W - 1] == 2 || map[j - W + 1] == 2 ||
	    map[j + W - 1] == 2 || map[j + W + 1] == 2) {
		map[j] = 2;
		*changed = 1;
	}
}

__global__ static void
cc_out(const unsigned char *map, int w, int h, unsigned char *out)
{
	int x = blockIdx.x * blockDim.x + threadIdx.x;
	int y = blockIdx.y * blockDim.y + threadIdx.y;

	if (x >= w || y >= h)
		return;
	out[(size_t)y * w + x] =
	    map[(size_t)(y + 1) * (w + 2) + x + 1] == 2 ? 255 : 0;
}

static int
cc_threshold(double t)
{
	if (t > 32767.0)
		t = 32767.0;
	if (t > 0)
		t *= t;
	return ((int)floor(t));
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
	cc_gray<<<(unsigned)((n + 255) / 256), 256>>>(d_pix, (int)n, ch, d_g);
	cc_blur_rows<<<g, b>>>(d_g, w, h, d_row);
	cc_blur_cols<<<g, b>>>(d_row, w, h, d_blur);
	cc_sobel<<<g, b>>>(d_blur, w, h, d_mag, d_dx, d_dy);
	cc_nms<<<g, b>>>(d_mag, d_dx, d_dy, w, h, cc_threshold(low),
	    cc_threshold(high), d_map);
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
	cc_out<<<g, b>>>(d_map, w, h, d_out);
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
