/*
 * GPU probe through the CUDA runtime: name, uuid, total and free VRAM of one
 * device, and a preflight that proves the device can allocate, write and
 * read back memory. Built without CUDA (no /usr/local/cuda at build time),
 * or on a machine without a device, the probe says so and the worker falls
 * back to ComfyUI's /system_stats. Only gpu.c includes cuda_runtime.h.
 */
#ifndef COMFYQ_GPU_H
#define COMFYQ_GPU_H

#include <stddef.h>

struct gpu_info {
	int	  present; /* a usable CUDA device was found */
	int	  device;
	char	  name[256];
	char	  uuid[64]; /* GPU-xxxxxxxx-xxxx-..., as nvidia-smi */
	long long total_mb;
	long long free_mb;
	char	  why[256];    /* when not present: why not, plainly */
	char	  detail[256]; /* and the CUDA runtime's words, or "" */
};

int  gpu_built_with_cuda(void);
void gpu_probe(int device, struct gpu_info *g);
int  gpu_preflight(int device, char *err, size_t errlen);

#endif
