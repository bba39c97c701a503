/*
 * The worker's pure parts: ComfyUI failures to error codes, the outputs of
 * a history entry, output validation and storage, graph rendering.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "errmap.h"
#include "jscan.h"
#include "outputs.h"
#include "outputs_sync.h"
#include "run_int.h"
#include "tpool.h"
#include "timg.h"
#include "unit.h"
#include "util.h"
#include "xmalloc.h"

/* out_file fields are filled with literals below. */
#pragma GCC diagnostic ignored "-Wdiscarded-qualifiers"

static enum errcode
refused(const char *file, long status, char *msg, size_t len)
{
	char	     err[256], *text;
	size_t	     n;
	enum errcode c;

	text = file_slurp(unit_data(file), 1 << 20, &n, err, sizeof err);
	c = errmap_prompt_refused(status, text, n, msg, len);
	free(text);
	return (c);
}

static void
test_prompt_refusals(void)
{
	char msg[512];

	ASSERT_EQ(refused("comfy/prompt_400_model.json", 400, msg, sizeof msg),
	    EC_WORKFLOW_ERROR);
	ASSERT_STREQ(msg,
	    "node 1 (CheckpointLoaderSimple): value_not_in_list:"
	    " ckpt_name: 'sd_xl_base_1.0.safetensors' not in []");
	ASSERT_EQ(refused("comfy/prompt_400_min.json", 400, msg, sizeof msg),
	    EC_INVALID_INPUT);
	ASSERT_STREQ(msg, "node 1 (EmptyImage): value_smaller_than_min: width");
	ASSERT_EQ(
	    refused("comfy/prompt_400_invalid.json", 400, msg, sizeof msg),
	    EC_WORKFLOW_ERROR);
	ASSERT_STREQ(msg,
	    "ComfyUI refused the prompt: invalid_prompt: Cannot "
	    "execute because node Foo does not exist.: Node ID '#1'");
	ASSERT_EQ(errmap_prompt_refused(
		      500, "500 Internal Server Error", 25, msg, sizeof msg),
	    EC_BACKEND_UNAVAILABLE);
	ASSERT_STREQ(msg, "ComfyUI answered POST /prompt with HTTP 500");
	ASSERT_EQ(errmap_prompt_refused(400, "not json", 8, msg, sizeof msg),
	    EC_WORKFLOW_ERROR);
}

static enum errcode
exec_error(
    const char *node, const char *type, const char *text, char *msg, size_t len)
{
	cJSON	    *d = cJSON_CreateObject();
	enum errcode c;

	cJSON_AddStringToObject(d, "node_id", "7");
	cJSON_AddStringToObject(d, "node_type", node);
	cJSON_AddStringToObject(d, "exception_type", type);
	cJSON_AddStringToObject(d, "exception_message", text);
	c = errmap_execution_error(d, msg, len);
	cJSON_Delete(d);
	return (c);
}

static void
test_execution_errors(void)
{
	char msg[512];

	ASSERT_EQ(
	    exec_error("KSampler", "torch.OutOfMemoryError",
		"Allocation on device\nThis error means you ran out of memory",
		msg, sizeof msg),
	    EC_OOM);
	ASSERT_STREQ(msg,
	    "KSampler (node 7): torch.OutOfMemoryError: "
	    "Allocation on device");
	ASSERT_EQ(exec_error("KSampler", "torch.cuda.OutOfMemoryError", "x",
		      msg, sizeof msg),
	    EC_OOM);
	ASSERT_EQ(exec_error("VAEDecode", "RuntimeError",
		      "CUDA error: an "
		      "illegal memory access was encountered",
		      msg, sizeof msg),
	    EC_GPU_FAULT);
	ASSERT_EQ(exec_error("KSampler", "RuntimeError",
		      "CUDA error: "
		      "device-side assert triggered",
		      msg, sizeof msg),
	    EC_GPU_FAULT);
	ASSERT_EQ(exec_error("IPAdapterFaceID", "Exception",
		      "InsightFace: No "
		      "face detected.",
		      msg, sizeof msg),
	    EC_NO_FACE);
	ASSERT_EQ(exec_error("LoadImage", "PIL.UnidentifiedImageError",
		      "cannot identify image file", msg, sizeof msg),
	    EC_INVALID_INPUT);
	ASSERT_EQ(exec_error("SaveImage", "Exception",
		      "Saving image outside "
		      "the output folder is not allowed.",
		      msg, sizeof msg),
	    EC_WORKFLOW_ERROR);
	ASSERT_EQ(errcode_retryable(EC_OOM), 1);
	ASSERT_EQ(errcode_retryable(EC_NO_FACE), 0);
	ASSERT_EQ(errcode_retryable(EC_BACKEND_UNAVAILABLE), 1);
	ASSERT_EQ(errcode_retryable(EC_TIMEOUT), 0);
}

