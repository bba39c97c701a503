/*
 * Helpers for the comfyq-sim integration tests: start a real comfyq-sim
 * (the binary named by COMFYQ_SIM) on a free port with its own temp
 * directory, stop it by PID and insist on a clean exit, make HTTP requests
 * with libcurl, and follow its WebSocket with our own client (shared/ws.c)
 * on a private event loop. Every helper fails the running test on a
 * broken connection, so a test never passes by not talking to the sim.
 */
#ifndef COMFYQ_SIMTEST_H
#define COMFYQ_SIMTEST_H

#include <sys/types.h>

#include <cjson/cJSON.h>

#include "../unit/unit.h"

struct simproc {
	pid_t pid;
	int   port;
	char  dir[256];
	char  url[64];
	char  out[320];
	char  in[320];
	char  temp[320];
};

void sim_start(struct simproc *, ...);	 /* extra args, NULL-terminated */
void sim_stop(struct simproc *);	 /* SIGTERM; asserts exit 0 */
void sim_restart(struct simproc *, ...); /* again, in the same dir */
int  sim_reap(struct simproc *);	 /* waits for it to exit: the status */
int  sim_alive(struct simproc *);

struct http_res {
	long   status;
	char  *body;
	size_t len;
	char   ctype[128];
	char   disp[256];
};

void ht_request(struct simproc *, const char *method, const char *path,
    const char *ctype, const void *body, size_t len, struct http_res *);
void ht_set_header(const char *);
long ht_get(struct simproc *, const char *path, struct http_res *);
long ht_post(
    struct simproc *, const char *path, const char *body, struct http_res *);
cJSON *ht_json(const struct http_res *);
void   ht_free(struct http_res *);
/* POST /prompt {"prompt": graph, "client_id", "prompt_id"}; NULLs are
 * left out. Returns the status; res holds the reply. */
long ht_prompt(struct simproc *, const char *graph, const char *client_id,
    const char *prompt_id, struct http_res *);

struct wsc {
	struct event_base *base;
	struct ws	  *ws;
	cJSON		  *msgs; /* every JSON message received, in order */
	int		   opened;
	int		   closed;
	char		   reason[160];
};

void wsc_open(struct wsc *, struct simproc *, const char *client_id);
void wsc_free(struct wsc *);
void wsc_pump(struct wsc *, int ms);
/* Runs until `executing` {node: null, prompt_id} arrives; 0 on timeout. */
int wsc_wait_done(struct wsc *, const char *prompt_id, int timeout_ms);
/* Runs until a message of type (for prompt_id, if given) arrives. */
cJSON *wsc_wait_type(
    struct wsc *, const char *type, const char *prompt_id, int timeout_ms);
/* "type,type,..." of the messages about prompt_id (status: all). */
char  *wsc_types(struct wsc *, const char *prompt_id, int with_status);
cJSON *wsc_find(struct wsc *, const char *type, const char *prompt_id, int n);
void   wsc_clear(struct wsc *);

/* An SDXL txt2img graph: 4 loader, 5 latent, 6/7 text, 3 sampler,
 * 8 decode, 9 SaveImage with the prefix. */
char *graph_sdxl(const char *ckpt, int w, int h, long long seed, int steps,
    const char *text, const char *prefix);
/* EmptyImage(w, h, color) -> SaveImage(prefix): no model, no steps. */
char *graph_empty(int w, int h, int color, const char *prefix);

char *file_read(const char *path, size_t *len);
int   file_exists(const char *path);

#define ASSERT_JSTR(obj, key, want)                                            \
	ASSERT_STREQ(cJSON_GetStringValue(                                     \
			 cJSON_GetObjectItemCaseSensitive((obj), (key))),      \
	    (want))

#endif
