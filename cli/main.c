/*
 * comfyq: the command-line tool (see cli.h). Global options come before the
 * command: --redis URL (COMFYQ_REDIS_URL), --queue NAME (COMFYQ_QUEUE) and
 * the TLS settings of a rediss:// URL, --tls-ca-file FILE and the rest
 * (COMFYQ_TLS_CA_FILE ...), from the entries every program shares
 * (CFG_REDIS_TLS_ENTRIES). --json may stand anywhere; each command reads
 * its own flags.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "rq_route.h"
#include "util.h"

/* How long a command waits out a failover or a slot migration. */
#define CLI_HA_WAIT_MS 30000

static const struct cfg_entry cli_tls_entries[] = {
	CFG_REDIS_TLS_ENTRIES(struct cli, tls),
};
static const struct cfg_table cli_tls_table = { "comfyq", NULL, cli_tls_entries,
	sizeof cli_tls_entries / sizeof cli_tls_entries[0],
	sizeof(struct cli) };

/* comfyq version: the line every program gives for --version. */
static int
cmd_version(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	if (argc > 1)
		cli_usage_error("usage: comfyq version");
	config_print_version("comfyq", stdout);
	return (0);
}

static const struct {
	const char *name;
	int (*fn)(struct cli *, int, char **);
	const char *usage;
} cli_cmds[] = {
	{ "submit", cmd_submit,
	    "submit (--workflow NAME | --graph FILE) "
	    "[--param K=V ...] [--tenant T]\n"
	    "         [--priority high|normal|low] [--idempotency-key K] "
	    "[--timeout S]\n"
	    "         [--max-attempts N] [--meta K=V ...] [--webhook URL] "
	    "[--webhook-progress]\n"
	    "         [--wait] [--json] [--lora NAME:W[:CLIP_W] ...]\n"
	    "         [--controlnet TYPE:STRENGTH:IMAGE[:START:END] ...]\n"
	    "         [--input NAME=FILE_OR_URL ...] [--spec FILE] [--workflows DIR]" },
	{ "init", cmd_init, "init [--json]" },
	{ "status", cmd_status, "status JOB [--json]" },
	{ "cancel", cmd_cancel, "cancel JOB [--json]" },
	{ "events", cmd_events,
	    "events [--follow] [--from ID] [--job JOB] [--count N] [--json]" },
	{ "stats", cmd_stats, "stats [--json]" },
	{ "slots", cmd_slots,
	    "slots [--json] | slots set POOL N [--vram-budget MB]" },
	{ "workers", cmd_workers, "workers [--json]" },
	{ "workflows", cmd_workflows,
	    "workflows [show NAME] [--workflows DIR] [--json]" },
	{ "render", cmd_render,
	    "render (--workflow NAME | --graph FILE | --spec FILE) "
	    "[--param K=V ...] [--lora ...]\n"
	    "         [--controlnet ...] [--input ...] [--job-id ID] [--prefix P]" },
	{ "version", cmd_version, "version    (also: comfyq --version)" },
};

static void
cli_print_usage(FILE *f)
{
	size_t i;

	fprintf(f,
	    "usage: comfyq [--redis URL] [--queue NAME] [--tls-ca-file FILE]\n"
	    "              [--tls-cert-file FILE --tls-key-file FILE] "
	    "[--tls-server-name NAME]\n"
	    "              [--tls-insecure] COMMAND ...\n\n"
	    "commands:\n");
	for (i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++)
		fprintf(f, "  comfyq %s\n", cli_cmds[i].usage);
	fprintf(f,
	    "\nenvironment: COMFYQ_REDIS_URL (default "
	    "redis://127.0.0.1:6379), COMFYQ_QUEUE (default \"default\"),\n"
	    "COMFYQ_TLS_CA_FILE, COMFYQ_TLS_CERT_FILE, COMFYQ_TLS_KEY_FILE, "
	    "COMFYQ_TLS_SERVER_NAME, COMFYQ_TLS_INSECURE\n"
	    "exit codes: 0 succeeded, 1 failed or canceled, 2 usage or bad "
	    "input, 3 Redis unreachable\n");
}

/* Prints "comfyq: <message>" and exits with status. */
static void __attribute__((noreturn))
cli_die(int status, const char *fmt, va_list ap)
{
	fprintf(stderr, "comfyq: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	exit(status);
}

void
cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_die(EXIT_USAGE, fmt, ap);
}

void
cli_redis_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_die(EXIT_REDIS, fmt, ap);
}

/*
 * Connects (loading the functions library with load set); exits 2 for bad
 * TLS settings, 3 when Redis cannot be reached.
 */
