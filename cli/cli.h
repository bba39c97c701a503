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
#include "rqfn.h"

#define EXIT_JOB_FAILED 1
#define EXIT_USAGE	2
#define EXIT_REDIS	3

#define CLI_ERR_MAX 8192 /* an error reply, printed whole */

struct cli {
	const char   *redis_url;
	const char   *queue;
	char	      prefix[RQ_PREFIX_MAX];
	int	      json;
	redisContext *rc;
};

/* A parsed job hash, for status and --wait. */
struct cli_job {
	redisReply *reply; /* HGETALL; the fields point into it */
};

redisContext *cli_redis(struct cli *);
redisReply   *cli_run(struct cli *, struct rq_cmd *);
void	      cli_usage_error(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void cli_redis_error(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));
const char *cli_field(const redisReply *, const char *);
const char *cli_field_or(const redisReply *, const char *, const char *);
int	    cli_state_exit(const char *);
int	    cli_flag(const char *);
const char *cli_safe(const char *);
int	    cli_is_terminal(const char *);
void	    cli_print_job(struct cli *, const char *, const redisReply *);
redisReply *cli_job_get(struct cli *, const char *);

int cmd_init(struct cli *, int, char **);
int cmd_submit(struct cli *, int, char **);
int cmd_status(struct cli *, int, char **);
int cmd_cancel(struct cli *, int, char **);
int cmd_events(struct cli *, int, char **);
int cmd_stats(struct cli *, int, char **);
int cmd_slots(struct cli *, int, char **);
int cmd_workers(struct cli *, int, char **);
int cmd_workflows(struct cli *, int, char **);
int cmd_render(struct cli *, int, char **);

/* submit.c, shared with render. */
struct cJSON;
void	      submit_kv(struct cJSON *, const char *, const char *);
struct cJSON *submit_graph(const char *);

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
void  cli_spec_init(struct cli_spec *);
int   cli_spec_flag(struct cli_spec *, const char *, const char *);
char *cli_spec_finish(struct cli_spec *, struct job_spec *, struct wf_job **);
void  cli_spec_free(struct cli_spec *);

/* events.c: reading the events stream, shared by events and submit --wait. */
struct cli_event {
	const char	 *id;
	const char	 *type;
	const char	 *job;
	const redisReply *fields; /* flat field, value array */
};
typedef int (*cli_event_cb)(struct cli *, const struct cli_event *, void *);

int cli_events_last_id(struct cli *, char *, size_t);
int cli_events_read(
    struct cli *, char *, size_t, int, int, cli_event_cb, void *);
void cli_event_print(struct cli *, const struct cli_event *);

#endif