static void
test_collect_outputs(void)
{
	cJSON	       *h = unit_json("comfy/history_success.json");
	struct out_list l;
	char		err[128];

	ASSERT_EQ(
	    outputs_collect(cJSON_GetObjectItem(h, "p1"), &l, err, sizeof err),
	    5);
	ASSERT_STREQ(l.v[0].filename, "out_00001_.png");
	ASSERT_STREQ(l.v[0].subfolder, "comfyq/j1/a1");
	ASSERT_STREQ(l.v[0].node, "9");
	ASSERT_STREQ(l.v[1].filename, "out_00002_.png");
	ASSERT_STREQ(l.v[2].key, "gifs");
	ASSERT_STREQ(l.v[2].format, "video/h264-mp4");
	ASSERT_STREQ(output_mime(&l.v[2]), "video/mp4");
	ASSERT_EQ(l.v[3].animated, 1);
	ASSERT_STREQ(output_mime(&l.v[3]), "image/webp");
	ASSERT_STREQ(l.v[4].key, "audio");
	outputs_free(&l);
	cJSON_Delete(h);
	/* Only previews: they are what the graph delivered. */
	h = unit_json("comfy/history_temp_only.json");
	ASSERT_EQ(
	    outputs_collect(cJSON_GetObjectItem(h, "p2"), &l, err, sizeof err),
	    1);
	ASSERT_STREQ(l.v[0].type, "temp");
	outputs_free(&l);
	cJSON_Delete(h);
}

/* Collects node 9's files: names[0] in names[1], names[2] in names[3]... */
static int
collect_names(
    const char *const *names, struct out_list *l, char *err, size_t len)
{
	cJSON *e = cJSON_CreateObject(), *images, *f;
	int    n;

	images = cJSON_AddArrayToObject(
	    cJSON_AddObjectToObject(cJSON_AddObjectToObject(e, "outputs"), "9"),
	    "images");
	for (; *names != NULL; names += 2) {
		f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "filename", names[0]);
		cJSON_AddStringToObject(f, "subfolder", names[1]);
		cJSON_AddItemToArray(images, f);
	}
	n = outputs_collect(e, l, err, len);
	cJSON_Delete(e);
	return (n);
}

/* One file: its count (1) or -1, with err. */
static int
collect_one(const char *file, const char *sub, char *err, size_t len)
{
	const char     *names[] = { file, sub, NULL };
	struct out_list l;
	int		n = collect_names(names, &l, err, len);

	outputs_free(&l);
	return (n);
}

