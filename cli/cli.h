/*
 * The comfyq command-line tool. main.c parses the global options and runs
 * one command from its table; each command lives in its own file and gets
 * the parsed options and its own arguments. Exit codes are the contract
 * with scripts: 0 succeeded, 1 failed or canceled, 2 usage or bad input,
 * 3 Redis unreachable.
 */
#ifndef COMFYQ_CLI_H
#define COMFYQ_CLI_H

#include <hiredis/hiredis.h>

#include "rq.h"
#include "rq_tls.h"
#include "rqfn.h"

#define EXIT_JOB_FAILED 1
#define EXIT_USAGE	2
#define EXIT_REDIS	3

#define CLI_ERR_MAX 8192 /* an error reply, printed whole */

struct cli {
	const char	 *redis_url;
	const char	 *queue;
	struct rq_tls_cfg tls; /* --tls-*, COMFYQ_TLS_* */
	char		  prefix[RQ_PREFIX_MAX];
	int		  json;
	redisContext	 *rc;
};

redisContext *cli_redis(struct cli *cli);
redisContext *cli_connect(struct cli *cli, int load);
redisReply   *cli_run(struct cli *cli, struct rq_cmd *c);
void	      cli_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void cli_redis_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
const char *cli_field(const redisReply *r, const char *field);
const char *cli_field_or(
    const redisReply *r, const char *field, const char *def);
int	    cli_state_exit(const char *state);
int	    cli_flag(const char *v);
const char *cli_safe(const char *s);
int	    cli_is_terminal(const char *state);
void cli_print_job(struct cli *cli, const char *jid, const redisReply *h);
redisReply *cli_job_get(struct cli *cli, const char *jid);

int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_submit(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_cancel(struct cli *cli, int argc, char **argv);
int cmd_events(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_slots(struct cli *cli, int argc, char **argv);
int cmd_workers(struct cli *cli, int argc, char **argv);
int cmd_workflows(struct cli *cli, int argc, char **argv);
int cmd_render(struct cli *cli, int argc, char **argv);

/* submit.c, shared with render. */
struct cJSON;
void	      submit_kv(struct cJSON *spec, const char *name, const char *arg);
struct cJSON *submit_graph(const char *path);

/* spec.c: job specs from flags, checked against the templates. */
struct job_spec;
struct wf_job;
struct wf_registry;
struct cli_spec {
	struct cJSON	   *spec;	/* fields from flags */
	struct cJSON	   *param_text; /* --param values as typed */
	const char	   *spec_file;	/* --spec */
	const char	   *workflows;	/* --workflows, COMFYQ_WORKFLOWS_DIR */
	struct wf_registry *reg;
};
void  cli_spec_init(struct cli_spec *cs);
int   cli_spec_flag(struct cli_spec *cs, const char *a, const char *v);
char *cli_spec_finish(
    struct cli_spec *cs, struct job_spec *js, struct wf_job **job);
void cli_spec_free(struct cli_spec *cs);

/* events.c: reading the events stream, shared by events and submit --wait. */
struct cli_event {
	const char	 *id;
	const char	 *type;
	const char	 *job;
	const redisReply *fields; /* flat field, value array */
};
typedef int (*cli_event_cb)(
    struct cli *cli, const struct cli_event *ev, void *arg);

int  cli_events_last_id(struct cli *cli, char *buf, size_t len);
int  cli_events_read(struct cli *cli, char *idbuf, size_t idlen, int block_ms,
     int count, cli_event_cb cb, void *arg);
void cli_event_print(struct cli *cli, const struct cli_event *ev);

#endif
