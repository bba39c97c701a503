/*
 * Configuration: one table per program drives parsing, bounds, --help, the
 * startup dump and SIGHUP reloads. Every entry `name` is settable as
 * COMFYQ_NAME in the environment, as `name = value` in a file given by
 * --config FILE (or COMFYQ_CONFIG), and as --name=VALUE or --name VALUE on
 * the command line; later sources win. A bad value is one line naming the
 * source, the entry, the value and the rule. An entry marked CFG_DIR is a
 * folder checked once every source is read: a bad one is one line naming
 * the entry, the path and the reason. --version prints the build, and
 * --example-config every setting with its default as a config file.
 */
#ifndef COMFYQ_CONFIG_H
#define COMFYQ_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum cfg_type {
	CFG_STR,    /* char *, owned by the struct; max = max length */
	CFG_INT,    /* long long, min..max */
	CFG_DOUBLE, /* double, dmin..dmax */
	CFG_BOOL,   /* int 0/1: true/false/yes/no/on/off/1/0 */
	CFG_ENUM,   /* int index into enums */
};

#define CFG_RELOAD 0x1 /* re-applied on SIGHUP */
#define CFG_SECRET 0x2 /* never printed */
#define CFG_URL	   0x4 /* printed with any password masked */
/* A folder (when set): it exists and can be read, at load and --check... */
#define CFG_DIR	      0x8
#define CFG_DIR_MAKE  0x10 /* ...made with its parents when missing */
#define CFG_DIR_WRITE 0x20 /* ...and can be written */
#define CFG_DIR_OUT   (CFG_DIR | CFG_DIR_MAKE | CFG_DIR_WRITE)

struct cfg_entry {
	const char	  *name;
	enum cfg_type	   type;
	size_t		   off;
	const char	  *def; /* default, parsed like any value */
	long long	   min, max;
	double		   dmin, dmax;
	const char *const *enums; /* NULL-terminated, for CFG_ENUM */
	int		   flags;
	const char	  *text;
};

struct cfg_table {
	const char	       *prog;
	const char	       *summary;
	const struct cfg_entry *entries;
	size_t			n;
	size_t			size; /* sizeof the program's struct */
};

/* The log settings every program has, in one spelling. */
extern const char *const cfg_log_levels[];  /* as log.h's levels */
extern const char *const cfg_log_formats[]; /* plain, json */

#define CFG_LOG_ENTRIES(type, level, format)                                   \
	{ "log-level", CFG_ENUM, offsetof(type, level), "notice",              \
		.enums = cfg_log_levels, .flags = CFG_RELOAD,                  \
		.text = "Least level logged." },                               \
	{                                                                      \
		"log-format", CFG_ENUM, offsetof(type, format), "plain",       \
		    .enums = cfg_log_formats,                                  \
		    .text = "Log lines as plain text or one JSON object each." \
	}

/*
 * The queue's Redis, as every program that talks to it names it: the URL,
 * the queue, and the TLS settings a rediss:// URL uses, into a member tls
 * of type struct rq_tls_cfg (rq_tls.h).
 */
#define CFG_REDIS_ENTRIES(type, url, queue, tls)                               \
	{ "redis-url", CFG_STR, offsetof(type, url), "redis://127.0.0.1:6379", \
		.max = 1024, .flags = CFG_URL,                                 \
		.text = "Queue backend: redis://[[user]:password@]host[:port]" \
			"[/db], rediss://... (TLS), "                          \
			"unix:///path?db=N&password=P, "                       \
			"redis+sentinel://host[:port],.../MASTER or "          \
			"redis+cluster://host[:port],...." },                  \
	    { "queue", CFG_STR, offsetof(type, queue), "default", .max = 128,  \
		    .text = "Queue name (keys cq:{<queue>}:...)." },           \
	    CFG_REDIS_TLS_ENTRIES(type, tls)

#define CFG_REDIS_TLS_ENTRIES(type, tls)                                       \
	{ "tls-ca-file", CFG_STR, offsetof(type, tls.ca_file), "",             \
		.max = 4096,                                                   \
		.text =                                                        \
		    "rediss://: PEM file of the CAs that sign the Redis "      \
		    "server's certificate (default: the system's store)." },   \
	    { "tls-cert-file", CFG_STR, offsetof(type, tls.cert_file), "",     \
		    .max = 4096,                                               \
		    .text =                                                    \
			"rediss://: PEM certificate (chain) shown to a Redis " \
			"that asks for one (tls-auth-clients); with "          \
			"tls-key-file." },                                     \
	    { "tls-key-file", CFG_STR, offsetof(type, tls.key_file), "",       \
		    .max = 4096,                                               \
		    .text = "rediss://: PEM private key of tls-cert-file." },  \
	    { "tls-server-name", CFG_STR, offsetof(type, tls.server_name), "", \
		    .max = 253,                                                \
		    .text =                                                    \
			"rediss://: the name sent as SNI and checked against " \
			"the certificate (default: the URL's host)." },        \
	{                                                                      \
		"tls-insecure", CFG_BOOL, offsetof(type, tls.insecure),        \
		    "false",                                                   \
		    .text = "rediss://: check neither the server's "           \
			    "certificate nor its name (logged as a warning)."  \
	}

enum config_result {
	CONFIG_OK,
	CONFIG_EXIT_OK, /* --help, --version, --example-config: exit 0 */
	CONFIG_CHECK, /* --check: run the program's own checks, say so, exit */
	CONFIG_ERROR, /* message in err: exit 2 */
};

enum config_result config_load(const struct cfg_table *t, void *base, int argc,
    char **argv, char *err, size_t errlen);
int		   config_load_env(
		   const struct cfg_table *t, void *base, char *err, size_t errlen);
/* Rules between settings: 0, or -1 with the reason in err; reads only. */
typedef int (*config_check_fn)(const void *, char *, size_t);

int config_reload(
    const struct cfg_table *t, void *base, char *err, size_t errlen);
int config_reload_check(const struct cfg_table *t, void *base,
    config_check_fn check, char *err, size_t errlen);
int config_set(const struct cfg_entry *e, void *base, const char *v, char *err,
    size_t errlen);
const struct cfg_entry *config_find(
    const struct cfg_table *t, const char *name);
void config_env_name(const char *name, char *buf, size_t len);
void config_print_help(const struct cfg_table *t, FILE *f);
void config_print_example(const struct cfg_table *t, FILE *f);
void config_print_version(const char *prog, FILE *f);
int  config_check_dir(
     const char *name, const char *path, int how, char *err, size_t errlen);
void config_dump(const struct cfg_table *t, const void *base);
void config_free(const struct cfg_table *t, void *base);

#endif
