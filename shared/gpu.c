/*
 * GPU probe and preflight (see gpu.h). CUDA errors are reported, never
 * fatal here: the worker decides (a broken device means it refuses to
 * claim). The preflight allocates a small buffer, writes a pattern with
 * cudaMemset, reads it back and checks every byte.
 */
#include <stdio.h>
#include <string.h>

#include "gpu.h"

#ifdef COMFYQ_HAVE_CUDA
#include <cuda_runtime.h>

#define GPU_PREFLIGHT_BYTES (1u << 20)

int
gpu_built_with_cuda(void)
{
	return (1);
}

static void
gpu_format_uuid(const unsigned char *b, char *out, size_t len)
{
	snprintf(out, len,
	    "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
	    b[11], b[12], b[13], b[14], b[15]);
}

void
gpu_probe(int device, struct gpu_info *g)
{
	struct cudaDeviceProp prop;
	cudaError_t	      e;
	size_t		      freeb, totalb;
	int		      n = 0;

	memset(g, 0, sizeof *g);
	g->device = device;
	if ((e = cudaGetDeviceCount(&n)) != cudaSuccess || n == 0) {
		/* No driver (or one older than the runtime) is the usual
		 * case on a machine without a GPU: say it plainly. */
		snprintf(g->why, sizeof g->why, "%s",
		    e == cudaErrorInsufficientDriver ? "no usable CUDA driver"
						     : "no CUDA device");
		snprintf(g->detail, sizeof g->detail, "cudaGetDeviceCount: %s",
		    e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
		return;
	}
	if (device < 0 || device >= n) {
		snprintf(g->why, sizeof g->why,
		    "CUDA device %d does not exist (%d found)", device, n);
		return;
	}
	if ((e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess ||
	    (e = cudaSetDevice(device)) != cudaSuccess ||
	    (e = cudaMemGetInfo(&freeb, &totalb)) != cudaSuccess) {
		snprintf(
		    g->why, sizeof g->why, "CUDA device %d unusable", device);
		snprintf(
		    g->detail, sizeof g->detail, "%s", cudaGetErrorString(e));
		return;
	}
	g->present = 1;
	snprintf(g->name, sizeof g->name, "%s", prop.name);
	gpu_format_uuid(
	    (const unsigned char *)prop.uuid.bytes, g->uuid, sizeof g->uuid);
	g->total_mb = (long long)(totalb >> 20);
	g->free_mb = (long long)(freeb >> 20);
}

int
gpu_preflight(int device, char *err, size_t errlen)
{
	static unsigned char host[GPU_PREFLIGHT_BYTES];
	void		    *dev = NULL;
	cudaError_t	     e;
	size_t		     i;
	int		     rc = -1;

	if ((e = cudaSetDevice(device)) != cudaSuccess ||
	    (e = cudaMalloc(&dev, GPU_PREFLIGHT_BYTES)) != cudaSuccess ||
	    (e = cudaMemset(dev, 0xa5, GPU_PREFLIGHT_BYTES)) != cudaSuccess ||
	    (e = cudaMemcpy(host, dev, GPU_PREFLIGHT_BYTES,
		 cudaMemcpyDeviceToHost)) != cudaSuccess ||
	    (e = cudaDeviceSynchronize()) != cudaSuccess) {
		snprintf(err, errlen, "CUDA preflight on device %d: %s", device,
		    cudaGetErrorString(e));
		goto out;
	}
	for (i = 0; i < GPU_PREFLIGHT_BYTES; i++) {
		if (host[i] != 0xa5) {
			snprintf(err, errlen,
			    "CUDA preflight on device %d: byte %zu read back as 0x%02x",
			    device, i, host[i]);
			goto out;
		}
	}
	rc = 0;
out:
	if (dev != NULL)
		cudaFree(dev);
	return (rc);
}

#else /* !COMFYQ_HAVE_CUDA */

int
gpu_built_with_cuda(void)
{
	return (0);
}

void
gpu_probe(int device, struct gpu_info *g)
{
	memset(g, 0, sizeof *g);
	g->device = device;
	snprintf(g->why, sizeof g->why, "built without CUDA");
}

int
gpu_preflight(int device, char *err, size_t errlen)
{
	snprintf(err, errlen,
	    "no CUDA preflight for device %d: built without CUDA", device);
	return (-1);
}

#endif
