/*
 * comfyq-sim test helpers (see simtest.h). The sim runs as a child process
 * with --port 0 and a --port-file in its own mktemp directory; its stderr
 * is the test's, so its log and any sanitizer report land in the ctest
 * output. sim_stop() sends SIGTERM and requires exit status 0: a leak or
 * a crash on the way out fails the test.
 */
#define _XOPEN_SOURCE 700
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "simtest.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define SIM_MAX_ARGS  64
#define SIM_MAX_PROCS 16

/* Sims still running when a failed test longjmp'd out: killed at exit. */
static pid_t sim_pids[SIM_MAX_PROCS];

static void
sim_kill_all(void)
{
	int i;

	for (i = 0; i < SIM_MAX_PROCS; i++)
		if (sim_pids[i] > 0) {
			kill(sim_pids[i], SIGKILL);
			waitpid(sim_pids[i], NULL, 0);
		}
}

static void
sim_track(pid_t old, pid_t new)
{
	static int registered;
	int	   i;

	if (!registered) {
		atexit(sim_kill_all);
		registered = 1;
	}
	for (i = 0; i < SIM_MAX_PROCS; i++)
		if (sim_pids[i] == old) {
			sim_pids[i] = new;
			return;
		}
}

static void
st_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void sim_exec(struct simproc *, va_list);

void
sim_start(struct simproc *s, ...)
{
	va_list ap;

	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s/comfyq-simtest.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(s->dir) == NULL)
		unit_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
	va_start(ap, s);
	sim_exec(s, ap);
	va_end(ap);
}

/* Starts the sim again on the same directory (after it exited). */
void
sim_restart(struct simproc *s, ...)
{
	va_list ap;

	va_start(ap, s);
	sim_exec(s, ap);
	va_end(ap);
}

static void
sim_exec(struct simproc *s, va_list ap)
{
	const char *bin = getenv("COMFYQ_SIM");
	char	   *argv[SIM_MAX_ARGS], portfile[300], *buf;
	const char *a;
	int	    n = 0, i;

	if (bin == NULL)
		unit_fail(__FILE__, __LINE__, "COMFYQ_SIM is not set");
	s->port = 0;
	snprintf(portfile, sizeof portfile, "%s/port", s->dir);
	unlink(portfile);
	snprintf(s->out, sizeof s->out, "%s/output", s->dir);
	snprintf(s->in, sizeof s->in, "%s/input", s->dir);
	snprintf(s->temp, sizeof s->temp, "%s/temp", s->dir);
	argv[n++] = (char *)bin;
	argv[n++] = (char *)"--port";
	argv[n++] = (char *)"0";
	argv[n++] = (char *)"--port-file";
	argv[n++] = portfile;
	argv[n++] = (char *)"--base-directory";
	argv[n++] = s->dir;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)"warning";
	while ((a = va_arg(ap, const char *)) != NULL && n < SIM_MAX_ARGS - 1)
		argv[n++] = (char *)a;
	argv[n] = NULL;
	if ((s->pid = fork()) == -1)
		unit_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (s->pid == 0) {
		/* die with the test, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(bin, argv);
		_exit(127);
	}
	sim_track(0, s->pid);
	for (i = 0; i < 1000; i++) {
		if ((buf = file_read(portfile, NULL)) != NULL &&
		    strchr(buf, '\n') != NULL) {
			s->port = atoi(buf);
			free(buf);
			break;
		}
		free(buf);
		if (!sim_alive(s))
			unit_fail(__FILE__, __LINE__,
			    "comfyq-sim exited at "
			    "start");
		st_sleep_ms(10);
	}
	if (s->port == 0)
		unit_fail(__FILE__, __LINE__, "comfyq-sim did not start");
	snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
}

int
sim_alive(struct simproc *s)
{
	int st;

	if (s->pid <= 0)
		return (0);
	if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
		sim_track(s->pid, 0);
		s->pid = -s->pid;
		return (0);
	}
	return (1);
}

static int
st_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return (0);
}

/* Waits for the process to end by itself; returns its exit status. */
int
sim_reap(struct simproc *s)
{
	int i, st = 0;

	for (i = 0; i < 500; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			sim_track(s->pid, 0);
			s->pid = 0;
			return (WIFEXITED(st) ? WEXITSTATUS(st)
					      : 128 + WTERMSIG(st));
		}
		st_sleep_ms(10);
	}
	unit_fail(
	    __FILE__, __LINE__, "comfyq-sim %d did not exit", (int)s->pid);
}

