/*
 * Config table: defaults, bounds, sources in order, errors, reload, the
 * folder checks, --example-config read back by --config.
 */
#include <sys/stat.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "rq_tls.h"
#include "unit.h"

/* argv arrays below are string literals, as a shell would pass them. */
#pragma GCC diagnostic ignored "-Wdiscarded-qualifiers"

struct tcfg {
	char	 *url;
	long long lease_ms;
	double	  ratio;
	int	  flag;
	int	  mode;
};

static const char *const tmodes[] = { "plain", "json", NULL };

static const struct cfg_entry tentries[] = {
	{ "redis-url", CFG_STR, offsetof(struct tcfg, url),
	    "redis://127.0.0.1:6379", .max = 100, .flags = CFG_URL,
	    .text = "Redis." },
	{ "lease-ms", CFG_INT, offsetof(struct tcfg, lease_ms), "30000",
	    .min = 1000, .max = 3600000, .flags = CFG_RELOAD,
	    .text = "Lease." },
	{ "ratio", CFG_DOUBLE, offsetof(struct tcfg, ratio), "0.5", .dmin = 0,
	    .dmax = 1, .text = "A ratio." },
	{ "flag", CFG_BOOL, offsetof(struct tcfg, flag), "false",
	    .text = "A flag." },
	{ "mode", CFG_ENUM, offsetof(struct tcfg, mode), "plain",
	    .enums = tmodes, .flags = CFG_RELOAD, .text = "A mode." },
};

static const struct cfg_table ttable = { "test", "A test program.", tentries,
	sizeof tentries / sizeof tentries[0], sizeof(struct tcfg) };

static void
tenv_clear(void)
{
	unsetenv("COMFYQ_REDIS_URL");
	unsetenv("COMFYQ_LEASE_MS");
	unsetenv("COMFYQ_RATIO");
	unsetenv("COMFYQ_FLAG");
	unsetenv("COMFYQ_MODE");
	unsetenv("COMFYQ_CONFIG");
}

static void
test_defaults(void)
{
	struct tcfg c = { 0 };
	char	    err[256];
	char	   *argv[] = { "test", NULL };

	tenv_clear();
	ASSERT_EQ(
	    config_load(&ttable, &c, 1, argv, err, sizeof err), CONFIG_OK);
	ASSERT_STREQ(c.url, "redis://127.0.0.1:6379");
	ASSERT_EQ(c.lease_ms, 30000);
	ASSERT_DBL_EQ(c.ratio, 0.5);
	ASSERT_EQ(c.flag, 0);
	ASSERT_EQ(c.mode, 0);
	config_free(&ttable, &c);
}

static void
test_sources_in_order(void)
{
	struct tcfg c = { 0 };
	char	    err[256], path[] = "/tmp/comfyq-cfg-XXXXXX";
	char *argv[] = { "test", "--config", path, "--lease-ms=5000", "--flag",
		NULL };
	FILE *f;
	int   fd;

	tenv_clear();
	fd = mkstemp(path);
	ASSERT_TRUE(fd != -1);
	f = fdopen(fd, "w");
	fprintf(f, "# a comment\nlease-ms = 2000\nratio = 0.25\nmode=json\n");
	fclose(f);
	setenv("COMFYQ_LEASE_MS", "3000", 1);
	setenv("COMFYQ_RATIO", "0.75", 1);
	ASSERT_EQ(
	    config_load(&ttable, &c, 5, argv, err, sizeof err), CONFIG_OK);
	ASSERT_EQ(c.lease_ms, 5000);  /* argv beats env beats file */
	ASSERT_DBL_EQ(c.ratio, 0.75); /* env beats file */
	ASSERT_EQ(c.mode, 1);	      /* file beats default */
	ASSERT_EQ(c.flag, 1);	      /* a bare boolean flag is true */
	config_free(&ttable, &c);
	unlink(path);
	tenv_clear();
}