/* Names from the history: unique on disk, confined, or refused. */
static void
test_output_names(void)
{
	static const char *const same[] = { "x.png", "a", "x.png", "b", "x.png",
		"c", "x-2.png", "", "noext", "", "noext", "d", NULL };
	static const char *const bad_second[] = { "x.png", "", "x.png",
		"a\x7f"
		"b",
		NULL };
	struct out_list		 l;
	char			 err[512], name[260];

	ASSERT_EQ(collect_names(same, &l, err, sizeof err), 6);
	ASSERT_STREQ(l.v[0].stored, "x.png");
	ASSERT_STREQ(l.v[1].stored, "x-2.png");
	ASSERT_STREQ(l.v[2].stored, "x-3.png");
	ASSERT_STREQ(l.v[3].stored, "x-2-2.png");
	ASSERT_STREQ(l.v[4].stored, "noext");
	ASSERT_STREQ(l.v[5].stored, "noext-2");
	ASSERT_STREQ(l.v[1].subfolder, "b");
	outputs_free(&l);
	ASSERT_EQ(
	    collect_one("\xc3\xa9t\xc3\xa9.png", "x/..y/z.", err, sizeof err),
	    1);
	ASSERT_EQ(collect_one("x\n.png", "", err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "node 9: file name \"x\\x0a.png\" has a control character "
	    "(0x0a)");
	ASSERT_EQ(collect_names(bad_second, &l, err, sizeof err), -1);
	ASSERT_EQ(l.n, 0);
	ASSERT_STREQ(err,
	    "node 9: subfolder \"a\\x7fb\" has a control character (0x7f)");
	ASSERT_EQ(collect_one("a/x.png", "", err, sizeof err), -1);
	ASSERT_STREQ(err, "node 9: file name \"a/x.png\" has a '/'");
	ASSERT_EQ(collect_one("..", "", err, sizeof err), -1);
	ASSERT_STREQ(err, "node 9: file name \"..\" starts with '.'");
	ASSERT_EQ(collect_one("", "", err, sizeof err), -1);
	ASSERT_STREQ(err, "node 9: a file name is empty");
	ASSERT_EQ(collect_one("x.png", "a/../../etc", err, sizeof err), -1);
	ASSERT_STREQ(
	    err, "node 9: subfolder \"a/../../etc\" has a '..' component");
	ASSERT_EQ(collect_one("x.png", "/etc", err, sizeof err), -1);
	ASSERT_STREQ(err, "node 9: subfolder \"/etc\" starts with '/'");
	ASSERT_EQ(collect_one("x\\y.png", "", err, sizeof err), -1);
	ASSERT_STREQ(err, "node 9: file name \"x\\x5cy.png\" has a backslash");
	ASSERT_EQ(collect_one("x\xff.png", "", err, sizeof err), -1);
	ASSERT_STREQ(err, "node 9: file name \"x\\xff.png\" is not UTF-8");
	ASSERT_EQ(collect_one("x\xc0\xaf.png", "", err, sizeof err), -1);
	ASSERT_STREQ(err, "node 9: file name \"x\\xc0\\xaf.png\" is not UTF-8");
	memset(name, 'a', 201);
	name[201] = '\0';
	ASSERT_EQ(collect_one(name, "", err, sizeof err), -1);
	ASSERT_TRUE(strstr(err, "...\" is over 200 bytes") != NULL);
}

static void
test_validate_outputs(void)
{
	struct out_file	  f = { "9", "images", "x.png", "", "output", NULL, 0,
		  "x.png" };
	struct out_expect ex = { 64, 48, 0, 0, 0 };
	unsigned char	 *png, *flat, *mp4;
	cJSON		 *rec;
	char		  err[256];
	int		  len, flen;

	png = timg_png(64, 48, TIMG_GRADIENT, &len);
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, png, (size_t)len, &ex, rec, err, sizeof err),
	    0);
	ASSERT_EQ(cJSON_GetObjectItem(rec, "width")->valueint, 64);
	ASSERT_EQ(cJSON_GetObjectItem(rec, "height")->valueint, 48);
	ASSERT_EQ(cJSON_GetObjectItem(rec, "bytes")->valueint, len);
	ASSERT_STREQ(
	    cJSON_GetObjectItem(rec, "mime")->valuestring, "image/png");
	cJSON_Delete(rec);
	/* Wrong size. */
	ex.width = 128;
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, png, (size_t)len, &ex, rec, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "image is 64x48, 128x48 was asked for");
	cJSON_Delete(rec);
	ex.width = 64;
	/* Truncated. */
	rec = cJSON_CreateObject();
	ASSERT_EQ(output_validate(
		      &f, png, (size_t)len / 2, &ex, rec, err, sizeof err),
	    -1);
	ASSERT_TRUE(strncmp(err, "image does not decode", 21) == 0);
	cJSON_Delete(rec);
	/* Black, unless blank frames are allowed. */
	flat = timg_png(64, 48, 0, &flen);
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, flat, (size_t)flen, &ex, rec, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "image is blank (black)");
	cJSON_Delete(rec);
	/* Over the pixel cap: refused from the header, nothing decoded. */
	ex.max_pixels = 64 * 48 - 1;
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, png, (size_t)len, &ex, rec, err, sizeof err),
	    -1);
	ASSERT_STREQ(err,
	    "image declares 64x48 (3072 pixels), over max-output-pixels "
	    "(3071)");
	cJSON_Delete(rec);
	/* A header that claims 16384x16384 is all it takes. */
	ex.max_pixels = 67108864;
	memcpy(flat + 16, "\0\0\x40\0\0\0\x40\0", 8);
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, flat, (size_t)flen, &ex, rec, err, sizeof err),
	    -1);
	ASSERT_STREQ(err,
	    "image declares 16384x16384 (268435456 pixels), over "
	    "max-output-pixels (67108864)");
	cJSON_Delete(rec);
	ex.max_pixels = 0;
	free(flat);
	flat = timg_png(64, 48, 0, &flen);
	ex.allow_blank = 1;
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, flat, (size_t)flen, &ex, rec, err, sizeof err),
	    0);
	cJSON_Delete(rec);
	/* A video: magic and size floors (10 KB, 50 KB per second). */
	f.filename = "v.mp4";
	ex.duration_s = 2;
	mp4 = calloc(1, 200000);
	memcpy(mp4 + 4, "ftypisom", 8);
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, mp4, 99999, &ex, rec, err, sizeof err), -1);
	ASSERT_STREQ(
	    err, "video of 99999 bytes is under the 102400 byte floor");
	cJSON_Delete(rec);
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, mp4, 102400, &ex, rec, err, sizeof err), 0);
	ASSERT_STREQ(
	    cJSON_GetObjectItem(rec, "mime")->valuestring, "video/mp4");
	cJSON_Delete(rec);
	rec = cJSON_CreateObject();
	ASSERT_EQ(
	    output_validate(&f, mp4 + 8, 102400, &ex, rec, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "video has no MP4 or WebM header");
	cJSON_Delete(rec);
	free(mp4);
	free(png);
	free(flat);
}

