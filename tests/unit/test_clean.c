/*
 * The janitor's file cleanup on real temp trees with aged files (mtimes set
 * with utimensat): exactly the old files go, symlinks and their targets
 * outside stay, running jobs' files stay, the walk is bounded per step, and
 * bad folders are refused with a clear reason.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "janitor_clean.h"
#include "janitor_inuse.h"
#include "tfile.h"
#include "unit.h"

#define HOUR 3600
#define DAY  86400

static const long long ages[CLEAN_NKINDS] = { DAY, HOUR, 7 * DAY };

static char tmp[256];

static const char *
tpath(const char *rel)
{
	return (tfile_path(tmp, rel));
}

static void
tmp_make(void)
{
	snprintf(tmp, sizeof tmp, "%s/comfyq-clean-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(tmp) != NULL);
}

static void
tmp_remove(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	ASSERT_EQ(system(cmd), 0);
}

static void
age(const char *rel, long long secs)
{
	tfile_age(tpath(rel), secs);
}

static void
file(const char *rel, size_t size, long long secs)
{
	tfile_write(tpath(rel), size, secs);
}

static void
dir(const char *rel)
{
	ASSERT_EQ(mkdir(tpath(rel), 0755), 0);
}

static int
exists(const char *rel)
{
	return (tfile_exists(tpath(rel)));
}

/* A temp dir and an empty in-use set for one test. */
static struct inuse *
fix_begin(void)
{
	tmp_make();
	return (inuse_new());
}

static void
fix_end(struct clean *c, struct inuse *u)
{
	clean_free(c);
	inuse_free(u);
	tmp_remove();
}

/* Runs steps of budget entries until a pass ends; returns the steps. */
static int
clean_pass(struct clean *c, const struct inuse *u, long long budget,
    struct clean_stats *st)
{
	int steps = 1;

	while (!clean_step(c, ages, u, budget, st)) {
		steps++;
		ASSERT_TRUE(steps < 10000);
	}
	return (steps);
}

static struct clean *
clean_of(const char *spec)
{
	struct clean *c;
	char	      err[512];

	c = clean_new(spec, err, sizeof err);
	if (c == NULL)
		unit_fail(__FILE__, __LINE__, "clean_new: %s", err);
	return (c);
}

static void
test_old_files_go_exactly(void)
{
	struct clean_stats st = { 0 };
	struct inuse	  *u = fix_begin();
	struct clean	  *c;
	char		   spec[PATH_MAX + 16];

	dir("out");
	dir("outside");
	file("outside/target.png", 10, 30 * DAY);
	file("out/old.png", 100, 2 * DAY);
	file("out/new.png", 100, 60);
	file("out/edge.png", 100, DAY - 120); /* younger than the age */
	dir("out/sub");
	file("out/sub/old.txt", 7, 3 * DAY);
	age("out/sub", 2 * DAY);
	dir("out/young");
	file("out/young/new.txt", 5, 10);
	dir("out/comfyq");
	dir("out/comfyq/J1");
	file("out/comfyq/J1/run.png", 50, 5 * DAY);
	dir("out/comfyq/J2");
	file("out/comfyq/J2/done.png", 20, 5 * DAY);
	age("out/comfyq/J2", 5 * DAY);
	dir("out/faces");
	file("out/faces/keep.png", 30, 9 * DAY);
	ASSERT_EQ(symlink(tpath("outside"), tpath("out/link")), 0);
	ASSERT_EQ(symlink(tpath("outside/target.png"), tpath("out/lfile")), 0);
	age("out/link", 9 * DAY);
	age("out/lfile", 9 * DAY);
	ASSERT_EQ(mkfifo(tpath("out/fifo"), 0600), 0);
	age("out/fifo", 9 * DAY);

	inuse_add_job(u, "J1");
	ASSERT_EQ(inuse_add_files(
		      u, "[\"output/faces/keep.png\"]", spec, sizeof spec),
	    0);
	inuse_seal(u);
	snprintf(spec, sizeof spec, "output=%s", tpath("out"));
	c = clean_of(spec);
	ASSERT_EQ(clean_pass(c, u, 1000, &st), 1);

	ASSERT_EQ(st.files, 3);
	ASSERT_EQ(st.bytes, 100 + 7 + 20);
	ASSERT_EQ(st.dirs, 2); /* out/sub and out/comfyq/J2, both emptied */
	ASSERT_EQ(st.kept, 1); /* faces/keep.png */
	ASSERT_EQ(st.skipped, 3);
	ASSERT_EQ(st.errors, 0);
	ASSERT_TRUE(!exists("out/old.png"));
	ASSERT_TRUE(!exists("out/sub"));
	ASSERT_TRUE(!exists("out/comfyq/J2"));
	ASSERT_TRUE(exists("out/new.png"));
	ASSERT_TRUE(exists("out/edge.png"));
	ASSERT_TRUE(exists("out/young/new.txt"));
	ASSERT_TRUE(exists("out/comfyq/J1/run.png"));
	ASSERT_TRUE(exists("out/faces/keep.png"));
	ASSERT_TRUE(exists("out/link"));
	ASSERT_TRUE(exists("out/lfile"));
	ASSERT_TRUE(exists("out/fifo"));
	ASSERT_TRUE(exists("outside/target.png"));

	/* The job ended: its folder goes on the next pass. */
	memset(&st, 0, sizeof st);
	inuse_clear(u);
	inuse_seal(u);
	ASSERT_EQ(clean_pass(c, u, 1000, &st), 1);
	ASSERT_EQ(st.files, 2);
	ASSERT_TRUE(!exists("out/comfyq/J1/run.png"));
	ASSERT_TRUE(!exists("out/faces/keep.png"));
	ASSERT_TRUE(exists("outside/target.png"));
	fix_end(c, u);
}

