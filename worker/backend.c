/*
 * Backend health and auto-start (see backend.h).
 *
 * A probe (GET /system_stats) runs every health-interval while ComfyUI is
 * down and every few intervals while it is up; a failed request or a lost
 * WebSocket asks for one at once. With a start command configured, a probe
 * that finds the port closed starts ComfyUI: several workers on one host
 * may front the same ComfyUI, so the starter takes an exclusive flock on a
 * lock file named after the URL and holds it until ComfyUI answers or the
 * start timeout passes; the others see the lock taken and only wait. A
 * start is not repeated while the started process lives and its timeout
 * has not passed. The lock dies with its holder, so a crash never wedges it.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "backend.h"
#include "comfy.h"
#include "log.h"
#include "settings.h"
#include "util.h"
#include "xmalloc.h"

#define BACKEND_UP_PROBE_FACTOR 5 /* probe interval when healthy */

struct backend {
	struct comfy		*comfy;
	const struct worker_cfg *cfg;
	void (*changed)(void *);
	void		 *arg;
	int		  stats_ok;
	int		  refused;
	int		  ws_up;
	struct httpc_req *probe;
	struct event	 *timer;
	char		  device[256];
	long long	  vram_total_mb;
	pid_t		  start_pid;
	long long	  start_deadline; /* mono ms */
	int		  lock_fd;
};

static void backend_probe(struct backend *);

static void
backend_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	backend_probe(arg);
}

int
backend_healthy(const struct backend *b)
{
	return (b->stats_ok && b->ws_up);
}

const char *
backend_device_name(const struct backend *b)
{
	return (b->device);
}

long long
backend_vram_total_mb(const struct backend *b)
{
	return (b->vram_total_mb);
}

/* Reads the first device of /system_stats (the no-CUDA fallback). */
static void
backend_read_stats(struct backend *b, const char *body, size_t len)
{
	cJSON *root, *devs, *d, *name, *vram;

	if ((root = cJSON_ParseWithLength(body, len)) == NULL)
		return;
	devs = cJSON_GetObjectItemCaseSensitive(root, "devices");
	d = cJSON_IsArray(devs) ? devs->child : NULL;
	name = cJSON_GetObjectItemCaseSensitive(d, "name");
	vram = cJSON_GetObjectItemCaseSensitive(d, "vram_total");
	if (cJSON_IsString(name))
		snprintf(b->device, sizeof b->device, "%s", name->valuestring);
	if (cJSON_IsNumber(vram))
		b->vram_total_mb = (long long)(vram->valuedouble / 1048576.0);
	cJSON_Delete(root);
}

static void
backend_release_lock(struct backend *b)
{
	if (b->lock_fd != -1) {
		close(b->lock_fd); /* drops the flock */
		b->lock_fd = -1;
	}
}

/* Collects the started process once it exits. */
static void
backend_reap(struct backend *b)
{
	int status;

	if (b->start_pid > 0 &&
	    waitpid(b->start_pid, &status, WNOHANG) == b->start_pid) {
		log_warnx(
		    "comfyui start command (pid %d) exited with status %d",
		    (int)b->start_pid,
		    WIFEXITED(status) ? WEXITSTATUS(status)
				      : 128 + WTERMSIG(status));
		b->start_pid = 0;
		backend_release_lock(b);
	}
}

