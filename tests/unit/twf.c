/*
 * Workflow-layer test helpers (see twf.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"
#include "twf.h"
#include "unit.h"

/*
 * Checks spec (JSON text) with wf_job_new(): 0 when it is accepted (and
 * renders), -1 with *code and err when it is refused. The test fails when
 * job.c already refuses the spec.
 */
int
twf_check(const struct wf_registry *r, const char *spec,
    const struct wf_opts *o, const char **code, char *err, size_t errlen,
    const char *file, int line)
{
	struct job_spec js;
	struct wf_job  *j;

	if (job_spec_parse(&js, spec, strlen(spec), NULL, err, errlen) == -1)
		unit_fail(file, line, "spec refused by job.c: %s", err);
	err[0] = '\0';
	*code = NULL;
	j = wf_job_new(r, &js, o, code, err, errlen);
	wf_job_free(j);
	job_spec_free(&js);
	return (j != NULL ? 0 : -1);
}

/* Fails the test unless spec is accepted (code NULL) or refused so. */
void
twf_expect(const struct wf_registry *r, const char *spec,
    const struct wf_opts *o, const char *code, const char *want,
    const char *file, int line)
{
	const char *got;
	char	    err[2048];
	int rc = twf_check(r, spec, o, &got, err, sizeof err, file, line);

	unit_checks++;
	if (code == NULL && rc == -1)
		unit_fail(file, line, "refused: %s [%s]", err, got);
	if (code != NULL && rc == 0)
		unit_fail(file, line, "accepted: %.300s", spec);
	if (code != NULL && (strcmp(err, want) != 0 || strcmp(got, code) != 0))
		unit_fail(file, line, "\"%s\" [%s] != \"%s\" [%s]", err, got,
		    want, code);
}

/* A fresh folder for template files (the path lives until the next call). */
const char *
twf_dir(void)
{
	static char dir[64];

	snprintf(dir, sizeof dir, "%s", "/tmp/comfyq-twf.XXXXXX");
	if (mkdtemp(dir) == NULL)
		unit_fail(__FILE__, __LINE__, "mkdtemp failed");
	return (dir);
}

/* Writes dir/NAME.json. */
void
twf_write(const char *dir, const char *name, const char *text)
{
	char  path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s.json", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		unit_fail(__FILE__, __LINE__, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

/* Removes dir and the files in it. */
void
twf_rmdir(const char *dir)
{
	struct dirent *de;
	DIR	      *d;
	char	       path[512];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}