static void
test_ages_per_kind(void)
{
	struct clean_stats st = { 0 };
	struct inuse	  *u = fix_begin();
	struct clean	  *c;
	char		   spec[3 * PATH_MAX];

	dir("output");
	dir("temp");
	dir("input");
	file("output/a", 1, 2 * HOUR); /* kept: output age is 24 h */
	file("temp/a", 1, 2 * HOUR);   /* goes: temp age is 1 h */
	file("temp/b", 1, HOUR / 2);   /* kept */
	file("input/a", 1, 2 * DAY);   /* kept: input age is 7 d */
	file("input/b", 1, 8 * DAY);   /* goes */
	snprintf(spec, sizeof spec, "output=%s, temp=%s/,input=%s",
	    tpath("output"), tpath("temp"), tpath("input"));
	c = clean_of(spec);
	ASSERT_EQ(clean_ndirs(c), 3);
	clean_pass(c, u, 1000, &st);
	ASSERT_EQ(st.files, 2);
	ASSERT_TRUE(exists("output/a"));
	ASSERT_TRUE(!exists("temp/a"));
	ASSERT_TRUE(exists("temp/b"));
	ASSERT_TRUE(exists("input/a"));
	ASSERT_TRUE(!exists("input/b"));
	fix_end(c, u);
}

static void
test_bounded_steps(void)
{
	struct clean_stats st = { 0 };
	struct inuse	  *u = fix_begin();
	struct clean	  *c;
	char		   spec[PATH_MAX + 16], rel[64];
	int		   i, steps;

	dir("t");
	dir("t/d");
	for (i = 0; i < 40; i++) {
		snprintf(rel, sizeof rel, "t/d/f%02d", i);
		file(rel, 1, 2 * HOUR);
	}
	snprintf(spec, sizeof spec, "temp=%s", tpath("t"));
	c = clean_of(spec);
	/* 41 entries, 5 per step: 9 steps; the pass is open in between. */
	ASSERT_EQ(clean_step(c, ages, u, 5, &st), 0);
	ASSERT_EQ(clean_walking(c), 1);
	ASSERT_EQ(st.files, 4);
	steps = 1 + clean_pass(c, u, 5, &st);
	ASSERT_EQ(steps, 9);
	ASSERT_EQ(st.files, 40);
	ASSERT_EQ(clean_walking(c), 0);
	fix_end(c, u);
}

static void
test_root_swapped_for_symlink(void)
{
	struct clean_stats st = { 0 };
	struct inuse	  *u = fix_begin();
	struct clean	  *c;
	char		   spec[PATH_MAX + 16];

	dir("out");
	dir("elsewhere");
	file("elsewhere/precious", 1, 30 * DAY);
	snprintf(spec, sizeof spec, "output=%s", tpath("out"));
	c = clean_of(spec);
	/* After the start, the folder is replaced by a symlink. */
	ASSERT_EQ(rmdir(tpath("out")), 0);
	ASSERT_EQ(symlink(tpath("elsewhere"), tpath("out")), 0);
	clean_pass(c, u, 1000, &st);
	ASSERT_EQ(st.files, 0);
	ASSERT_EQ(st.errors, 1);
	ASSERT_TRUE(exists("elsewhere/precious"));
	fix_end(c, u);
}