static void
test_errors(void)
{
	struct tcfg c = { 0 };
	char	    err[256], path[] = "/tmp/comfyq-cfg-XXXXXX";
	char	   *argv1[] = { "test", "--lease-ms", "0", NULL };
	char	   *argv2[] = { "test", "--nope", "1", NULL };
	char	   *argv3[] = { "test", NULL };
	char	   *argv4[] = { "test", "--config", path, NULL };
	char	   *argv5[] = { "test", "--mode", "xml", NULL };
	char	   *argv6[] = { "test", "--lease-ms", NULL };
	FILE	   *f;
	int	    fd;

	tenv_clear();
	ASSERT_EQ(
	    config_load(&ttable, &c, 3, argv1, err, sizeof err), CONFIG_ERROR);
	ASSERT_STREQ(err, "--lease-ms: 0 not in 1000..3600000");
	config_free(&ttable, &c);
	ASSERT_EQ(
	    config_load(&ttable, &c, 3, argv2, err, sizeof err), CONFIG_ERROR);
	ASSERT_STREQ(err, "unknown option --nope (see --help)");
	config_free(&ttable, &c);
	setenv("COMFYQ_RATIO", "lots", 1);
	ASSERT_EQ(
	    config_load(&ttable, &c, 1, argv3, err, sizeof err), CONFIG_ERROR);
	ASSERT_STREQ(err, "COMFYQ_RATIO: ratio: 'lots' is not a number");
	config_free(&ttable, &c);
	tenv_clear();
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fprintf(f, "ratio = 0.5\n\nflag = maybe\n");
	fclose(f);
	ASSERT_EQ(
	    config_load(&ttable, &c, 3, argv4, err, sizeof err), CONFIG_ERROR);
	ASSERT_TRUE(strstr(err, ":3: flag: 'maybe' is not a boolean") != NULL);
	config_free(&ttable, &c);
	unlink(path);
	ASSERT_EQ(
	    config_load(&ttable, &c, 3, argv5, err, sizeof err), CONFIG_ERROR);
	ASSERT_STREQ(err, "--mode: 'xml' is not one of plain, json");
	config_free(&ttable, &c);
	ASSERT_EQ(
	    config_load(&ttable, &c, 2, argv6, err, sizeof err), CONFIG_ERROR);
	ASSERT_STREQ(err, "--lease-ms needs a value");
	config_free(&ttable, &c);
}

static void
test_reload_only_reloadable(void)
{
	struct tcfg c = { 0 };
	char	    err[256];
	char	   *argv[] = { "test", NULL };

	tenv_clear();
	ASSERT_EQ(
	    config_load(&ttable, &c, 1, argv, err, sizeof err), CONFIG_OK);
	setenv("COMFYQ_LEASE_MS", "9000", 1);
	setenv("COMFYQ_RATIO", "0.9", 1);
	setenv("COMFYQ_MODE", "json", 1);
	ASSERT_EQ(config_reload(&ttable, &c, err, sizeof err), 0);
	ASSERT_EQ(c.lease_ms, 9000); /* reloadable */
	ASSERT_EQ(c.mode, 1);	     /* reloadable */
	ASSERT_DBL_EQ(c.ratio, 0.5); /* not reloadable: unchanged */
	setenv("COMFYQ_LEASE_MS", "1", 1);
	ASSERT_EQ(config_reload(&ttable, &c, err, sizeof err), -1);
	ASSERT_EQ(c.lease_ms, 9000); /* a bad reload changes nothing */
	config_free(&ttable, &c);
	tenv_clear();
}

/* A program whose heartbeat must be at most half its lease (the worker's
 * rule); only the heartbeat and the name are reloadable. */
struct hcfg {
	long long lease_ms;
	long long heartbeat_ms;
	char	 *name;
};