static void
test_store_dir(void)
{
	struct out_file f = { "9", "images", "out_00001_.png", "sub", "output",
		NULL, 0, "out_00001_.png" };
	struct out_expect ex = { 0, 0, 0, 1, 0 };
	struct out_tmp	  t;
	char		  dir[] = "/tmp/comfyq-out-XXXXXX", path[512], err[256];
	cJSON		 *rec = cJSON_CreateObject();
	struct stat	  st;
	unsigned char	 *png;
	int		  len;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	ASSERT_EQ(
	    output_store_dir(dir, "jid1", &f, 0, (const unsigned char *)"hello",
		5, NULL, rec, err, sizeof err),
	    0);
	snprintf(path, sizeof path, "%s/jid1/out_00001_.png", dir);
	ASSERT_STREQ(cJSON_GetObjectItem(rec, "path")->valuestring, path);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_size, 5);
	cJSON_Delete(rec);
	unlink(path);
	/* Streamed: a hidden temporary file, validated where it lies. */
	f.stored = "x-2.png";
	output_tmp_init(&t);
	ASSERT_EQ(output_tmp_open(&t, dir, "jid1", &f, 3, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/jid1/.tmp-3-%d", dir, (int)getpid());
	ASSERT_STREQ(t.tmp, path);
	png = timg_png(32, 16, TIMG_GRADIENT, &len);
	ASSERT_EQ(write(t.fd, png, (size_t)len), len);
	rec = cJSON_CreateObject();
	ASSERT_EQ(output_tmp_validate(&t, &f, &ex, rec, err, sizeof err), 0);
	ASSERT_EQ(cJSON_GetObjectItem(rec, "width")->valueint, 32);
	ASSERT_EQ(cJSON_GetObjectItem(rec, "bytes")->valueint, len);
	ASSERT_EQ(output_tmp_commit(&t, rec, err, sizeof err), 0);
	ASSERT_EQ(t.fd, -1);
	ASSERT_TRUE(stat(path, &st) == -1);
	snprintf(path, sizeof path, "%s/jid1/x-2.png", dir);
	ASSERT_STREQ(cJSON_GetObjectItem(rec, "path")->valuestring, path);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_size, len);
	cJSON_Delete(rec);
	unlink(path);
	/* A file that fails is discarded. */
	ASSERT_EQ(output_tmp_open(&t, dir, "jid1", &f, 4, err, sizeof err), 0);
	ASSERT_EQ(write(t.fd, png, (size_t)len / 2), len / 2);
	rec = cJSON_CreateObject();
	ASSERT_EQ(output_tmp_validate(&t, &f, &ex, rec, err, sizeof err), -1);
	output_tmp_discard(&t);
	output_tmp_discard(&t);
	cJSON_Delete(rec);
	free(png);
	snprintf(path, sizeof path, "%s/jid1", dir);
	ASSERT_EQ(rmdir(path), 0); /* nothing was left behind */
	rmdir(dir);
}

