/*
 * Helpers for the workflow-layer tests: a spec through wf_job_new() with
 * the outcome checked, and template folders written for one test.
 */
#ifndef COMFYQ_TWF_H
#define COMFYQ_TWF_H

#include <stddef.h>

#include "wfjob.h"

int  twf_check(const struct wf_registry *, const char *, const struct wf_opts *,
     const char **, char *, size_t, const char *, int);
void twf_expect(const struct wf_registry *r, const char *spec,
    const struct wf_opts *o, const char *code, const char *want,
    const char *file, int line);
const char *twf_dir(void);
void	    twf_write(const char *dir, const char *name, const char *text);
void	    twf_rmdir(const char *);

/* The spec is accepted; or refused with exactly this invalid_input. */
#define ACCEPTED(r, o, spec)                                                   \
	twf_expect(r, spec, o, NULL, NULL, __FILE__, __LINE__)
#define REFUSED_AS(r, o, spec, want)                                           \
	twf_expect(r, spec, o, "invalid_input", want, __FILE__, __LINE__)

#endif
