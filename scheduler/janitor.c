/*
 * comfyq-janitor: main, signals and the tick (its modules are listed in
 * janitor_config.h).
 *
 * One libevent loop with one timer. Each tick runs every Redis duty once
 * (janitor_sweep.c), then, on a host with clean-dirs, one bounded step of
 * the file cleanup, then logs one line if anything happened, and arms the
 * timer for the next tick (so a reloaded tick-ms applies at once). A tick
 * runs to its end: SIGTERM and SIGINT stop the loop after the current tick,
 * SIGHUP re-reads the settings marked [reload] in --help.
 *
 * The cleanup runs a pass every clean-interval-s; a pass may span many
 * ticks. Before every step the janitor asks Redis which jobs are active
 * (comfyq_active_files) and keeps their files; when Redis cannot say, the
 * step is skipped: nothing is deleted on a guess.
 *
 * Exit codes: 0 stopped by a signal (or --help, --check), 1 could not
 * start, 2 bad settings.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "janitor_config.h"
#include "janitor_clean.h"
#include "janitor_inuse.h"
#include "janitor_sweep.h"
#include "log.h"
#include "rq.h"
#include "rq_tls.h"
#include "sdnotify.h"
#include "util.h"
#include "xmalloc.h"

#define EXIT_CONFIG 2

struct janitor {
	struct event_base *base;
	struct event	  *timer;
	struct event	  *sigs[3];
	struct sweep	  *sweep;
	struct clean	  *clean; /* NULL: no file cleanup on this host */
	struct inuse	  *inuse;
	struct clean_stats pass;	  /* the cleanup pass under way */
	long long	   pass_start_ms; /* monotonic */
	long long	   next_pass_ms;  /* monotonic */
	long long	   holding;	  /* the stall guard, last tick */
	int		   ready;	  /* READY=1 sent (sdnotify.h) */
};

static struct janitor_cfg cfg;
static struct janitor	  jan;

static void
janitor_arm(void)
{
	struct timeval tv = { cfg.tick_ms / 1000, (cfg.tick_ms % 1000) * 1000 };

	evtimer_add(jan.timer, &tv);
}

static void
janitor_clean_add(struct clean_stats *to, const struct clean_stats *st)
{
	to->files += st->files;
	to->bytes += st->bytes;
	to->dirs += st->dirs;
	to->kept += st->kept;
	to->skipped += st->skipped;
	to->errors += st->errors;
}

/* One step of the cleanup pass, when one is under way or due. */
static void
janitor_clean_tick(struct sweep_result *res)
{
	struct clean_stats st = { 0 };
	long long	   now = clock_mono_ms();
	int		   done;

	if (!clean_walking(jan.clean) && now < jan.next_pass_ms)
		return;
	if (sweep_inuse(jan.sweep, jan.inuse) == -1)
		return;
	if (!clean_walking(jan.clean)) {
		memset(&jan.pass, 0, sizeof jan.pass);
		jan.pass_start_ms = now;
	}
	done = clean_step(
	    jan.clean, cfg.clean_age_s, jan.inuse, cfg.clean_batch, &st);
	janitor_clean_add(&jan.pass, &st);
	res->freed_files += st.files;
	res->freed_bytes += st.bytes;
	res->freed_dirs += st.dirs;
	res->kept += st.kept;
	if (!done)
		return;
	jan.next_pass_ms = now + cfg.clean_interval_s * 1000;
	log_at(jan.pass.files + jan.pass.dirs + jan.pass.errors > 0
		? LL_NOTICE
		: LL_VERBOSE,
	    "clean: pass over %zu folders in %lld ms: freed %lld files (%lld bytes) and %lld empty directories; kept %lld in use; skipped %lld; %lld errors",
	    clean_ndirs(jan.clean), clock_mono_ms() - jan.pass_start_ms,
	    jan.pass.files, jan.pass.bytes, jan.pass.dirs, jan.pass.kept,
	    jan.pass.skipped, jan.pass.errors);
}

/* One line per tick in which something happened. */
static void
janitor_log_tick(const struct sweep_result *r, long long ms)
{
	if (r->holding && !jan.holding)
		log_notice(
		    "stall: no reap for over %lld ms; expired leases wait %lld ms for the workers' heartbeats",
		    janitor_stall_ms(&cfg), cfg.grace_ms);
	jan.holding = r->holding;
	if (r->requeued + r->lost + r->buried + r->promoted + r->slots_freed +
		r->expired + r->events_trimmed + r->refunds_trimmed +
		r->workers_gone + r->workers_forgotten + r->freed_files +
		r->freed_dirs ==
	    0)
		return;
	log_notice(
	    "tick: requeued=%lld lost=%lld dead=%lld promoted=%lld slots_freed=%lld expired=%lld events_trimmed=%lld refunds_trimmed=%lld workers_gone=%lld forgotten=%lld "
	    "queue_status=%lld freed_files=%lld freed_bytes=%lld freed_dirs=%lld kept=%lld ms=%lld",
	    r->requeued, r->lost, r->buried, r->promoted, r->slots_freed,
	    r->expired, r->events_trimmed, r->refunds_trimmed, r->workers_gone,
	    r->workers_forgotten, r->status_events, r->freed_files,
	    r->freed_bytes, r->freed_dirs, r->kept, ms);
}