redisContext *
cli_connect(struct cli *cli, int load)
{
	char err[512];

	if (rq_tls_setup(&cli->tls, err, sizeof err) == -1)
		cli_usage_error("%s", err);
	cli->rc = rq_connect_wait(cli->redis_url, cli->prefix, 5000,
	    CLI_HA_WAIT_MS, load, err, sizeof err);
	if (cli->rc == NULL)
		cli_redis_error("%s", err);
	return (cli->rc);
}

/* Connects on first use (loading the functions library). */
redisContext *
cli_redis(struct cli *cli)
{
	if (cli->rc != NULL)
		return (cli->rc);
	return (cli_connect(cli, 1));
}

/* A global --tls-* option at argv[*i]: 1 when it was one (value taken). */
static int
cli_tls_option(struct cli *cli, int argc, char **argv, int *i)
{
	const struct cfg_entry *e;
	const char	       *v;
	char			err[512];

	if (strncmp(argv[*i], "--", 2) != 0 ||
	    (e = config_find(&cli_tls_table, argv[*i] + 2)) == NULL)
		return (0);
	if (e->type == CFG_BOOL)
		v = "true";
	else if (*i + 1 < argc)
		v = argv[++*i];
	else
		cli_usage_error("%s needs a value", argv[*i]);
	if (config_set(e, cli, v, err, sizeof err) == -1)
		cli_usage_error("--%s", err);
	return (1);
}

/*
 * Runs a command; a lost connection exits 3. A reply that says the command
 * did not run on this server (a replica now, a master without its
 * replicas, a cluster node that no longer holds the queue: rq_route.h)
 * makes it connect again, to the right one, and run it there, for up to
 * CLI_HA_WAIT_MS; then the last reply stands. The caller frees the reply.
 */
redisReply *
cli_run(struct cli *cli, struct rq_cmd *c)
{
	struct timespec pause = { 0, 250000000L };
	redisReply     *r;
	long long	deadline = clock_mono_ms() + CLI_HA_WAIT_MS;

	for (;;) {
		r = rq_run(cli_redis(cli), c);
		if (r == NULL)
			cli_redis_error("redis: %s", cli->rc->errstr);
		if (rq_route_of(r) == RQ_ROUTE_NONE ||
		    clock_mono_ms() + 250 > deadline)
			break;
		freeReplyObject(r);
		redisFree(cli->rc);
		cli->rc = NULL;
		nanosleep(&pause, NULL);
	}
	rq_cmd_free(c);
	return (r);
}

/* Parses the global options and runs the command; its exit status. */
static int
cli_main(struct cli *cli, int argc, char **argv)
{
	size_t c;
	int    i, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (cli_tls_option(cli, argc, argv, &i))
			continue;
		if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
			cli->redis_url = argv[++i];
		else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc)
			cli->queue = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			cli_print_usage(stdout);
			return (0);
		} else if (strcmp(argv[i], "--version") == 0) {
			config_print_version("comfyq", stdout);
			return (0);
		} else {
			cli_print_usage(stderr);
			cli_usage_error("unknown option %s", argv[i]);
		}
	}
	if (i >= argc) {
		cli_print_usage(stderr);
		return (EXIT_USAGE);
	}
	if (rq_prefix(cli->prefix, sizeof cli->prefix, cli->queue) == -1)
		cli_usage_error(
		    "queue: '%s' must be 1..128 of letters, digits, '.', '_' and '-'",
		    cli->queue);
	for (c = 0; c < sizeof cli_cmds / sizeof cli_cmds[0]; c++) {
		if (strcmp(argv[i], cli_cmds[c].name) != 0)
			continue;
		rc = cli_cmds[c].fn(cli, argc - i, argv + i);
		if (cli->rc != NULL)
			redisFree(cli->rc);
		return (rc);
	}
	cli_print_usage(stderr);
	cli_usage_error("unknown command '%s'", argv[i]);
}

int
main(int argc, char **argv)
{
	struct cli  cli;
	const char *env;
	char	    err[512];
	int	    rc;

	log_init("comfyq", LL_WARNING, 0);
	memset(&cli, 0, sizeof cli);
	cli.redis_url = (env = getenv("COMFYQ_REDIS_URL")) != NULL
	    ? env
	    : "redis://127.0.0.1:6379";
	cli.queue = (env = getenv("COMFYQ_QUEUE")) != NULL ? env : "default";
	if (config_load_env(&cli_tls_table, &cli, err, sizeof err) == -1)
		cli_usage_error("%s", err);
	rc = cli_main(&cli, argc, argv);
	config_free(&cli_tls_table, &cli);
	return (rc);
}
