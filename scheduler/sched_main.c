/*
 * comfyq-scheduler: main, signals and the loop (the modules are listed
 * in sched.h).
 *
 * One libevent loop holds the HTTP listeners (sched_http.c), one
 * non-blocking Redis connection for commands (it reconnects with backoff
 * and loads the functions library each time; a request that finds it down
 * gets 503), the outgoing HTTP client and the templates, loaded once at
 * start so every submitted spec is checked before it is queued. SIGTERM
 * and SIGINT close the listeners and the connections and exit 0; SIGHUP
 * re-reads the settings marked [reload] in --help (the tokens among them)
 * and applies the new limits to the connections that come after.
 *
 * Exit codes: 0 stopped by a signal (or --help, --check), 1 could not
 * start (a port taken, templates that do not load), 2 bad settings.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "httpc.h"
#include "log.h"
#include "rq.h"
#include "rq_tls.h"
#include "sched.h"
#include "sched_auth.h"
#include "sched_http.h"
#include "sched_metrics.h"
#include "sched_sse.h"
#include "sched_webhook.h"
#include "sdnotify.h"
#include "template.h"
#include "util.h"

#define EXIT_START  1
#define EXIT_CONFIG 2

static struct sched_cfg cfg;
static struct sched	sched;
static struct event    *sigs[3];

/* What the table cannot check: here, the tokens. */
static int
sched_reload_check(const void *arg, char *err, size_t errlen)
{
	const struct sched_cfg *c = arg;
	struct sched_auth      *a;

	if ((a = auth_new(c->tokens, err, errlen)) == NULL)
		return (-1);
	auth_free(a);
	return (0);
}

static void
sched_warn_open(void)
{
	if (auth_count(sched.auth) == 0)
		log_warnx("tokens is empty: the API is open to anyone who "
			  "can reach %s",
		    cfg.listen);
}

static void
sched_reload(void)
{
	struct sched_auth *a;
	char		   err[1024];

	if (config_reload_check(&sched_cfg_table, &cfg, sched_reload_check, err,
		sizeof err) == -1) {
		log_warnx("reload: %s; settings unchanged", err);
		return;
	}
	if ((a = auth_new(cfg.tokens, err, sizeof err)) == NULL)
		fatalx("reload: %s", err); /* checked just above */
	auth_free(sched.auth);
	sched.auth = a;
	log_init(sched_cfg_table.prog, cfg.log_level, cfg.log_format == 1);
	http_apply_cfg(sched.httpd);
	log_notice("reload: settings re-read (%zu tokens)", auth_count(a));
	sched_warn_open();
	config_dump(&sched_cfg_table, &cfg);
}

static void
sched_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	(void)arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_notice(
		    "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		sdnotify("STOPPING=1");
		event_base_loopbreak(sched.base);
		break;
	case SIGHUP:
		sched_reload();
		break;
	default:
		fatalx("unexpected signal %d", (int)sig);
	}
}

static void
sched_redis_state(struct rq_async *ra, int up, void *arg)
{
	(void)ra;
	(void)arg;
	if (up)
		log_notice("redis: up, functions library version %s loaded",
		    RQ_LIB_VERSION);
	else
		log_warnx("redis: down; requests that need it get 503 until "
			  "it is back");
}

/* Checks and loads what the table cannot: queue, URL, tokens, templates. */
static int
sched_check(char *err, size_t errlen)
{
	struct rq_url u;
	char	      why[1024];

	if (rq_prefix(sched.prefix, sizeof sched.prefix, cfg.queue) == -1) {
		snprintf(err, errlen,
		    "queue: '%s' must be 1..128 of letters, digits, '.', '_' and '-'",
		    cfg.queue);
		return (-1);
	}
	if (rq_url_parse(cfg.redis_url, &u, err, errlen) == -1)
		return (-1);
	rq_url_free(&u);
	if (rq_tls_setup(&cfg.tls, err, errlen) == -1)
		return (-1);
	if ((sched.auth = auth_new(cfg.tokens, err, errlen)) == NULL)
		return (-1);
	if ((sched.workflows = wf_load(cfg.workflows_dir, why, sizeof why)) ==
	    NULL) {
		snprintf(err, errlen, "workflows-dir: %s", why);
		return (-1);
	}
	return (0);
}

