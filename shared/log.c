/*
 * Line logger (see log.h). Each line is formatted into one buffer and written
 * with a single write(2), so lines from several threads or processes sharing
 * a file do not interleave. Long messages are cut, never split.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 4096

int		   log_level = LL_NOTICE;
static const char *log_prog = "comfyq";
static int	   log_json;

static const char *const log_names[] = {
	[LL_DEBUG] = "debug",
	[LL_VERBOSE] = "verbose",
	[LL_NOTICE] = "notice",
	[LL_WARNING] = "warning",
	[LL_ERROR] = "error",
};

void
log_init(const char *prog, int level, int json)
{
	log_prog = prog;
	log_level = level;
	log_json = json;
}

/* Returns the level named by s, or -1. */
int
log_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof log_names / sizeof log_names[0]; i++)
		if (strcasecmp(s, log_names[i]) == 0)
			return ((int)i);
	return (-1);
}

const char *
log_level_name(int level)
{
	if (level < LL_DEBUG || level > LL_ERROR)
		return ("?");
	return (log_names[level]);
}

/* Appends s to buf as a JSON string body (no quotes). */
static size_t
log_json_escape(char *buf, size_t off, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	  c;

	for (; *s != '\0' && off + 7 < cap; s++) {
		c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[off++] = '\\';
			buf[off++] = (char)c;
		} else if (c < 0x20) {
			buf[off++] = '\\';
			buf[off++] = 'u';
			buf[off++] = '0';
			buf[off++] = '0';
			buf[off++] = hex[c >> 4];
			buf[off++] = hex[c & 15];
		} else
			buf[off++] = (char)c;
	}
	return (off);
}

void
log_vemit(int level, const char *jid, const char *fmt, va_list ap)
{
	char	       msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 512], ts[32];
	struct timeval tv;
	struct tm      tm;
	size_t	       off;
	int	       n, saved = errno;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = (int)strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(
	    ts + n, sizeof ts - (size_t)n, ".%03dZ", (int)(tv.tv_usec / 1000));
	vsnprintf(msg, sizeof msg, fmt, ap);

	if (log_json) {
		n = snprintf(line, sizeof line,
		    "{\"ts\":\"%s\",\"pid\":%d,\"prog\":\"%s\",\"level\":\"%"
		    "s\"",
		    ts, (int)getpid(), log_prog, log_level_name(level));
		off = (size_t)n;
		if (jid != NULL) {
			off += (size_t)snprintf(
			    line + off, sizeof line - off, ",\"job\":\"");
			off = log_json_escape(line, off, sizeof line - 8, jid);
			line[off++] = '"';
		}
		off += (size_t)snprintf(
		    line + off, sizeof line - off, ",\"msg\":\"");
		off = log_json_escape(line, off, sizeof line - 8, msg);
		memcpy(line + off, "\"}\n", 3);
		off += 3;
	} else {
		n = snprintf(line, sizeof line, "%s %d %s %s %s%s%s%s\n", ts,
		    (int)getpid(), log_prog, log_level_name(level),
		    jid != NULL ? "job=" : "", jid != NULL ? jid : "",
		    jid != NULL ? " " : "", msg);
		off = n < 0 ? 0 : (size_t)n;
		if (off >= sizeof line) {
			off = sizeof line;
			line[off - 1] = '\n';
		}
	}
	(void)!write(STDERR_FILENO, line, off);
	errno = saved;
}

void
log_emit(int level, const char *jid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, jid, fmt, ap);
	va_end(ap);
}

/* Formats fmt and appends ": strerror(err)" when err is not 0. */
static void
log_with_errno(int level, int err, const char *fmt, va_list ap)
{
	char buf[LOG_LINE_MAX];

	vsnprintf(buf, sizeof buf, fmt, ap);
	if (err != 0)
		log_emit(level, NULL, "%s: %s", buf, strerror(err));
	else
		log_emit(level, NULL, "%s", buf);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int	err = errno;

	va_start(ap, fmt);
	log_with_errno(LL_WARNING, err, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_with_errno(LL_WARNING, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int	err = errno;

	va_start(ap, fmt);
	log_with_errno(LL_ERROR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_with_errno(LL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