static void
janitor_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct sweep_result r;
	long long	    t0 = clock_mono_ms();

	(void)fd;
	(void)ev;
	(void)arg;
	memset(&r, 0, sizeof r);
	if (sweep_run(jan.sweep, &r) == 0) {
		if (!jan.ready) /* the first tick Redis answered */
			sdnotify("READY=1");
		jan.ready = 1;
		if (jan.clean != NULL) {
			janitor_clean_tick(&r);
			sweep_count_clean(jan.sweep, &r);
		}
	}
	janitor_log_tick(&r, clock_mono_ms() - t0);
	janitor_arm();
}

/* What a reload must keep true besides the table's own bounds. */
static int
janitor_reload_check(const void *arg, char *err, size_t errlen)
{
	const struct janitor_cfg *c = arg;

	if (*c->clean_host != '\0' && !rq_queue_valid(c->clean_host)) {
		snprintf(err, errlen,
		    "clean-host: '%s' must be letters, digits, '.', '_' and '-'",
		    c->clean_host);
		return (-1);
	}
	return (0);
}

static void
janitor_signal(evutil_socket_t sig, short ev, void *arg)
{
	char err[1024];

	(void)ev;
	(void)arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_notice(
		    "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		sdnotify("STOPPING=1");
		event_base_loopbreak(jan.base);
		break;
	case SIGHUP:
		if (config_reload_check(&janitor_cfg_table, &cfg,
			janitor_reload_check, err, sizeof err) == -1) {
			log_warnx("reload: %s; settings unchanged", err);
			break;
		}
		log_init(
		    janitor_cfg_table.prog, cfg.log_level, cfg.log_format == 1);
		log_notice("reload: settings re-read");
		config_dump(&janitor_cfg_table, &cfg);
		break;
	default:
		fatalx("unexpected signal %d", (int)sig);
	}
}

/* Checks what the table cannot: the queue, the URL, the folders. */
static int
janitor_check(char *prefix, size_t len, char *err, size_t errlen)
{
	struct rq_url u;
	char	      why[1024];

	if (rq_prefix(prefix, len, cfg.queue) == -1) {
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
	if (janitor_reload_check(&cfg, err, errlen) == -1)
		return (-1);
	if (*cfg.clean_dirs != '\0' &&
	    (jan.clean = clean_new(cfg.clean_dirs, why, sizeof why)) == NULL) {
		snprintf(err, errlen, "clean-dirs: %s", why);
		return (-1);
	}
	return (0);
}

static int
janitor_run(const char *prefix)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	size_t		 i;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	if ((jan.base = event_base_new()) == NULL) {
		log_warnx("event_base_new failed");
		return (1);
	}
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		jan.sigs[i] =
		    evsignal_new(jan.base, sigs[i], janitor_signal, NULL);
		evsignal_add(jan.sigs[i], NULL);
	}
	jan.timer = evtimer_new(jan.base, janitor_tick, NULL);
	jan.sweep = sweep_new(&cfg, prefix);
	jan.inuse = inuse_new();
	log_notice("started: queue %s, tick %lld ms, %zu folders to clean",
	    cfg.queue, cfg.tick_ms, jan.clean ? clean_ndirs(jan.clean) : 0);
	config_dump(&janitor_cfg_table, &cfg);
	event_active(jan.timer, EV_TIMEOUT, 0);
	event_base_dispatch(jan.base);
	log_notice("stopped");
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		event_free(jan.sigs[i]);
	event_free(jan.timer);
	sweep_free(jan.sweep);
	inuse_free(jan.inuse);
	event_base_free(jan.base);
	return (0);
}

int
main(int argc, char **argv)
{
	char err[2048], prefix[RQ_PREFIX_MAX];
	int  check = 0, rc = 0;

	log_init(janitor_cfg_table.prog, LL_NOTICE, 0);
	sdnotify_init();
	switch (config_load(
	    &janitor_cfg_table, &cfg, argc, argv, err, sizeof err)) {
	case CONFIG_EXIT_OK:
		goto out;
	case CONFIG_ERROR:
		rc = EXIT_CONFIG;
		goto out;
	case CONFIG_CHECK:
		check = 1; /* and the folders and the URL, below */
		break;
	case CONFIG_OK:
		break;
	}
	if (janitor_check(prefix, sizeof prefix, err, sizeof err) == -1) {
		rc = EXIT_CONFIG;
		goto out;
	}
	log_init(janitor_cfg_table.prog, cfg.log_level, cfg.log_format == 1);
	if (check)
		printf("%s: configuration OK\n", janitor_cfg_table.prog);
	else
		rc = janitor_run(prefix);
out:
	if (rc == EXIT_CONFIG)
		fprintf(stderr, "%s: %s\n", janitor_cfg_table.prog, err);
	clean_free(jan.clean);
	config_free(&janitor_cfg_table, &cfg);
	return (rc);
}
