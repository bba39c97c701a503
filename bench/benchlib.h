/*
 * What the benchmarks that start processes share: dying with a reason,
 * sleeping, a bounded numeric option, sorting and percentiles, a
 * min/median/p90/max line, and the few functions library calls they make
 * (any failure is fatal), waiting for a port file, starting comfyq-sim, a
 * process's VmRSS, a field of a stream entry, and a raw graph whose
 * sampler runs long, and a process's CPU time.
 */
#ifndef COMFYQ_BENCHLIB_H
#define COMFYQ_BENCHLIB_H

#include <sys/types.h>

#include <stddef.h>

#include <hiredis/hiredis.h>

extern const char *bench_name; /* the program, for messages */

void bench_die(const char *what, const char *why) __attribute__((noreturn));
void bench_sleep_ms(long long ms);
long long bench_arg(int argc, char **argv, int *i, long long lo, long long hi);
void	  bench_sort(long long *v, long long n);
long long bench_pct(const long long *sorted, long long n, int p);
void	  bench_summary(const char *name, int width, long long *v, long long n);

void bench_enqueue(redisContext *ctx, const char *prefix, const char *spec,
    char *jid, size_t jidlen);
void bench_cancel(redisContext *ctx, const char *prefix, const char *jid);
void bench_slot_set(
    redisContext *ctx, const char *prefix, const char *pool, long long cap);

redisContext *bench_open(const char **url, char *queue, size_t qlen,
    char *prefix, size_t plen, char *dir);
void bench_await_port(const char *pf, const char *what, char *port, size_t len);
double	    bench_cpu_us(pid_t pid); /* utime + stime, us */
long long   bench_rss_kb(pid_t pid);
const char *bench_entry_field(const redisReply *kv, const char *k);

/* A raw graph whose one KSampler takes 5000 steps; "%d": its seed. */
extern const char bench_long_graph[];

pid_t bench_sim_start(const char *sim_bin, const char *dir, const char *step_ms,
    const char *log_level, char *url, size_t urllen);

#endif