void
sim_stop(struct simproc *s)
{
	int st = 0, i;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		for (i = 0; i < 1000; i++) {
			if (waitpid(s->pid, &st, WNOHANG) == s->pid)
				break;
			st_sleep_ms(10);
		}
		if (i == 1000) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
			unit_fail(
			    __FILE__, __LINE__, "comfyq-sim ignored SIGTERM");
		}
		sim_track(s->pid, 0);
		s->pid = 0;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			unit_fail(__FILE__, __LINE__,
			    "comfyq-sim exit status %d (signal %d)",
			    WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	}
	nftw(s->dir, st_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t
st_body(char *p, size_t sz, size_t n, void *arg)
{
	struct http_res *r = arg;

	r->body = xrealloc(r->body, r->len + sz * n + 1);
	memcpy(r->body + r->len, p, sz * n);
	r->len += sz * n;
	r->body[r->len] = '\0';
	return (sz * n);
}

static size_t
st_header(char *p, size_t sz, size_t n, void *arg)
{
	struct http_res *r = arg;
	size_t		 len = sz * n;

	if (len > 14 && strncasecmp(p, "Content-Type: ", 14) == 0)
		snprintf(r->ctype, sizeof r->ctype, "%.*s",
		    (int)strcspn(p + 14, "\r\n"), p + 14);
	if (len > 21 && strncasecmp(p, "Content-Disposition: ", 21) == 0)
		snprintf(r->disp, sizeof r->disp, "%.*s",
		    (int)strcspn(p + 21, "\r\n"), p + 21);
	return (len);
}

static const char *ht_extra;

/* One more request header for the following requests (NULL: none). */
void
ht_set_header(const char *h)
{
	ht_extra = h;
}

void
ht_request(struct simproc *s, const char *method, const char *path,
    const char *ctype, const void *body, size_t len, struct http_res *r)
{
	CURL		  *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char		   url[4096], hdr[256];
	CURLcode	   rc;

	memset(r, 0, sizeof *r);
	r->body = xstrdup("");
	snprintf(url, sizeof url, "%s%s", s->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, st_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, st_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	h = curl_slist_append(h, "Expect:");
	if (ht_extra != NULL)
		h = curl_slist_append(h, ht_extra);
	if (ctype != NULL) {
		snprintf(hdr, sizeof hdr, "Content-Type: %s", ctype);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK)
		unit_fail(__FILE__, __LINE__, "%s %s: %s", method, path,
		    curl_easy_strerror(rc));
}

long
ht_get(struct simproc *s, const char *path, struct http_res *r)
{
	ht_request(s, "GET", path, NULL, NULL, 0, r);
	return (r->status);
}

long
ht_post(
    struct simproc *s, const char *path, const char *body, struct http_res *r)
{
	ht_request(s, "POST", path, body ? "application/json" : NULL, body,
	    body ? strlen(body) : 0, r);
	return (r->status);
}

cJSON *
ht_json(const struct http_res *r)
{
	cJSON *j = cJSON_Parse(r->body);

	if (j == NULL)
		unit_fail(__FILE__, __LINE__, "not JSON: '%.200s'", r->body);
	return (j);
}

void
ht_free(struct http_res *r)
{
	free(r->body);
	r->body = NULL;
}

long
ht_prompt(struct simproc *s, const char *graph, const char *client_id,
    const char *prompt_id, struct http_res *r)
{
	char *body, *tmp;
	long  st;

	body = xasprintf("{\"prompt\":%s", graph);
	if (client_id != NULL) {
		tmp = xasprintf("%s,\"client_id\":\"%s\"", body, client_id);
		free(body);
		body = tmp;
	}
	if (prompt_id != NULL) {
		tmp = xasprintf("%s,\"prompt_id\":\"%s\"", body, prompt_id);
		free(body);
		body = tmp;
	}
	tmp = xasprintf("%s}", body);
	free(body);
	st = ht_post(s, "/prompt", tmp, r);
	free(tmp);
	return (st);
}

static void
wsc_on_open(struct ws *ws, void *arg)
{
	struct wsc *c = arg;

	(void)ws;
	c->opened = 1;
	event_base_loopbreak(c->base);
}

static void
wsc_on_text(struct ws *ws, const char *s, size_t len, void *arg)
{
	struct wsc *c = arg;
	cJSON	   *j = cJSON_ParseWithLength(s, len);

	(void)ws;
	if (j != NULL)
		cJSON_AddItemToArray(c->msgs, j);
	event_base_loopbreak(c->base);
}

static void
wsc_on_close(struct ws *ws, const char *reason, void *arg)
{
	struct wsc *c = arg;

	(void)ws;
	c->closed = 1;
	snprintf(c->reason, sizeof c->reason, "%s", reason);
	event_base_loopbreak(c->base);
}

/* Runs the client's loop for ms (callbacks break it; it goes on). */
void
wsc_pump(struct wsc *c, int ms)
{
	long long      end = clock_mono_ms() + ms, left;
	struct timeval tv;

	while ((left = end - clock_mono_ms()) > 0) {
		tv.tv_sec = (time_t)(left / 1000);
		tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		event_base_loopexit(c->base, &tv);
		event_base_dispatch(c->base);
	}
}

void
wsc_open(struct wsc *c, struct simproc *s, const char *client_id)
{
	static const struct ws_cb cb = { wsc_on_open, wsc_on_text, NULL,
		wsc_on_close };
	char			  url[256], err[256];
	int			  i;

	memset(c, 0, sizeof *c);
	c->base = event_base_new();
	c->msgs = cJSON_CreateArray();
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws%s%s", s->port,
	    client_id ? "?clientId=" : "", client_id ? client_id : "");
	if ((c->ws = ws_connect(c->base, url, NULL, &cb, c, err, sizeof err)) ==
	    NULL)
		unit_fail(__FILE__, __LINE__, "ws_connect: %s", err);
	for (i = 0; i < 100 && !c->opened && !c->closed; i++)
		wsc_pump(c, 50);
	if (!c->opened)
		unit_fail(__FILE__, __LINE__, "ws did not open: %s", c->reason);
	/* the hello: status with sid */
	if (wsc_wait_type(c, "status", NULL, 2000) == NULL)
		unit_fail(__FILE__, __LINE__, "no status on connect");
}

void
wsc_free(struct wsc *c)
{
	ws_free(c->ws);
	c->ws = NULL;
	if (c->base != NULL)
		event_base_free(c->base);
	c->base = NULL;
	cJSON_Delete(c->msgs);
	c->msgs = NULL;
}

void
wsc_clear(struct wsc *c)
{
	cJSON_Delete(c->msgs);
	c->msgs = cJSON_CreateArray();
}

static int
wsc_match(const cJSON *m, const char *type, const char *prompt_id)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "data");
	const char  *t =
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "type"));
	const char *p = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(d, "prompt_id"));

	if (type != NULL && (t == NULL || strcmp(t, type) != 0))
		return (0);
	return (prompt_id == NULL || (p != NULL && strcmp(p, prompt_id) == 0));
}