struct sync_wait {
	int  done;
	char err[512];
};

static void
sync_cb(void *arg, const char *err)
{
	struct sync_wait *w = arg;

	w->done++;
	snprintf(w->err, sizeof w->err, "%s", err != NULL ? err : "");
}

/* Runs the loop until the batch's callback has come. */
static void
sync_run(struct event_base *base, struct sync_wait *w)
{
	long long start = clock_mono_ms();

	while (w->done == 0 && clock_mono_ms() - start < 10000)
		event_base_loop(base, EVLOOP_ONCE);
	ASSERT_EQ(w->done, 1);
}

/* A file of n bytes written to a temporary file of the job, into s. */
static void
sync_put(struct out_sync *s, const char *dir, const char *name, int index,
    size_t n, cJSON *rec)
{
	struct out_file f = { "9", "images", "x.png", "", "output", NULL, 0,
		(char *)name };
	struct out_tmp	t;
	char		err[256], buf[4096];

	memset(buf, 'a' + index, sizeof buf);
	output_tmp_init(&t);
	ASSERT_EQ(
	    output_tmp_open(&t, dir, "jid2", &f, index, err, sizeof err), 0);
	ASSERT_EQ(write(t.fd, buf, n), (ssize_t)n);
	out_sync_add(s, &t, rec);
	ASSERT_EQ(t.fd, -1);
}

/* Counts the hidden temporary files left in <dir>/jid2/. */
static int
sync_tmp_left(const char *dir)
{
	char  cmd[600], line[64];
	FILE *p;

	snprintf(cmd, sizeof cmd, "ls -A '%s/jid2' | grep -c '^\\.tmp-'", dir);
	ASSERT_TRUE((p = popen(cmd, "r")) != NULL);
	ASSERT_TRUE(fgets(line, sizeof line, p) != NULL);
	pclose(p);
	return (atoi(line));
}

/*
 * output-fsync's batch: files reach their names only on the pool's
 * thread, flushed, and the callback comes on the loop once they are
 * there; a failure (here a rename onto a directory) names the file, and
 * the files after it are removed; a batch freed unstarted leaves nothing.
 */
static void
test_store_sync(void)
{
	struct event_base *base = event_base_new();
	struct tpool	  *pool = tpool_new(base, OUT_SYNC_THREADS);
	struct sync_wait   w = { 0, "" };
	struct out_sync	  *s;
	struct stat	   st;
	char		   dir[] = "/tmp/comfyq-sync-XXXXXX", path[512];
	cJSON *r0 = cJSON_CreateObject(), *r1 = cJSON_CreateObject();

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	s = out_sync_new(dir, "jid2");
	sync_put(s, dir, "a.png", 0, 100, r0);
	sync_put(s, dir, "b.png", 1, 4096, r1);
	ASSERT_EQ(out_sync_count(s), 2);
	snprintf(path, sizeof path, "%s/jid2/a.png", dir);
	ASSERT_STREQ(cJSON_GetObjectItem(r0, "path")->valuestring, path);
	ASSERT_TRUE(stat(path, &st) == -1); /* not before the batch ran */
	ASSERT_EQ(out_sync_start(s, pool, sync_cb, &w), 0);
	sync_run(base, &w);
	ASSERT_STREQ(w.err, "");
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_size, 100);
	snprintf(path, sizeof path, "%s/jid2/b.png", dir);
	ASSERT_STREQ(cJSON_GetObjectItem(r1, "path")->valuestring, path);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_size, 4096);
	ASSERT_EQ(sync_tmp_left(dir), 0);

	/* c.png cannot be renamed onto a folder that holds a file. */
	snprintf(path, sizeof path, "%s/jid2/c.png", dir);
	ASSERT_EQ(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/jid2/c.png/keep", dir);
	fclose(fopen(path, "w"));
	w.done = 0;
	s = out_sync_new(dir, "jid2");
	sync_put(s, dir, "c.png", 2, 10, r0);
	sync_put(s, dir, "d.png", 3, 10, r1);
	ASSERT_EQ(out_sync_start(s, pool, sync_cb, &w), 0);
	sync_run(base, &w);
	snprintf(path, sizeof path, "%s/jid2/c.png: rename: ", dir);
	ASSERT_TRUE(strncmp(w.err, path, strlen(path)) == 0);
	snprintf(path, sizeof path, "%s/jid2/d.png", dir);
	ASSERT_TRUE(stat(path, &st) == -1);
	ASSERT_EQ(sync_tmp_left(dir), 0);

	/* Freed before it started: its temporary files go. */
	s = out_sync_new(dir, "jid2");
	sync_put(s, dir, "e.png", 4, 10, r0);
	ASSERT_EQ(sync_tmp_left(dir), 1);
	out_sync_free(s);
	ASSERT_EQ(sync_tmp_left(dir), 0);

	tpool_free(pool);
	event_base_free(base);
	cJSON_Delete(r0);
	cJSON_Delete(r1);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	ASSERT_EQ(system(path), 0);
}

