/*
 * Table-driven configuration (see config.h). Sources are applied in order:
 * defaults, the file, the environment, the command line. The file path and
 * argv are remembered so a reload re-reads the same sources and copies only
 * the entries marked CFG_RELOAD into the live struct, and only after the
 * settings they would give passed the program's cross-field check. The
 * folders (CFG_DIR) are checked once, at load: they are never reloaded.
 * The printing (--help, --example-config, --version, the startup dump) is
 * in config_print.c.
 */
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define CONFIG_LINE_MAX 4096

const char *const cfg_log_levels[] = { "debug", "verbose", "notice", "warning",
	"error", NULL };
const char *const cfg_log_formats[] = { "plain", "json", NULL };

static char  *config_path;
static int    config_argc;
static char **config_argv;

void
config_env_name(const char *name, char *buf, size_t len)
{
	size_t i, o;

	o = (size_t)snprintf(buf, len, "COMFYQ_");
	for (i = 0; name[i] != '\0' && o + 1 < len; i++, o++)
		buf[o] = name[i] == '-' ? '_'
					: (char)toupper((unsigned char)name[i]);
	buf[o < len ? o : len - 1] = '\0';
}

const struct cfg_entry *
config_find(const struct cfg_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->entries[i].name, name) == 0)
			return (&t->entries[i]);
	return (NULL);
}

static int
config_parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	size_t			 i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return (0);
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return (0);
		}
	}
	return (-1);
}

/* Parses and bound-checks one value into base. */
int
config_set(const struct cfg_entry *e, void *base, const char *v, char *err,
    size_t errlen)
{
	char	 *end, **sp;
	long long ll;
	double	  d;
	int	  b;
	size_t	  i;

	switch (e->type) {
	case CFG_STR:
		if (e->max > 0 && strlen(v) > (size_t)e->max) {
			snprintf(err, errlen, "%s: longer than %lld bytes",
			    e->name, e->max);
			return (-1);
		}
		sp = (char **)((char *)base + e->off);
		free(*sp);
		*sp = xstrdup(v);
		return (0);
	case CFG_INT:
		errno = 0;
		ll = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0) {
			snprintf(err, errlen, "%s: '%s' is not an integer",
			    e->name, v);
			return (-1);
		}
		if (ll < e->min || ll > e->max) {
			snprintf(err, errlen, "%s: %lld not in %lld..%lld",
			    e->name, ll, e->min, e->max);
			return (-1);
		}
		*(long long *)((char *)base + e->off) = ll;
		return (0);
	case CFG_DOUBLE:
		errno = 0;
		d = strtod(v, &end);
		if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(d)) {
			snprintf(err, errlen, "%s: '%s' is not a number",
			    e->name, v);
			return (-1);
		}
		if (d < e->dmin || d > e->dmax) {
			snprintf(err, errlen, "%s: %g not in %g..%g", e->name,
			    d, e->dmin, e->dmax);
			return (-1);
		}
		*(double *)((char *)base + e->off) = d;
		return (0);
	case CFG_BOOL:
		if (config_parse_bool(v, &b) == -1) {
			snprintf(err, errlen,
			    "%s: '%s' is not a boolean (true/false)", e->name,
			    v);
			return (-1);
		}
		*(int *)((char *)base + e->off) = b;
		return (0);
	case CFG_ENUM:
		for (i = 0; e->enums[i] != NULL; i++) {
			if (strcmp(v, e->enums[i]) == 0) {
				*(int *)((char *)base + e->off) = (int)i;
				return (0);
			}
		}
		snprintf(err, errlen, "%s: '%s' is not one of", e->name, v);
		for (i = 0; e->enums[i] != NULL; i++) {
			size_t off = strlen(err);

			snprintf(err + off, errlen - off, "%s %s",
			    i == 0 ? "" : ",", e->enums[i]);
		}
		return (-1);
	}
	snprintf(err, errlen, "%s: unknown type", e->name);
	return (-1);
}

/* Prefixes the message in err with the source it came from. */
static void
config_prefix(char *err, size_t errlen, const char *prefix)
{
	char tmp[1024];

	snprintf(tmp, sizeof tmp, "%s", err);
	snprintf(err, errlen, "%s%s", prefix, tmp);
}

static char *
config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return (s);
}

/* Reads `name = value` lines; '#' starts a comment line. */
static int
config_read_file(const struct cfg_table *t, void *base, const char *path,
    char *err, size_t errlen)
{
	FILE		       *f;
	char			line[CONFIG_LINE_MAX], *k, *v, *eq;
	const struct cfg_entry *e;
	long			lineno = 0;
	int			rc = -1;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(
			    err, errlen, "%s:%ld: line too long", path, lineno);
			goto out;
		}
		k = config_trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			snprintf(err, errlen, "%s:%ld: expected name = value",
			    path, lineno);
			goto out;
		}
		*eq = '\0';
		k = config_trim(k);
		v = config_trim(eq + 1);
		if ((e = config_find(t, k)) == NULL) {
			snprintf(err, errlen, "%s:%ld: unknown setting '%s'",
			    path, lineno, k);
			goto out;
		}
		if (config_set(e, base, v, err, errlen) == -1) {
			char where[512];

			snprintf(where, sizeof where, "%s:%ld: ", path, lineno);
			config_prefix(err, errlen, where);
			goto out;
		}
	}
	rc = 0;
