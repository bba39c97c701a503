/*
 * What the configuration prints (see config.h): --help, --example-config
 * (every setting with its default, as a file --config reads), the startup
 * dump of the settings in force (secrets never, URL passwords masked), and
 * the version line every program gives for --version: the number, the git
 * describe of the tree it was built from (generated/comfyq_git.h) and the
 * functions library it embeds.
 */
#include <stdio.h>
#include <string.h>

#include "comfyq_git.h"
#include "config.h"
#include "log.h"
#include "rq.h"

/* Appends [p, p + n) to buf (len bytes, *o used), cut to fit. */
static void
config_put(char *buf, size_t len, size_t *o, const char *p, size_t n)
{
	if (n > len - 1 - *o)
		n = len - 1 - *o;
	memcpy(buf + *o, p, n);
	*o += n;
	buf[*o] = '\0';
}

/*
 * Copies URL s into buf with its secrets masked: what comes before an '@'
 * (the user and password), and the value of every query parameter whose
 * name ends in "password" (unix://...?password=,
 * redis+sentinel://...?sentinel-password=).
 */
static void
config_mask_url(const char *s, char *buf, size_t len)
{
	const char *sep, *at, *p, *q, *amp, *eq;
	size_t	    o = 0;

	buf[0] = '\0';
	p = s;
	if ((sep = strstr(s, "://")) != NULL &&
	    (at = strchr(sep + 3, '@')) != NULL) {
		config_put(buf, len, &o, s, (size_t)(sep + 3 - s));
		config_put(buf, len, &o, "***", 3);
		p = at;
	}
	if ((q = strchr(p, '?')) == NULL) {
		config_put(buf, len, &o, p, strlen(p));
		return;
	}
	config_put(buf, len, &o, p, (size_t)(q + 1 - p));
	for (p = q + 1;; p = amp + 1) {
		amp = p + strcspn(p, "&");
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq != NULL && eq - p >= 8 &&
		    memcmp(eq - 8, "password", 8) == 0) {
			config_put(buf, len, &o, p, (size_t)(eq + 1 - p));
			config_put(buf, len, &o, "***", 3);
		} else
			config_put(buf, len, &o, p, (size_t)(amp - p));
		if (*amp == '\0')
			break;
		config_put(buf, len, &o, "&", 1);
	}
}

/* Formats the value of e into buf for printing. */
static void
config_format(
    const struct cfg_entry *e, const void *base, char *buf, size_t len)
{
	const char *s;

	switch (e->type) {
	case CFG_STR:
		s = *(char *const *)((const char *)base + e->off);
		if (s == NULL)
			s = "";
		if ((e->flags & CFG_SECRET) && *s != '\0')
			snprintf(buf, len, "(set)");
		else if (e->flags & CFG_URL)
			config_mask_url(s, buf, len);
		else
			snprintf(buf, len, "%s", s);
		break;
	case CFG_INT:
		snprintf(buf, len, "%lld",
		    *(const long long *)((const char *)base + e->off));
		break;
	case CFG_DOUBLE:
		snprintf(buf, len, "%g",
		    *(const double *)((const char *)base + e->off));
		break;
	case CFG_BOOL:
		snprintf(buf, len, "%s",
		    *(const int *)((const char *)base + e->off) ? "true"
								: "false");
		break;
	case CFG_ENUM:
		snprintf(buf, len, "%s",
		    e->enums[*(const int *)((const char *)base + e->off)]);
		break;
	}
}

static void
config_format_rule(const struct cfg_entry *e, char *buf, size_t len)
{
	size_t i, off;

	switch (e->type) {
	case CFG_STR:
		snprintf(buf, len, "string");
		break;
	case CFG_INT:
		snprintf(buf, len, "int %lld..%lld", e->min, e->max);
		break;
	case CFG_DOUBLE:
		snprintf(buf, len, "number %g..%g", e->dmin, e->dmax);
		break;
	case CFG_BOOL:
		snprintf(buf, len, "bool");
		break;
	case CFG_ENUM:
		off = 0;
		buf[0] = '\0';
		for (i = 0; e->enums[i] != NULL && off < len; i++)
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
			    i == 0 ? "" : "|", e->enums[i]);
		break;
	}
}