/* The nth (from 0) message of type about prompt_id, or NULL. */
cJSON *
wsc_find(struct wsc *c, const char *type, const char *prompt_id, int n)
{
	cJSON *m;

	cJSON_ArrayForEach(m, c->msgs) {
		if (wsc_match(m, type, prompt_id) && n-- == 0)
			return (m);
	}
	return (NULL);
}

cJSON *
wsc_wait_type(
    struct wsc *c, const char *type, const char *prompt_id, int timeout_ms)
{
	long long end = clock_mono_ms() + timeout_ms;
	cJSON	 *m;

	while ((m = wsc_find(c, type, prompt_id, 0)) == NULL &&
	    clock_mono_ms() < end && !c->closed)
		wsc_pump(c, 20);
	return (m);
}

static int
wsc_is_done(const cJSON *m, const char *prompt_id)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "data");

	return (wsc_match(m, "executing", prompt_id) &&
	    cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "node")));
}

int
wsc_wait_done(struct wsc *c, const char *prompt_id, int timeout_ms)
{
	long long end = clock_mono_ms() + timeout_ms;
	cJSON	 *m;

	for (;;) {
		cJSON_ArrayForEach(m, c->msgs) {
			if (wsc_is_done(m, prompt_id))
				return (1);
		}
		if (clock_mono_ms() >= end || c->closed)
			return (0);
		wsc_pump(c, 20);
	}
}

