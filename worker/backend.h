/*
 * Health of the ComfyUI behind this worker, and starting it when it is
 * down (COMFYQ_COMFYUI_START_CMD). Healthy means /system_stats answers and
 * the WebSocket is open; the worker claims only while healthy.
 */
#ifndef COMFYQ_BACKEND_H
#define COMFYQ_BACKEND_H

struct worker;
struct backend;

struct backend *backend_new(struct worker *);
void		backend_free(struct backend *);
int		backend_healthy(const struct backend *);
void		backend_link(struct backend *, int);
void		backend_suspect(struct backend *);
const char     *backend_device_name(const struct backend *);
long long	backend_vram_total_mb(const struct backend *);

#endif