/* How many files "<prefix>NN" (NN < n) exist. */
static int
count_files(const char *prefix, int n)
{
	char rel[256];
	int  i, k = 0;

	for (i = 0; i < n; i++) {
		snprintf(rel, sizeof rel, "%s%02d", prefix, i);
		k += exists(rel);
	}
	return (k);
}

static void
files(const char *prefix, int n, long long secs)
{
	char rel[256];
	int  i;

	for (i = 0; i < n; i++) {
		snprintf(rel, sizeof rel, "%s%02d", prefix, i);
		file(rel, 1, secs);
	}
}

/*
 * The walk stops inside base/out/d; then base, a parent of the folder, is
 * swapped for a symlink to a tree with old files. Neither the rest of this
 * pass nor the next one may reach them.
 */
static void
test_parent_swapped_mid_walk(void)
{
	struct clean_stats st = { 0 };
	struct inuse	  *u = fix_begin();
	struct clean	  *c;
	char		   spec[PATH_MAX + 16];

	dir("base");
	dir("base/out");
	dir("base/out/d");
	files("base/out/d/f", 10, 2 * DAY);
	dir("outside");
	dir("outside/out");
	dir("outside/out/d");
	files("outside/out/d/f", 10, 2 * DAY);
	snprintf(spec, sizeof spec, "output=%s", tpath("base/out"));
	c = clean_of(spec);
	/* One entry (d), then two files of d: the walk is inside d. */
	ASSERT_EQ(clean_step(c, ages, u, 3, &st), 0);
	ASSERT_EQ(st.files, 2);
	ASSERT_EQ(rename(tpath("base"), tpath("base.real")), 0);
	ASSERT_EQ(symlink(tpath("outside"), tpath("base")), 0);
	clean_pass(c, u, 3, &st); /* the rest of this pass */
	clean_pass(c, u, 3, &st); /* and a whole new one */
	ASSERT_EQ(count_files("outside/out/d/f", 10), 10);
	ASSERT_EQ(count_files("base.real/out/d/f", 10), 8);
	ASSERT_EQ(st.files, 2);
	ASSERT_EQ(st.skipped, 1); /* the walk left the swapped chain */
	ASSERT_EQ(st.errors, 1);  /* the next pass cannot open the folder */
	fix_end(c, u);
}

/* A directory the walk is in is moved out of the folder: left alone. */
static void
test_dir_moved_out_mid_walk(void)
{
	struct clean_stats st = { 0 };
	struct inuse	  *u = fix_begin();
	struct clean	  *c;
	char		   spec[PATH_MAX + 16];

	dir("out");
	dir("out/d");
	files("out/d/f", 10, 2 * DAY);
	file("out/old", 1, 2 * DAY);
	dir("away");
	snprintf(spec, sizeof spec, "output=%s", tpath("out"));
	c = clean_of(spec);
	do /* until the walk is inside d with two files of it gone */
		ASSERT_EQ(clean_step(c, ages, u, 1, &st), 0);
	while (count_files("out/d/f", 10) > 8);
	ASSERT_EQ(rename(tpath("out/d"), tpath("away/d")), 0);
	clean_pass(c, u, 3, &st);
	ASSERT_EQ(count_files("away/d/f", 10), 8);
	ASSERT_TRUE(!exists("out/old")); /* the rest of the folder is done */
	ASSERT_EQ(st.skipped, 1);
	ASSERT_EQ(st.errors, 0);
	fix_end(c, u);
}

/* clean_new(spec) must fail with exactly want. */
static void
refused(const char *spec, const char *want)
{
	char	      err[512];
	struct clean *c;

	c = clean_new(spec, err, sizeof err);
	ASSERT_TRUE(c == NULL);
	ASSERT_STREQ(err, want);
}