static void
backend_spawn(struct backend *b)
{
	const char *cmd = b->cfg->start_cmd;
	pid_t	    pid;
	int	    fd;

	if ((pid = fork()) == -1) {
		log_warn("comfyui start: fork");
		return;
	}
	if (pid == 0) {
		setsid();
		if ((fd = open("/dev/null", O_RDONLY)) != -1)
			dup2(fd, STDIN_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	b->start_pid = pid;
	b->start_deadline = clock_mono_ms() + b->cfg->start_timeout_s * 1000;
	log_notice(
	    "comfyui is down: started '%s' (pid %d); waiting up to %lld s", cmd,
	    (int)pid, b->cfg->start_timeout_s);
}

/* Starts ComfyUI when it is down, configured, and nobody else is at it. */
static void
backend_maybe_start(struct backend *b)
{
	char   path[512], *p;
	size_t i;

	backend_reap(b);
	if (b->cfg->start_cmd == NULL || *b->cfg->start_cmd == '\0')
		return;
	if (b->start_pid > 0 && clock_mono_ms() < b->start_deadline)
		return; /* ours is still coming up */
	if (b->start_pid > 0) {
		log_warnx(
		    "comfyui did not answer within %lld s of its start; not starting another while pid %d lives",
		    b->cfg->start_timeout_s, (int)b->start_pid);
		backend_release_lock(b);
		return;
	}
	p = xstrdup(comfy_url(b->comfy) + strlen("http://"));
	for (i = 0; p[i] != '\0'; i++)
		if (strchr(":/.", p[i]) != NULL)
			p[i] = '_';
	snprintf(path, sizeof path, "%s/comfyq-start-%s.lock",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", p);
	free(p);
	if (b->lock_fd == -1 &&
	    (b->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) ==
		-1) {
		log_warn("comfyui start: %s", path);
		return;
	}
	if (flock(b->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			log_info(
			    "comfyui start: another worker holds %s", path);
		else
			log_warn("comfyui start: flock %s", path);
		backend_release_lock(b);
		return;
	}
	backend_spawn(b);
}

static void
backend_probe_done(const struct httpc_resp *r, void *arg)
{
	struct backend *b = arg;
	int		was = backend_healthy(b);
	int		ok = r->fail == HTTPC_OK && r->status == 200;
	long long	next;

	b->probe = NULL;
	if (ok && !b->stats_ok)
		backend_read_stats(b, r->body, r->len);
	b->stats_ok = ok;
	b->refused = r->fail == HTTPC_REFUSED;
	if (!ok)
		log_debug("comfyui probe: %s",
		    r->fail != HTTPC_OK ? r->err : "non-200 reply");
	if (ok && b->start_pid > 0 && b->lock_fd != -1) {
		log_notice("comfyui is up (started by this worker)");
		backend_release_lock(b);
	}
	if (b->refused)
		backend_maybe_start(b);
	next = b->cfg->health_interval_ms;
	if (backend_healthy(b))
		next *= BACKEND_UP_PROBE_FACTOR;
	timer_add_ms(b->timer, next);
	if (was != backend_healthy(b))
		b->changed(b->arg);
}

static void
backend_probe(struct backend *b)
{
	evtimer_del(b->timer);
	if (b->probe != NULL)
		return;
	b->probe = comfy_system_stats(b->comfy, backend_probe_done, b);
}

struct backend *
backend_new(struct event_base *base, struct comfy *comfy,
    const struct worker_cfg *cfg, void (*changed)(void *), void *arg)
{
	struct backend *b;

	b = xcalloc(1, sizeof *b);
	b->comfy = comfy;
	b->cfg = cfg;
	b->changed = changed;
	b->arg = arg;
	b->lock_fd = -1;
	b->timer = evtimer_new(base, backend_timer_cb, b);
	backend_probe(b);
	return (b);
}

void
backend_free(struct backend *b)
{
	if (b == NULL)
		return;
	httpc_cancel(b->probe);
	event_free(b->timer);
	backend_release_lock(b);
	free(b);
}

/* The WebSocket opened or was lost. */
void
backend_link(struct backend *b, int up)
{
	int was = backend_healthy(b);

	b->ws_up = up;
	if (!up)
		backend_probe(b);
	if (was != backend_healthy(b))
		b->changed(b->arg);
}

/* A request to ComfyUI failed at the transport: check at once. */
void
backend_suspect(struct backend *b)
{
	backend_probe(b);
}