char *
wsc_types(struct wsc *c, const char *prompt_id, int with_status)
{
	cJSON	   *m;
	char	   *s = xstrdup(""), *n;
	const char *t;

	cJSON_ArrayForEach(m, c->msgs) {
		t = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(m, "type"));
		if (t == NULL)
			continue;
		if (strcmp(t, "status") == 0 ? !with_status
					     : !wsc_match(m, NULL, prompt_id))
			continue;
		n = xasprintf("%s%s%s", s, *s ? "," : "", t);
		free(s);
		s = n;
	}
	return (s);
}

/* POST /prompt with client "c" and wait for its `executing` null. */
void
sim_run(struct simproc *s, struct wsc *c, const char *graph, const char *id)
{
	struct http_res r;

	ht_prompt(s, graph, "c", id, &r);
	if (r.status != 200)
		unit_fail(__FILE__, __LINE__, "POST /prompt %s: %ld %.300s", id,
		    r.status, r.body);
	ht_free(&r);
	if (!wsc_wait_done(c, id, 10000))
		unit_fail(__FILE__, __LINE__, "prompt %s did not end", id);
}

char *
graph_sdxl(const char *ckpt, int w, int h, long long seed, int steps,
    const char *text, const char *prefix)
{
	return (
	    xasprintf("{"
		      "\"4\":{\"class_type\":\"CheckpointLoaderSimple\","
		      "\"inputs\":{\"ckpt_name\":\"%s\"}},"
		      "\"5\":{\"class_type\":\"EmptyLatentImage\","
		      "\"inputs\":{\"width\":%d,\"height\":%d,"
		      "\"batch_size\":1}},"
		      "\"6\":{\"class_type\":\"CLIPTextEncode\","
		      "\"inputs\":{\"text\":\"%s\",\"clip\":[\"4\",1]}},"
		      "\"7\":{\"class_type\":\"CLIPTextEncode\","
		      "\"inputs\":{\"text\":\"blurry\",\"clip\":[\"4\",1]}},"
		      "\"3\":{\"class_type\":\"KSampler\",\"inputs\":{"
		      "\"seed\":%lld,\"steps\":%d,\"cfg\":7.0,"
		      "\"sampler_name\":\"euler\",\"scheduler\":\"normal\","
		      "\"denoise\":1.0,\"model\":[\"4\",0],"
		      "\"positive\":[\"6\",0],\"negative\":[\"7\",0],"
		      "\"latent_image\":[\"5\",0]}},"
		      "\"8\":{\"class_type\":\"VAEDecode\",\"inputs\":{"
		      "\"samples\":[\"3\",0],\"vae\":[\"4\",2]}},"
		      "\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{"
		      "\"filename_prefix\":\"%s\",\"images\":[\"8\",0]}}}",
		ckpt, w, h, text, seed, steps, prefix));
}

char *
graph_empty(int w, int h, int color, const char *prefix)
{
	return (xasprintf("{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{"
			  "\"width\":%d,\"height\":%d,\"batch_size\":1,"
			  "\"color\":%d}},"
			  "\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{"
			  "\"filename_prefix\":\"%s\",\"images\":[\"1\",0]}}}",
	    w, h, color, prefix));
}

char *
file_read(const char *path, size_t *len)
{
	char err[256];

	return (file_slurp(path, (size_t)1 << 30, len, err, sizeof err));
}

int
file_exists(const char *path)
{
	struct stat st;

	return (stat(path, &st) == 0);
}