static void
test_bad_folders_refused(void)
{
	char s[1024], w[2048];

	tmp_make();
	dir("out");
	file("plain", 1, 0);
	ASSERT_EQ(symlink(tpath("out"), tpath("link")), 0);
	refused("output=/", "'/' is the root directory");
	refused("output=//", "'/' is the root directory");
	snprintf(s, sizeof s, "output=%s/out/../../../../../../../..", tmp);
	snprintf(w, sizeof w, "'%s' is the root directory", s + 7);
	refused(s, w);
	snprintf(s, sizeof s, "temp=%s/", tpath("link"));
	snprintf(w, sizeof w, "'%s' is a symlink; name the folder itself",
	    tpath("link"));
	refused(s, w);
	snprintf(s, sizeof s, "input=%s", tpath("plain"));
	snprintf(w, sizeof w, "'%s' is not a directory", tpath("plain"));
	refused(s, w);
	snprintf(s, sizeof s, "input=%s", tpath("none"));
	snprintf(w, sizeof w, "'%s': No such file or directory", tpath("none"));
	refused(s, w);
	refused("input=out", "'out' is not an absolute path");
	refused("input=", "'' is not an absolute path");
	snprintf(s, sizeof s, "models=%s", tpath("out"));
	snprintf(w, sizeof w,
	    "'%s': expected KIND=PATH, KIND one of output, temp, input", s);
	refused(s, w);
	snprintf(s, sizeof s, "output=%s,temp=%s/", tpath("out"), tpath("out"));
	snprintf(w, sizeof w, "'%s' is named twice", tpath("out"));
	refused(s, w);
	refused(" , ", "no folder named");
	tmp_remove();
}

static void
test_inuse_matching(void)
{
	struct inuse *u = inuse_new();
	redisReply    e[5], *el[5], r;
	char	      err[256], jid[] = "J9", files[] = "[\"output/a.png\"]";

	inuse_add_job(u, "J1");
	inuse_add_job(u, "abc");
	ASSERT_EQ(inuse_add_files(
		      u, "[\"input/x/y.png\",\"temp/z\"]", err, sizeof err),
	    0);
	ASSERT_EQ(inuse_add_files(u, "{\"no\":1}", err, sizeof err), -1);
	inuse_seal(u);
	ASSERT_EQ(inuse_jobs(u), 2);
	ASSERT_EQ(inuse_has(u, "output", "comfyq/J1"), 1);
	ASSERT_EQ(inuse_has(u, "temp", "comfyq/J1/a/b.png"), 1);
	ASSERT_EQ(inuse_has(u, "output", "comfyq/J10/x.png"), 0);
	ASSERT_EQ(inuse_has(u, "output", "comfyq/J"), 0);
	ASSERT_EQ(inuse_has(u, "output", "J1/x.png"), 0);
	ASSERT_EQ(inuse_has(u, "output", "comfyq"), 0);
	ASSERT_EQ(inuse_has(u, "input", "x/y.png"), 1);
	ASSERT_EQ(inuse_has(u, "output", "x/y.png"), 0);
	ASSERT_EQ(inuse_has(u, "temp", "z"), 1);

	/* A truncated active_files reply is refused: it proves nothing. */
	memset(e, 0, sizeof e);
	e[0].type = REDIS_REPLY_INTEGER;
	e[0].integer = 1;
	el[0] = &e[0];
	memset(&r, 0, sizeof r);
	r.type = REDIS_REPLY_ARRAY;
	r.elements = 1;
	r.element = el;
	ASSERT_EQ(inuse_load(u, &r, err, sizeof err), -1);
	ASSERT_STREQ(err, "active_files: more active jobs than the list holds");
	e[0].integer = 0;
	e[1].type = e[2].type = REDIS_REPLY_STRING;
	e[1].str = jid;
	e[2].str = files;
	el[1] = &e[1];
	el[2] = &e[2];
	r.elements = 3;
	ASSERT_EQ(inuse_load(u, &r, err, sizeof err), 0);
	ASSERT_EQ(inuse_jobs(u), 1);
	ASSERT_EQ(inuse_has(u, "output", "comfyq/J9/x"), 1);
	ASSERT_EQ(inuse_has(u, "output", "a.png"), 1);
	ASSERT_EQ(inuse_has(u, "output", "comfyq/J1/x"), 0);
	inuse_free(u);
}

const struct unit_test test_clean[] = {
	{ "old_files_go_exactly", test_old_files_go_exactly },
	{ "ages_per_kind", test_ages_per_kind },
	{ "bounded_steps", test_bounded_steps },
	{ "root_swapped_for_symlink", test_root_swapped_for_symlink },
	{ "parent_swapped_mid_walk", test_parent_swapped_mid_walk },
	{ "dir_moved_out_mid_walk", test_dir_moved_out_mid_walk },
	{ "bad_folders_refused", test_bad_folders_refused },
	{ "inuse_matching", test_inuse_matching },
	{ NULL, NULL },
};
