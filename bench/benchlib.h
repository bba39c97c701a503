/*
 * What the benchmarks that start processes share: dying with a reason,
 * sleeping, a bounded numeric option, and a min/median/p90/max line.
 */
#ifndef COMFYQ_BENCHLIB_H
#define COMFYQ_BENCHLIB_H

extern const char *bench_name; /* the program, for messages */

void	  bench_die(const char *, const char *) __attribute__((noreturn));
void	  bench_sleep_ms(long long);
long long bench_arg(int, char **, int *, long long, long long);
void	  bench_summary(const char *, int, long long *, long long);

#endif