static const struct cfg_entry hentries[] = {
	{ "lease-ms", CFG_INT, offsetof(struct hcfg, lease_ms), "3000",
	    .min = 1000, .max = 3600000, .text = "Lease." },
	{ "heartbeat-ms", CFG_INT, offsetof(struct hcfg, heartbeat_ms), "1000",
	    .min = 100, .max = 3600000, .flags = CFG_RELOAD,
	    .text = "Heartbeat." },
	{ "name", CFG_STR, offsetof(struct hcfg, name), "a", .max = 64,
	    .flags = CFG_RELOAD, .text = "A name." },
};

static const struct cfg_table htable = { "test", "A test program.", hentries,
	sizeof hentries / sizeof hentries[0], sizeof(struct hcfg) };

static int hcheck_calls;

static int
hcheck(const void *p, char *err, size_t errlen)
{
	const struct hcfg *c = p;

	hcheck_calls++;
	if (c->heartbeat_ms * 2 > c->lease_ms) {
		snprintf(err, errlen,
		    "heartbeat-ms: %lld must be at most half of lease-ms "
		    "(%lld)",
		    c->heartbeat_ms, c->lease_ms);
		return (-1);
	}
	return (0);
}

static void
test_reload_cross_field(void)
{
	struct hcfg c = { 0 };
	char	    err[256];
	char	   *argv[] = { "test", NULL };

	unsetenv("COMFYQ_CONFIG");
	unsetenv("COMFYQ_HEARTBEAT_MS");
	unsetenv("COMFYQ_NAME");
	setenv("COMFYQ_LEASE_MS", "3000", 1);
	ASSERT_EQ(
	    config_load(&htable, &c, 1, argv, err, sizeof err), CONFIG_OK);
	/* Each value is in its bounds, the pair is not: nothing changes. */
	setenv("COMFYQ_HEARTBEAT_MS", "2000", 1);
	setenv("COMFYQ_NAME", "b", 1);
	ASSERT_EQ(
	    config_reload_check(&htable, &c, hcheck, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "heartbeat-ms: 2000 must be at most half of "
	    "lease-ms (3000)");
	ASSERT_EQ(hcheck_calls, 1);
	ASSERT_EQ(c.heartbeat_ms, 1000);
	ASSERT_STREQ(c.name, "a");
	/* The rule sees the live lease, not the one the sources now say
	 * (lease-ms is not reloadable). */
	setenv("COMFYQ_LEASE_MS", "60000", 1);
	ASSERT_EQ(
	    config_reload_check(&htable, &c, hcheck, err, sizeof err), -1);
	ASSERT_EQ(c.heartbeat_ms, 1000);
	/* A pair that agrees is applied, strings included. */
	setenv("COMFYQ_HEARTBEAT_MS", "1500", 1);
	ASSERT_EQ(config_reload_check(&htable, &c, hcheck, err, sizeof err), 0);
	ASSERT_EQ(hcheck_calls, 3);
	ASSERT_EQ(c.heartbeat_ms, 1500);
	ASSERT_EQ(c.lease_ms, 3000);
	ASSERT_STREQ(c.name, "b");
	/* A bad value is refused before the rule runs. */
	setenv("COMFYQ_HEARTBEAT_MS", "1", 1);
	ASSERT_EQ(
	    config_reload_check(&htable, &c, hcheck, err, sizeof err), -1);
	ASSERT_EQ(hcheck_calls, 3);
	ASSERT_EQ(c.heartbeat_ms, 1500);
	config_free(&htable, &c);
	unsetenv("COMFYQ_LEASE_MS");
	unsetenv("COMFYQ_HEARTBEAT_MS");
	unsetenv("COMFYQ_NAME");
}

static void
test_env_name(void)
{
	char buf[64];

	config_env_name("comfyui-start-timeout-s", buf, sizeof buf);
	ASSERT_STREQ(buf, "COMFYQ_COMFYUI_START_TIMEOUT_S");
}

struct dcfg {
	char *in;
	char *out;
	char *off;
};

static const struct cfg_entry dentries[] = {
	{ "in-dir", CFG_STR, offsetof(struct dcfg, in), "/", .flags = CFG_DIR,
	    .text = "Read." },
	{ "out-dir", CFG_STR, offsetof(struct dcfg, out), "/",
	    .flags = CFG_DIR_OUT, .text = "Written." },
	{ "off-dir", CFG_STR, offsetof(struct dcfg, off), "", .flags = CFG_DIR,
	    .text = "Empty: not used." },
};

static const struct cfg_table dtable = { "test", NULL, dentries,
	sizeof dentries / sizeof dentries[0], sizeof(struct dcfg) };

/* Loads dtable with in-dir IN and out-dir OUT; returns the result. */
static enum config_result
dload(const char *in, const char *out, char *err, size_t errlen)
{
	struct dcfg	   c = { 0 };
	char		   a1[1024], a2[1024];
	char		  *argv[] = { "test", a1, a2, NULL };
	enum config_result rc;

	snprintf(a1, sizeof a1, "--in-dir=%s", in);
	snprintf(a2, sizeof a2, "--out-dir=%s", out);
	rc = config_load(&dtable, &c, 3, argv, err, errlen);
	config_free(&dtable, &c);
	return (rc);
}

static void
test_dirs(void)
{
	char	    dir[] = "/tmp/comfyq-cfgdir-XXXXXX", file[64], sub[128];
	char	    want[512], err[512];
	struct stat st;
	FILE	   *f;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(file, sizeof file, "%s/file", dir);
	ASSERT_TRUE((f = fopen(file, "w")) != NULL);
	fclose(f);

	/* An existing folder, and one made with its parents. */
	snprintf(sub, sizeof sub, "%s/a/b/out", dir);
	ASSERT_EQ(dload(dir, sub, err, sizeof err), CONFIG_OK);
	ASSERT_EQ(stat(sub, &st), 0);
	ASSERT_TRUE(S_ISDIR(st.st_mode));

	ASSERT_EQ(dload("/nonexistent/wf", dir, err, sizeof err), CONFIG_ERROR);
	ASSERT_STREQ(err, "in-dir: /nonexistent/wf: No such file or directory");
	ASSERT_EQ(dload(file, dir, err, sizeof err), CONFIG_ERROR);
	snprintf(want, sizeof want, "in-dir: %s: Not a directory", file);
	ASSERT_STREQ(err, want);
	/* A file in the way of the folder to make. */
	snprintf(sub, sizeof sub, "%s/out", file);
	ASSERT_EQ(dload(dir, sub, err, sizeof err), CONFIG_ERROR);
	snprintf(want, sizeof want, "out-dir: %s: Not a directory", sub);
	ASSERT_STREQ(err, want);
	ASSERT_EQ(dload(dir, file, err, sizeof err), CONFIG_ERROR);
	snprintf(want, sizeof want, "out-dir: %s: Not a directory", file);
	ASSERT_STREQ(err, want);
	ASSERT_EQ(config_check_dir("x", "", CFG_DIR, err, sizeof err), -1);
	ASSERT_STREQ(err, "x: must be set");
	if (geteuid() != 0) { /* root may read and write anything */
		snprintf(sub, sizeof sub, "%s/locked", dir);
		ASSERT_EQ(mkdir(sub, 0500), 0);
		ASSERT_EQ(dload(dir, sub, err, sizeof err), CONFIG_ERROR);
		snprintf(
		    want, sizeof want, "out-dir: %s: Permission denied", sub);
		ASSERT_STREQ(err, want);
		rmdir(sub);
	}
	unlink(file);
	snprintf(sub, sizeof sub, "rm -rf '%s'", dir);
	ASSERT_EQ(system(sub), 0);
}

/*
 * --example-config gives every setting, commented out with its default;
 * read back by --config as it is (the defaults) and uncommented (the
 * same values, every line parsed).
 */
static void
test_example(void)
{
	struct tcfg c = { 0 };
	char	    path[] = "/tmp/comfyq-cfgex-XXXXXX", line[512], err[256];
	char	   *argv[] = { "test", "--config", path, NULL };
	FILE	   *f, *g;
	size_t	    n = 0;
	int	    fd;

	tenv_clear();
	ASSERT_TRUE((fd = mkstemp(path)) != -1);
	ASSERT_TRUE((f = tmpfile()) != NULL);
	config_print_example(&ttable, f);
	rewind(f);
	ASSERT_TRUE((g = fdopen(fd, "w")) != NULL);
	while (fgets(line, sizeof line, f) != NULL) {
		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' &&
		    strstr(line, " = ") != NULL) {
			n++;
			fputs(line + 1, g); /* uncommented */
		} else
			fputs(line, g);
	}
	fclose(f);
	fclose(g);
	ASSERT_EQ(n, ttable.n);
	ASSERT_EQ(
	    config_load(&ttable, &c, 3, argv, err, sizeof err), CONFIG_OK);
	ASSERT_STREQ(c.url, "redis://127.0.0.1:6379");
	ASSERT_EQ(c.lease_ms, 30000);
	ASSERT_DBL_EQ(c.ratio, 0.5);
	config_free(&ttable, &c);
	unlink(path);
}