/* The output store, opened once (config_load made and checked it). */
static int
sched_open_outputs(char *err, size_t errlen)
{
	sched.output_fd =
	    open(cfg.output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sched.output_fd == -1) {
		snprintf(err, errlen, "output-dir: %s: %s", cfg.output_dir,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

static int
sched_run(void)
{
	static const int sig[] = { SIGTERM, SIGINT, SIGHUP };
	char		 err[1024];
	size_t		 i;
	int		 rc = 0;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	sched.output_fd = -1;
	sched.base = event_base_new();
	sched.cfg = &cfg;
	sched.started_ms = clock_wall_ms();
	for (i = 0; i < sizeof sig / sizeof sig[0]; i++) {
		sigs[i] = evsignal_new(sched.base, sig[i], sched_signal, NULL);
		evsignal_add(sigs[i], NULL);
	}
	if (sched_open_outputs(err, sizeof err) == -1 ||
	    (sched.rc = rq_async_new(sched.base, cfg.redis_url, sched.prefix, 1,
		 sched_redis_state, NULL, err, sizeof err)) == NULL ||
	    (sched.httpd = http_new(&sched, err, sizeof err)) == NULL) {
		log_warnx("cannot start: %s", err);
		rc = EXIT_START;
		goto out;
	}
	sched.http = httpc_new(sched.base);
	if ((sched.metrics = metrics_new(&sched, err, sizeof err)) == NULL ||
	    (sched.sse = sse_new(&sched, err, sizeof err)) == NULL ||
	    (sched.wh = webhooks_new(&sched, err, sizeof err)) == NULL) {
		log_warnx("cannot start: %s", err);
		rc = EXIT_START;
		goto out;
	}
	log_notice("listening on %s (port %d)%s%s, queue %s, %zu templates, "
		   "%zu tokens",
	    cfg.listen, http_port(sched.httpd, 0),
	    *cfg.admin_listen != '\0' ? ", admin on " : "",
	    *cfg.admin_listen != '\0' ? cfg.admin_listen : "", cfg.queue,
	    wf_count(sched.workflows), auth_count(sched.auth));
	if (*cfg.admin_listen != '\0')
		log_notice("admin port %d", http_port(sched.httpd, 1));
	sched_warn_open();
	config_dump(&sched_cfg_table, &cfg);
	sdnotify("READY=1"); /* it serves; /readyz tells whether Redis does */
	event_base_dispatch(sched.base);
	log_notice("stopped");
out:
	/* The order sched_sse.h asks for: clients, then the server, then
	 * what they report to. */
	webhooks_free(sched.wh);
	sse_free(sched.sse);
	http_free(sched.httpd);
	metrics_free(sched.metrics);
	if (sched.http != NULL)
		httpc_free(sched.http);
	rq_async_free(sched.rc);
	if (sched.output_fd != -1)
		close(sched.output_fd);
	for (i = 0; i < sizeof sig / sizeof sig[0]; i++)
		event_free(sigs[i]);
	event_base_free(sched.base);
	return (rc);
}

int
main(int argc, char **argv)
{
	char err[2048];
	int  check = 0, rc = 0;

	log_init(sched_cfg_table.prog, LL_NOTICE, 0);
	sdnotify_init();
	switch (
	    config_load(&sched_cfg_table, &cfg, argc, argv, err, sizeof err)) {
	case CONFIG_EXIT_OK:
		goto out;
	case CONFIG_ERROR:
		rc = EXIT_CONFIG;
		goto out;
	case CONFIG_CHECK:
		check = 1;
		break;
	case CONFIG_OK:
		break;
	}
	if (sched_check(err, sizeof err) == -1) {
		rc = EXIT_CONFIG;
		goto out;
	}
	log_init(sched_cfg_table.prog, cfg.log_level, cfg.log_format == 1);
	if (check)
		printf("%s: configuration OK\n", sched_cfg_table.prog);
	else
		rc = sched_run();
out:
	if (rc == EXIT_CONFIG)
		fprintf(stderr, "%s: %s\n", sched_cfg_table.prog, err);
	auth_free(sched.auth);
	wf_registry_free(sched.workflows);
	config_free(&sched_cfg_table, &cfg);
	return (rc);
}