out:
	fclose(f);
	return (rc);
}

static int
config_read_env(const struct cfg_table *t, void *base, char *err, size_t errlen)
{
	char   env[128];
	char  *v;
	size_t i;

	for (i = 0; i < t->n; i++) {
		config_env_name(t->entries[i].name, env, sizeof env);
		if ((v = getenv(env)) == NULL)
			continue;
		if (config_set(&t->entries[i], base, v, err, errlen) == -1) {
			char where[160];

			snprintf(where, sizeof where, "%s: ", env);
			config_prefix(err, errlen, where);
			return (-1);
		}
	}
	return (0);
}

/*
 * Walks argv. With apply set, values are stored; otherwise only --config is
 * noted and --help/--check are reported through *special.
 */
static int
config_read_argv(const struct cfg_table *t, void *base, int argc, char **argv,
    int apply, int *special, char *err, size_t errlen)
{
	const struct cfg_entry *e;
	char			name[128], *eq;
	const char	       *arg, *v;
	int			i;

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			*special = 'h';
			continue;
		}
		if (strcmp(arg, "-n") == 0 || strcmp(arg, "--check") == 0) {
			*special = 'n';
			continue;
		}
		if (strcmp(arg, "--version") == 0) {
			*special = 'v';
			continue;
		}
		if (strcmp(arg, "--example-config") == 0) {
			*special = 'e';
			continue;
		}
		if (strncmp(arg, "--", 2) != 0) {
			snprintf(err, errlen,
			    "unexpected argument '%s' (see --help)", arg);
			return (-1);
		}
		snprintf(name, sizeof name, "%s", arg + 2);
		v = NULL;
		if ((eq = strchr(name, '=')) != NULL) {
			*eq = '\0';
			v = arg + 2 + (eq - name) + 1;
		}
		if (strcmp(name, "config") == 0)
			e = NULL;
		else if ((e = config_find(t, name)) == NULL) {
			snprintf(err, errlen,
			    "unknown option --%s (see --help)", name);
			return (-1);
		}
		if (v == NULL) {
			if (e != NULL && e->type == CFG_BOOL &&
			    (i + 1 >= argc ||
				strncmp(argv[i + 1], "--", 2) == 0))
				v = "true";
			else if (i + 1 < argc)
				v = argv[++i];
			else {
				snprintf(
				    err, errlen, "--%s needs a value", name);
				return (-1);
			}
		}
		if (e == NULL) {
			if (!apply) {
				free(config_path);
				config_path = xstrdup(v);
			}
			continue;
		}
		if (apply && config_set(e, base, v, err, errlen) == -1) {
			config_prefix(err, errlen, "--");
			return (-1);
		}
	}
	return (0);
}

static int
config_defaults(const struct cfg_table *t, void *base, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->entries[i].def == NULL)
			continue;
		if (config_set(&t->entries[i], base, t->entries[i].def, err,
			errlen) == -1) {
			config_prefix(err, errlen, "default ");
			return (-1);
		}
	}
	return (0);
}

/*
 * Defaults, then the environment: for a program whose command line is its
 * own (the CLI), which sets the rest with config_set.
 */
int
config_load_env(const struct cfg_table *t, void *base, char *err, size_t errlen)
{
	if (config_defaults(t, base, err, errlen) == -1)
		return (-1);
	return (config_read_env(t, base, err, errlen));
}

/* Applies defaults, file, env and argv into base. */
static int
config_apply_all(const struct cfg_table *t, void *base, int argc, char **argv,
    char *err, size_t errlen)
{
	int special = 0;

	if (config_defaults(t, base, err, errlen) == -1)
		return (-1);
	if (config_path != NULL &&
	    config_read_file(t, base, config_path, err, errlen) == -1)
		return (-1);
	if (config_read_env(t, base, err, errlen) == -1)
		return (-1);
	return (
	    config_read_argv(t, base, argc, argv, 1, &special, err, errlen));
}

/*
 * Checks the folder path of setting name: made with its parents when how
 * has CFG_DIR_MAKE, then a directory this process can read (and write,
 * with CFG_DIR_WRITE). Returns 0, or -1 with "name: path: reason" in err.
 */