/*
 * The Redis entries every program shares: the URL, the queue and the five
 * TLS settings of a rediss:// URL, from one macro; the CLI reads the TLS
 * ones from the environment with config_load_env.
 */
struct rcfg {
	char		 *url;
	char		 *queue;
	struct rq_tls_cfg tls;
};

static const struct cfg_entry rentries[] = {
	CFG_REDIS_ENTRIES(struct rcfg, url, queue, tls),
};
static const struct cfg_table rtable = { "test", NULL, rentries,
	sizeof rentries / sizeof rentries[0], sizeof(struct rcfg) };

static void
test_redis_tls_entries(void)
{
	struct rcfg c = { 0 };
	char	    err[256];
	char	   *argv[] = { "test", "--redis-url", "rediss://r:6380",
		      "--tls-insecure", "--tls-server-name", "redis.internal", NULL };

	tenv_clear();
	setenv("COMFYQ_TLS_CA_FILE", "/etc/ca.pem", 1);
	ASSERT_EQ(rtable.n, 7);
	ASSERT_EQ(
	    config_load(&rtable, &c, 6, argv, err, sizeof err), CONFIG_OK);
	ASSERT_STREQ(c.url, "rediss://r:6380");
	ASSERT_STREQ(c.tls.ca_file, "/etc/ca.pem");
	ASSERT_STREQ(c.tls.cert_file, "");
	ASSERT_STREQ(c.tls.key_file, "");
	ASSERT_STREQ(c.tls.server_name, "redis.internal");
	ASSERT_EQ(c.tls.insecure, 1);
	config_free(&rtable, &c);

	memset(&c, 0, sizeof c);
	setenv("COMFYQ_TLS_INSECURE", "maybe", 1);
	ASSERT_EQ(config_load_env(&rtable, &c, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "COMFYQ_TLS_INSECURE: tls-insecure: 'maybe' is not a boolean "
	    "(true/false)");
	config_free(&rtable, &c);
	setenv("COMFYQ_TLS_INSECURE", "no", 1);
	ASSERT_EQ(config_load_env(&rtable, &c, err, sizeof err), 0);
	ASSERT_EQ(c.tls.insecure, 0);
	ASSERT_STREQ(c.tls.ca_file, "/etc/ca.pem");
	ASSERT_STREQ(c.queue, "default");
	config_free(&rtable, &c);
	unsetenv("COMFYQ_TLS_CA_FILE");
	unsetenv("COMFYQ_TLS_INSECURE");
}

const struct unit_test test_config[] = {
	{ "redis_tls_entries", test_redis_tls_entries },
	{ "defaults", test_defaults },
	{ "sources_in_order", test_sources_in_order },
	{ "errors", test_errors },
	{ "reload_only_reloadable", test_reload_only_reloadable },
	{ "reload_cross_field", test_reload_cross_field },
	{ "env_name", test_env_name },
	{ "dirs", test_dirs },
	{ "example", test_example },
	{ NULL, NULL },
};
