/*
 * Stand-in worker and child processes (see standin.h). The stand-in runs in
 * a forked child with its own blocking connection, and reports each job it
 * claimed on a pipe as "job <jid> <fence>", then "ready"; after that it only
 * heartbeats, so a kill -9 leaves exactly what a crashed worker leaves: its
 * leases and slots, and a worker record that stops being renewed. Every
 * child gets SIGKILL when the test process ends, even after a failed test.
 */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rq.h"
#include "standin.h"

static void
standin_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* FCALL comfyq_<fn> with the stand-in's first arguments. */
static redisReply *
standin_call(redisContext *c, const struct standin_opts *o, const char *fn,
    struct rq_cmd *cmd)
{
	redisReply *r = rq_run(c, cmd);

	rq_cmd_free(cmd);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "standin %s: %s: %s\n", o->wid, fn,
		    r ? r->str : c->errstr);
		_exit(1);
	}
	return (r);
}

static void __attribute__((noreturn))
standin_child(const struct standin_opts *o, FILE *out)
{
	char	      jid[STANDIN_JOBS_MAX][64], fence[STANDIN_JOBS_MAX][32];
	char	      err[512];
	redisContext *c;
	redisReply   *r;
	struct rq_cmd cmd;
	int	      i, n = 0, tries;

	if ((c = rq_connect(o->url, NULL, 10000, 0, err, sizeof err)) == NULL) {
		fprintf(out, "error %s\n", err);
		_exit(1);
	}
	rq_cmd_fcall(&cmd, "register", o->prefix);
	rq_cmd_add(&cmd, o->wid);
	rq_cmd_addf(&cmd, "%d", o->lease_ms * 3);
	rq_cmd_add(&cmd, o->pool);
	rq_cmd_add(&cmd, "0");
	rq_cmd_add(&cmd, "0");
	rq_cmd_add(&cmd, "host");
	rq_cmd_add(&cmd, o->host);
	freeReplyObject(standin_call(c, o, "register", &cmd));
	for (tries = 0; n < o->njobs && tries < 500; tries++) {
		rq_cmd_fcall(&cmd, "claim", o->prefix);
		rq_cmd_add(&cmd, o->wid);
		rq_cmd_add(&cmd, o->pool);
		rq_cmd_addf(&cmd, "%d", o->lease_ms);
		r = standin_call(c, o, "claim", &cmd);
		if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
		    strcmp(r->element[0]->str, "job") == 0) {
			snprintf(
			    jid[n], sizeof jid[n], "%s", r->element[1]->str);
			snprintf(fence[n], sizeof fence[n], "%lld",
			    r->element[2]->integer);
			fprintf(out, "job %s %s\n", jid[n], fence[n]);
			n++;
		} else
			standin_sleep_ms(10);
		freeReplyObject(r);
	}
	fprintf(out, n == o->njobs ? "ready\n" : "error claimed %d\n", n);
	fflush(out);
	if (n < o->njobs)
		_exit(1);
	for (;;) {
		standin_sleep_ms(o->beat_ms);
		rq_cmd_fcall(&cmd, "heartbeat", o->prefix);
		rq_cmd_add(&cmd, o->wid);
		rq_cmd_addf(&cmd, "%d", o->lease_ms);
		rq_cmd_addf(&cmd, "%d", o->lease_ms * 3);
		for (i = 0; i < n; i++) {
			rq_cmd_add(&cmd, jid[i]);
			rq_cmd_add(&cmd, fence[i]);
		}
		freeReplyObject(standin_call(c, o, "heartbeat", &cmd));
	}
}

/*
 * Starts a stand-in worker and waits until it holds its jobs (s->jid,
 * s->fence). Returns 0, or -1 with the reason in err.
 */
int
standin_start(
    struct standin *s, const struct standin_opts *o, char *err, size_t errlen)
{
	char  line[256];
	FILE *in;
	int   fds[2];

	memset(s, 0, sizeof *s);
	if (o->njobs > STANDIN_JOBS_MAX || pipe(fds) == -1) {
		snprintf(err, errlen, "standin: bad job count or no pipe");
		return (-1);
	}
	fflush(NULL);
	if ((s->pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return (-1);
	}
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
		close(fds[0]);
		standin_child(o, fdopen(fds[1], "w"));
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	snprintf(err, errlen, "standin: exited before it was ready");
	while (fgets(line, sizeof line, in) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "ready") == 0) {
			fclose(in);
			return (0);
		}
		if (strncmp(line, "job ", 4) == 0 &&
		    s->njobs < STANDIN_JOBS_MAX &&
		    sscanf(line + 4, "%63s %31s", s->jid[s->njobs],
			s->fence[s->njobs]) == 2)
			s->njobs++;
		else
			snprintf(err, errlen, "standin: %s", line);
	}
	fclose(in);
	standin_kill(s);
	return (-1);
}

/* kill -9, as a crash does, and reaps the child. */
void
standin_kill(struct standin *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

/* Starts argv[0] with argv; its stdout and stderr go to log (appended). */
pid_t
proc_start(const char *const argv[], const char *log)
{
	pid_t pid;
	int   fd;

	fflush(NULL);
	if ((pid = fork()) != 0)
		return (pid);
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)) != -1) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

/*
 * Sends sig and waits up to timeout_ms for the process to end. Returns its
 * exit status (128 + signal when killed), or -1 when it did not end (it is
 * then killed with SIGKILL, so no child outlives a test).
 */
int
proc_stop(pid_t pid, int sig, int timeout_ms)
{
	int status, waited;

	if (sig != 0)
		kill(pid, sig);
	for (waited = 0; waited <= timeout_ms; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return (WIFEXITED(status) ? WEXITSTATUS(status)
						  : 128 + WTERMSIG(status));
		standin_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return (-1);
}

/* Whether no process pid exists any more. */
int
proc_gone(pid_t pid)
{
	return (kill(pid, 0) == -1 && errno == ESRCH);
}
