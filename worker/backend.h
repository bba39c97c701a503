/*
 * Health of the ComfyUI behind this worker, and starting it when it is
 * down (COMFYQ_COMFYUI_START_CMD). Healthy means /system_stats answers and
 * the WebSocket is open; the worker claims only while healthy. It knows
 * its owner only through the changed callback.
 */
#ifndef COMFYQ_BACKEND_H
#define COMFYQ_BACKEND_H

struct backend;
struct comfy;
struct event_base;
struct worker_cfg;

/* changed(arg) is called whenever backend_healthy changes. */
struct backend *backend_new(struct event_base *base, struct comfy *comfy,
    const struct worker_cfg *cfg, void (*changed)(void *arg), void *arg);
void		backend_free(struct backend *b);
int		backend_healthy(const struct backend *b);
void		backend_link(struct backend *b, int up);
void		backend_suspect(struct backend *b);
const char     *backend_device_name(const struct backend *b);
long long	backend_vram_total_mb(const struct backend *b);

#endif