int
config_check_dir(
    const char *name, const char *path, int how, char *err, size_t errlen)
{
	struct stat st;
	char	    why[1024];
	int	    mode = R_OK | X_OK;

	if (*path == '\0') {
		snprintf(err, errlen, "%s: must be set", name);
		return (-1);
	}
	if ((how & CFG_DIR_MAKE) && mkdir_p(path, why, sizeof why) == -1) {
		snprintf(err, errlen, "%s: %s", name, why);
		return (-1);
	}
	if (how & CFG_DIR_WRITE)
		mode |= W_OK;
	if (stat(path, &st) == -1)
		goto fail;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		goto fail;
	}
	if (access(path, mode) == -1)
		goto fail;
	return (0);
fail:
	snprintf(err, errlen, "%s: %s: %s", name, path, strerror(errno));
	return (-1);
}

/* config_check_dir for every CFG_DIR entry that is set. */
static int
config_check_dirs(
    const struct cfg_table *t, void *base, char *err, size_t errlen)
{
	const char *v;
	size_t	    i;

	for (i = 0; i < t->n; i++) {
		const struct cfg_entry *e = &t->entries[i];

		if (e->type != CFG_STR || !(e->flags & CFG_DIR))
			continue;
		v = *(char **)((char *)base + e->off);
		if (v != NULL && *v != '\0' &&
		    config_check_dir(e->name, v, e->flags, err, errlen) == -1)
			return (-1);
	}
	return (0);
}

enum config_result
config_load(const struct cfg_table *t, void *base, int argc, char **argv,
    char *err, size_t errlen)
{
	const char *env;
	int	    special = 0;

	config_argc = argc;
	config_argv = argv;
	free(config_path);
	config_path = NULL;
	if ((env = getenv("COMFYQ_CONFIG")) != NULL && *env != '\0')
		config_path = xstrdup(env);
	if (config_read_argv(t, base, argc, argv, 0, &special, err, errlen) ==
	    -1)
		return (CONFIG_ERROR);
	switch (special) {
	case 'h':
		config_print_help(t, stdout);
		return (CONFIG_EXIT_OK);
	case 'v':
		config_print_version(t->prog, stdout);
		return (CONFIG_EXIT_OK);
	case 'e':
		config_print_example(t, stdout);
		return (CONFIG_EXIT_OK);
	}
	if (config_apply_all(t, base, argc, argv, err, errlen) == -1 ||
	    config_check_dirs(t, base, err, errlen) == -1)
		return (CONFIG_ERROR);
	if (special == 'n')
		return (CONFIG_CHECK);
	return (CONFIG_OK);
}

/* The size of an entry's value in the struct. */
static size_t
config_value_size(const struct cfg_entry *e)
{
	switch (e->type) {
	case CFG_STR:
		return (sizeof(char *));
	case CFG_INT:
		return (sizeof(long long));
	case CFG_DOUBLE:
		return (sizeof(double));
	case CFG_BOOL:
	case CFG_ENUM:
		break;
	}
	return (sizeof(int));
}

/*
 * Re-reads every source into a scratch struct and checks the settings the
 * reload would give (the live ones with the CFG_RELOAD entries of the
 * scratch) with check, when there is one, before anything is used: only
 * when both pass are the CFG_RELOAD entries moved into base. A refused
 * reload changes nothing. check sees a struct that borrows its strings.
 */
int
config_reload_check(const struct cfg_table *t, void *base,
    config_check_fn check, char *err, size_t errlen)
{
	void  *fresh, *cand;
	size_t i, sz;
	int    rc = -1;

	fresh = xcalloc(1, t->size);
	cand = xmalloc(t->size);
	if (config_apply_all(t, fresh, config_argc, config_argv, err, errlen) ==
	    -1)
		goto out;
	/* The candidate borrows every string from base or fresh. */
	memcpy(cand, base, t->size);
	for (i = 0; i < t->n; i++) {
		const struct cfg_entry *e = &t->entries[i];

		if (e->flags & CFG_RELOAD)
			memcpy((char *)cand + e->off, (char *)fresh + e->off,
			    config_value_size(e));
	}
	if (check != NULL && check(cand, err, errlen) == -1)
		goto out;
	for (i = 0; i < t->n; i++) {
		const struct cfg_entry *e = &t->entries[i];

		if (!(e->flags & CFG_RELOAD))
			continue;
		sz = config_value_size(e);
		if (e->type == CFG_STR)
			free(*(char **)((char *)base + e->off));
		memcpy((char *)base + e->off, (char *)fresh + e->off, sz);
		if (e->type == CFG_STR)
			*(char **)((char *)fresh + e->off) = NULL;
	}
	rc = 0;
out:
	config_free(t, fresh);
	free(fresh);
	free(cand);
	return (rc);
}

/* config_reload_check without rules between settings. */
int
config_reload(const struct cfg_table *t, void *base, char *err, size_t errlen)
{
	return (config_reload_check(t, base, NULL, err, errlen));
}

void
config_free(const struct cfg_table *t, void *base)
{
	size_t i;
	char **sp;

	for (i = 0; i < t->n; i++) {
		if (t->entries[i].type != CFG_STR)
			continue;
		sp = (char **)((char *)base + t->entries[i].off);
		free(*sp);
		*sp = NULL;
	}
}