void
config_print_help(const struct cfg_table *t, FILE *f)
{
	char   env[128], rule[256];
	size_t i;

	fprintf(f,
	    "usage: %s [--config FILE] [--NAME VALUE ...] [--check]\n"
	    "       %s --version | --example-config | --help\n",
	    t->prog, t->prog);
	if (t->summary != NULL)
		fprintf(f, "%s\n", t->summary);
	fprintf(f,
	    "\nEach setting is also read from the environment "
	    "(COMFYQ_NAME) and from\nthe --config file (name = value); "
	    "the command line wins. Settings marked\n[reload] are "
	    "re-read on SIGHUP.\n\n");
	for (i = 0; i < t->n; i++) {
		const struct cfg_entry *e = &t->entries[i];

		config_env_name(e->name, env, sizeof env);
		config_format_rule(e, rule, sizeof rule);
		fprintf(f, "  --%-26s %s\n", e->name, env);
		fprintf(f, "      %s; default %s%s\n", rule,
		    e->def == NULL || *e->def == '\0' ? "(none)"
			: (e->flags & CFG_SECRET)     ? "(secret)"
						      : e->def,
		    (e->flags & CFG_RELOAD) ? " [reload]" : "");
		fprintf(f, "      %s\n", e->text);
	}
}

/* The one version line of every program: number, git, functions library. */
void
config_print_version(const char *prog, FILE *f)
{
	fprintf(f, "%s %s (%s, functions library %s)\n", prog, COMFYQ_VERSION,
	    COMFYQ_GIT_DESCRIBE, RQ_LIB_VERSION);
}

/* Writes text as '#' comment lines of at most about 76 columns. */
static void
config_print_comment(const char *text, FILE *f)
{
	const char *p = text, *sp, *nl;
	size_t	    n;

	while (*p != '\0') {
		n = strlen(p);
		if ((nl = strchr(p, '\n')) != NULL)
			n = (size_t)(nl - p);
		if (n > 74) {
			for (sp = p + 74; sp > p && *sp != ' '; sp--)
				;
			if (sp > p)
				n = (size_t)(sp - p);
		}
		fprintf(f, "# %.*s\n", (int)n, p);
		p += n;
		while (*p == ' ' || *p == '\n')
			p++;
	}
}

/*
 * Every setting as a config file --config reads: its text and rule as
 * comments, then `#name = default`, commented out, so the file as it is
 * changes nothing and an operator uncomments what they set.
 */
void
config_print_example(const struct cfg_table *t, FILE *f)
{
	char	    env[128], rule[256], head[512];
	const char *v;
	size_t	    i;

	fprintf(f, "# %s: every setting with its default.\n", t->prog);
	if (t->summary != NULL)
		config_print_comment(t->summary, f);
	fprintf(f,
	    "#\n# Read with: %s --config FILE (or COMFYQ_CONFIG=FILE).\n"
	    "# Lines are `name = value`; '#' starts a comment. The "
	    "environment\n# (COMFYQ_NAME) and --name VALUE win over "
	    "this file. Uncomment\n# and change what you need; [reload] "
	    "settings are re-read on SIGHUP.\n",
	    t->prog);
	for (i = 0; i < t->n; i++) {
		const struct cfg_entry *e = &t->entries[i];

		config_env_name(e->name, env, sizeof env);
		config_format_rule(e, rule, sizeof rule);
		fprintf(f, "\n");
		config_print_comment(e->text, f);
		snprintf(head, sizeof head, "%s; %s%s", rule, env,
		    (e->flags & CFG_RELOAD) ? " [reload]" : "");
		config_print_comment(head, f);
		v = e->def == NULL || (e->flags & CFG_SECRET) ? "" : e->def;
		fprintf(f, "#%s =%s%s\n", e->name, *v != '\0' ? " " : "", v);
	}
}

void
config_dump(const struct cfg_table *t, const void *base)
{
	char   val[512];
	size_t i;

	for (i = 0; i < t->n; i++) {
		config_format(&t->entries[i], base, val, sizeof val);
		log_info("config %s = %s", t->entries[i].name, val);
	}
}
