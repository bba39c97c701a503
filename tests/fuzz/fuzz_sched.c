/*
 * libFuzzer target: comfyq-scheduler's HTTP front as a whole, request
 * bytes in, response out. One scheduler is set up in this process as
 * sched_main.c sets it up (the settings table, tokens and CORS on, the
 * templates of workflows/, an empty output store, metrics, SSE and the
 * webhook engine) with its listener on a loopback port; each input is
 * written to it over a fresh TCP connection and the loop runs until the
 * answer stops coming, then the client goes away. So the bytes go through
 * the guard (sched_guard*.c: the head scan, 400/413/431/417/501),
 * evhttp's parser, the dispatcher (414, routes, 404/405 with Allow, the
 * CORS preflight, path arguments, 415, the bearer token), and the
 * handlers: job submission with the whole spec check and template
 * rendering, ComfyUI's /comfy/prompt graph conversion and
 * /comfy/upload/image multipart, workflows, openapi, the dashboard,
 * metrics, SSE set-up and teardown. Redis is a port nobody listens on
 * (redis://127.0.0.1:1): whatever needs it answers 503, so a handler's
 * Redis reply parsing is not reached here (tests/integration has it). The
 * answer must be HTTP: a status line first, and never a 500 "internal"
 * (with Redis down no handler has a reason for one). Several requests in
 * one input are pipelined on the connection.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "httpc.h"
#include "log.h"
#include "sched.h"
#include "sched_auth.h"
#include "sched_http.h"
#include "sched_metrics.h"
#include "sched_sse.h"
#include "sched_webhook.h"
#include "template.h"
#include "util.h"

#define FUZZ_TOKEN "fuzz-secret-0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct sched_cfg cfg;
static struct sched	sched;
static int		port;

static char outdir[] = "/tmp/fuzz_sched.XXXXXX";

/* The output store is empty: nothing but the folder to remove. */
static void
fuzz_cleanup(void)
{
	(void)rmdir(outdir);
}

static void
fuzz_setup(void)
{
	char	    err[1024];
	static const char *const args[] = { "comfyq-scheduler", "--listen", "127.0.0.1:0",
		       "--redis-url", "redis://127.0.0.1:1", "--tokens",
		       "fuzz:*:" FUZZ_TOKEN, "--cors-origin",
		       "https://app.example", "--workflows-dir",
		       COMFYQ_WORKFLOWS_DIR, "--output-dir", outdir,
		       "--body-max-bytes", "65536", "--header-max-bytes",
		       "4096", "--log-level", "error" };
	static char *argv[sizeof args / sizeof args[0] + 1];
	size_t	     i;

	if (mkdtemp(outdir) == NULL)
		abort();
	atexit(fuzz_cleanup);
	for (i = 0; i < sizeof args / sizeof args[0]; i++)
		argv[i] = strdup(args[i]);
	signal(SIGPIPE, SIG_IGN);
	log_init("fuzz_sched", LL_ERROR, 0);
	if (config_load(&sched_cfg_table, &cfg,
		(int)(sizeof args / sizeof args[0]), argv, err,
		sizeof err) != CONFIG_OK) {
		fprintf(stderr, "fuzz_sched: %s\n", err);
		abort();
	}
	log_init("fuzz_sched", LL_ERROR, 0);
	sched.cfg = &cfg;
	sched.base = event_base_new();
	sched.started_ms = clock_wall_ms();
	if (rq_prefix(sched.prefix, sizeof sched.prefix, cfg.queue) == -1 ||
	    (sched.auth = auth_new(cfg.tokens, err, sizeof err)) == NULL ||
	    (sched.workflows = wf_load(cfg.workflows_dir, err, sizeof err)) ==
		NULL ||
	    (sched.output_fd = open(cfg.output_dir,
		 O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (sched.rc = rq_async_new(sched.base, cfg.redis_url, sched.prefix,
		 1, NULL, NULL, err, sizeof err)) == NULL ||
	    (sched.httpd = http_new(&sched, err, sizeof err)) == NULL) {
		fprintf(stderr, "fuzz_sched: %s\n", err);
		abort();
	}
	sched.http = httpc_new(sched.base);
	if ((sched.metrics = metrics_new(&sched, err, sizeof err)) == NULL ||
	    (sched.sse = sse_new(&sched, err, sizeof err)) == NULL ||
	    (sched.wh = webhooks_new(&sched, err, sizeof err)) == NULL) {
		fprintf(stderr, "fuzz_sched: %s\n", err);
		abort();
	}
	port = http_port(sched.httpd, 0);
}

static int
fuzz_connect(void)
{
	struct sockaddr_in sin;
	int		   fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		abort();
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1 &&
	    errno != EINPROGRESS)
		abort();
	return (fd);
}

/* The answer so far must be HTTP, and no 500 "internal". */
static void
fuzz_check(const char *resp, size_t n)
{
	if (n >= 12 &&
	    (strncmp(resp, "HTTP/1.", 7) != 0 || resp[8] != ' ' ||
		resp[9] < '1' || resp[9] > '5'))
		abort();
	if (n >= 12 && strncmp(resp + 9, "500", 3) == 0 &&
	    strstr(resp, "\"internal\"") != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static char resp[1 << 16], junk[1 << 14];
	size_t	    off = 0, n = 0;
	ssize_t	    k;
	int	    fd, i, idle = 0, eof = 0;

	if (sched.base == NULL)
		fuzz_setup();
	fd = fuzz_connect();
	for (i = 0; i < 400 && !eof; i++) {
		event_base_loop(sched.base, EVLOOP_NONBLOCK);
		if (off < len) {
			k = send(fd, data + off, len - off, MSG_NOSIGNAL);
			if (k > 0)
				off += (size_t)k;
			else if (k == -1 && errno != EAGAIN &&
			    errno != EINPROGRESS && errno != ENOTCONN)
				break; /* the server closed on us */
		}
		idle++;
		while ((k = read(fd, n < sizeof resp - 1 ? resp + n : junk,
			    n < sizeof resp - 1 ? sizeof resp - 1 - n
						: sizeof junk)) > 0) {
			if (n < sizeof resp - 1)
				n += (size_t)k;
			idle = 0;
		}
		if (k == 0)
			eof = 1;
		/* Everything happens in this process: a few turns of the
		 * loop without news mean the answer is all there, or that
		 * the server waits for bytes that will not come. */
		if (off == len && idle > 3)
			break;
	}
	resp[n] = '\0';
	fuzz_check(resp, n);
	if (getenv("FUZZ_SCHED_PRINT") != NULL) /* what came back, in short */
		fprintf(stderr, "fuzz_sched: %zu bytes: %.*s\n", n,
		    (int)strcspn(resp, "\r\n"), resp);
	close(fd);
	/* The server sees the client go and frees the connection. */
	for (i = 0; i < 3; i++)
		event_base_loop(sched.base, EVLOOP_NONBLOCK);
	return (0);
}
