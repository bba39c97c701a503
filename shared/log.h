/*
 * Logging: one line per event on stderr (journald, docker logs), with a
 * millisecond UTC timestamp, the pid, the program and the level. A line about
 * a job starts its message with job=<id> (log_job does that), so one grep
 * follows a job through every program. COMFYQ_LOG_FORMAT=json gives one JSON
 * object per line instead.
 */
#ifndef COMFYQ_LOG_H
#define COMFYQ_LOG_H

#include <stdarg.h>

enum log_level {
	LL_DEBUG,
	LL_VERBOSE,
	LL_NOTICE,
	LL_WARNING,
	LL_ERROR,
};

extern int log_level;

#define log_at(lvl, ...)                                                       \
	do {                                                                   \
		if ((lvl) >= log_level)                                        \
			log_emit((lvl), NULL, __VA_ARGS__);                    \
	} while (0)
#define log_job(lvl, jid, ...)                                                 \
	do {                                                                   \
		if ((lvl) >= log_level)                                        \
			log_emit((lvl), (jid), __VA_ARGS__);                   \
	} while (0)
#define log_debug(...)	log_at(LL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_at(LL_VERBOSE, __VA_ARGS__)
#define log_notice(...) log_at(LL_NOTICE, __VA_ARGS__)

void	    log_init(const char *prog, int level, int json);
int	    log_level_parse(const char *s);
const char *log_level_name(int level);
void	    log_emit(int level, const char *jid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vemit(int level, const char *jid, const char *fmt, va_list ap);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