/*
 * A /history reply's entry read without its "prompt": the same entry as a
 * whole parse gives, less that member; none for another prompt; a reply
 * the scan cannot follow (nesting past its bound) parsed whole; a broken
 * one gives none. jscan's members as spans of the text.
 */
static void
test_history_parse(void)
{
	struct jscan_member m;
	char		    err[256], *text, *deep;
	cJSON		   *e, *full;
	size_t		    n, i;

	text = file_slurp(unit_data("comfy/history_success.json"), 1 << 20, &n,
	    err, sizeof err);
	ASSERT_TRUE(text != NULL);
	e = run_history_parse(text, n, "p1");
	ASSERT_TRUE(e != NULL);
	full = cJSON_ParseWithLength(text, n);
	cJSON_DeleteItemFromObjectCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(full, "p1"), "prompt");
	ASSERT_TRUE(cJSON_GetObjectItemCaseSensitive(e, "prompt") == NULL);
	ASSERT_TRUE(cJSON_GetObjectItemCaseSensitive(e, "outputs") != NULL);
	ASSERT_TRUE(
	    cJSON_Compare(e, cJSON_GetObjectItemCaseSensitive(full, "p1"), 1));
	cJSON_Delete(e);
	cJSON_Delete(full);
	ASSERT_TRUE(run_history_parse(text, n, "p2") == NULL);
	free(text);
	ASSERT_TRUE(run_history_parse("{}", 2, "p1") == NULL);
	ASSERT_TRUE(run_history_parse("{\"p1\": \"x\"}", 13, "p1") == NULL);
	ASSERT_TRUE(
	    run_history_parse("{\"p1\": {\"a\": [1}}", 18, "p1") == NULL);
	/* Nested deeper than the scan follows: parsed whole. */
	deep = xmalloc(1000);
	n = (size_t)snprintf(deep, 1000, "{\"p1\": {\"prompt\": ");
	for (i = 0; i < 300; i++)
		deep[n++] = '[';
	for (i = 0; i < 300; i++)
		deep[n++] = ']';
	n += (size_t)snprintf(deep + n, 1000 - n, ", \"outputs\": {}}}");
	e = run_history_parse(deep, n, "p1");
	ASSERT_TRUE(cJSON_IsObject(cJSON_GetObjectItem(e, "outputs")));
	ASSERT_TRUE(cJSON_GetObjectItem(e, "prompt") != NULL);
	cJSON_Delete(e);
	free(deep);
	/* A socket message's type, read without parsing it. */
	text = "{\"data\": {\"x\": [1, {\"type\": 2}], \"s\": \"a\\\"}\"},"
	       " \"type\": \"executed\"}";
	ASSERT_EQ(jscan_find(text, strlen(text), "type", &m), 1);
	ASSERT_EQ(m.vend - m.val, 10);
	ASSERT_TRUE(strncmp(m.val, "\"executed\"", 10) == 0);
	ASSERT_EQ(jscan_find(text, strlen(text), "nope", &m), 0);
	ASSERT_EQ(jscan_find("[1]", 3, "type", &m), -1);
	ASSERT_EQ(jscan_find("{\"type\" 1}", 10, "type", &m), -1);
}

const struct unit_test test_worker[] = {
	{ "prompt_refusals", test_prompt_refusals },
	{ "execution_errors", test_execution_errors },
	{ "collect_outputs", test_collect_outputs },
	{ "output_names", test_output_names },
	{ "validate_outputs", test_validate_outputs },
	{ "store_dir", test_store_dir },
	{ "store_sync", test_store_sync },
	{ "history_parse", test_history_parse },
	{ NULL, NULL },
};
