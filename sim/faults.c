/*
 * Fault injection, set by --faults (JSON) at start and by POST /sim/faults
 * at run time (GET shows the table and counters). A fault fires on its
 * nth event after it was set, or with probability p on each event (drawn
 * from one PRNG seeded by --fault-seed or "seed", so a run repeats), or on
 * every event when neither is given; "times" caps how often. The events:
 * a prompt starting to run (crash, hang, oom, execution_error, no_face,
 * ws_drop, silence, black_image, truncated_png, tiny_video, huge_png,
 * same_name), a POST
 * /prompt (prompt_500), a GET /view (slow_view). Every fault is drawn for
 * every event of its kind, in a fixed order, so the random sequence does
 * not depend on which faults fired before.
 *
 *   {"seed": 7, "reset": true,
 *    "oom": {"nth": 2}, "hang": {"p": 0.1, "node": "KSampler"},
 *    "execution_error": {"node": "9", "exception_type": "RuntimeError",
 *                        "message": "boom"},
 *    "slow_view": {"ms": 3000}, "crash": null}
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "log.h"
#include "sim.h"
#include "xmalloc.h"

struct fault {
	int	  set;
	double	  p;   /* < 0: not used */
	long long nth; /* 0: not used */
	long long times;
	long long seen;
	long long fired;
	char	  node[128];
	char	  type[128];
	char	  message[512];
	char	  name[256];
	long long ms;
	long long step;
};

static const char *const fault_names[FX_N] = {
	[FX_CRASH] = "crash",
	[FX_HANG] = "hang",
	[FX_OOM] = "oom",
	[FX_ERROR] = "execution_error",
	[FX_NO_FACE] = "no_face",
	[FX_WS_DROP] = "ws_drop",
	[FX_SILENCE] = "silence",
	[FX_BLACK] = "black_image",
	[FX_TRUNCATED] = "truncated_png",
	[FX_TINY] = "tiny_video",
	[FX_HUGE] = "huge_png",
	[FX_SAME_NAME] = "same_name",
	[FX_PROMPT_500] = "prompt_500",
	[FX_VIEW_SLOW] = "slow_view",
};

static struct fault faults[FX_N];
static uint64_t	    rng = 1;
static long long    seed = 1;

static double
fault_rand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (
	    (double)((rng * 0x2545f4914f6cdd1dULL) >> 11) / 9007199254740992.0);
}

static void
fault_seed(long long s)
{
	seed = s;
	rng = (uint64_t)s * 0x9e3779b97f4a7c15ULL;
	if (rng == 0)
		rng = 0x9e3779b97f4a7c15ULL;
}

/* One event of fault k's kind: does it fire? */
static int
fault_roll(int k)
{
	struct fault *f = &faults[k];
	double	      r;
	int	      fire;

	if (!f->set)
		return (0);
	f->seen++;
	r = f->p >= 0 ? fault_rand() : 0;
	if (f->nth > 0)
		fire = f->seen == f->nth;
	else
		fire = f->p < 0 || r < f->p;
	if (fire && f->times > 0 && f->fired >= f->times)
		fire = 0;
	if (fire) {
		f->fired++;
		log_notice(
		    "fault: %s fires (event %lld)", fault_names[k], f->seen);
	}
	return (fire);
}

static int
fault_num(const cJSON *spec, const char *key, double lo, double hi, int whole,
    double *out, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, key);

	if (v == NULL)
		return (0);
	if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
	    (whole && v->valuedouble != floor(v->valuedouble))) {
		snprintf(err, errlen, "%s.%s: must be %s in %g..%g",
		    spec->string, key, whole ? "a whole number" : "a number",
		    lo, hi);
		return (-1);
	}
	*out = v->valuedouble;
	return (1);
}

static int
fault_str(const cJSON *spec, const char *key, char *out, size_t outlen,
    char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, key);

	if (v == NULL)
		return (0);
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= outlen) {
		snprintf(err, errlen, "%s.%s: must be a string under %zu bytes",
		    spec->string, key, outlen);
		return (-1);
	}
	snprintf(out, outlen, "%s", v->valuestring);
	return (1);
}

/* Parses one fault's spec into f. */
static int
fault_parse(const cJSON *spec, struct fault *f, char *err, size_t errlen)
{
	static const char *const keys[] = { "p", "nth", "times", "node",
		"exception_type", "message", "name", "ms", "step", NULL };
	const cJSON		*it;
	double			 d = 0;
	size_t			 i;
	int			 rc;

	memset(f, 0, sizeof *f);
	f->p = -1;
	f->step = 1;
	f->ms = 2000;
	snprintf(f->type, sizeof f->type, "RuntimeError");
	snprintf(f->message, sizeof f->message, "simulated failure");
	snprintf(f->name, sizeof f->name, "x.png");
	if (cJSON_IsNull(spec) || cJSON_IsFalse(spec))
		return (0);
	if (!cJSON_IsObject(spec) && !cJSON_IsTrue(spec)) {
		snprintf(err, errlen, "%s: must be an object, true or null",
		    spec->string);
		return (-1);
	}
	cJSON_ArrayForEach(it, spec) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(it->string, keys[i]) == 0)
				break;
		if (keys[i] == NULL) {
			snprintf(err, errlen, "%s: unknown field '%s'",
			    spec->string, it->string);
			return (-1);
		}
	}
	f->set = 1;
	if (fault_num(spec, "p", 0, 1, 0, &f->p, err, errlen) == -1 ||
	    fault_num(spec, "nth", 1, 1e12, 1, &d, err, errlen) == -1)
		return (-1);
	f->nth =
	    cJSON_GetObjectItemCaseSensitive(spec, "nth") ? (long long)d : 0;
	if (f->nth > 0 && f->p >= 0) {
		snprintf(
		    err, errlen, "%s: give p or nth, not both", spec->string);
		return (-1);
	}
	if ((rc = fault_num(spec, "times", 0, 1e12, 1, &d, err, errlen)) == -1)
		return (-1);
	f->times = rc ? (long long)d : 0;
	if ((rc = fault_num(spec, "ms", 0, 600000, 1, &d, err, errlen)) == -1)
		return (-1);
	if (rc)
		f->ms = (long long)d;
	if ((rc = fault_num(spec, "step", 1, 10000, 1, &d, err, errlen)) == -1)
		return (-1);
	if (rc)
		f->step = (long long)d;
	if (fault_str(spec, "node", f->node, sizeof f->node, err, errlen) ==
		-1 ||
	    fault_str(spec, "exception_type", f->type, sizeof f->type, err,
		errlen) == -1 ||
	    fault_str(spec, "message", f->message, sizeof f->message, err,
		errlen) == -1 ||
	    fault_str(spec, "name", f->name, sizeof f->name, err, errlen) == -1)
		return (-1);
	return (0);
}

/* Applies a settings object; nothing changes when it has an error. */
static int
faults_apply(const cJSON *j, char *err, size_t errlen)
{
	struct fault next[FX_N];
	const cJSON *it, *s;
	int	     k, reset = 0;
	long long    newseed = -1;

	if (!cJSON_IsObject(j)) {
		snprintf(err, errlen, "the body must be a JSON object");
		return (-1);
	}
	memcpy(next, faults, sizeof next);
	cJSON_ArrayForEach(it, j) {
		if (strcmp(it->string, "reset") == 0) {
			reset = cJSON_IsTrue(it);
			continue;
		}
		if (strcmp(it->string, "seed") == 0) {
			if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
			    it->valuedouble != floor(it->valuedouble)) {
				snprintf(err, errlen,
				    "seed: must be a whole number >= 0");
				return (-1);
			}
			newseed = (long long)it->valuedouble;
			continue;
		}
		for (k = 0; k < FX_N; k++)
			if (strcmp(it->string, fault_names[k]) == 0)
				break;
		if (k == FX_N) {
			snprintf(err, errlen, "unknown fault '%s'", it->string);
			return (-1);
		}
	}
	if (reset)
		memset(next, 0, sizeof next);
	for (k = 0; k < FX_N; k++) {
		if ((s = cJSON_GetObjectItemCaseSensitive(j, fault_names[k])) ==
		    NULL)
			continue;
		if (fault_parse(s, &next[k], err, errlen) == -1)
			return (-1);
	}
	memcpy(faults, next, sizeof faults);
	if (newseed >= 0)
		fault_seed(newseed);
	return (0);
}

int
faults_init(const char *json, long long s, char *err, size_t errlen)
{
	cJSON *j;
	int    rc;

	fault_seed(s);
	if (json == NULL || *json == '\0')
		return (0);
	if ((j = cJSON_Parse(json)) == NULL) {
		snprintf(err, errlen, "faults: not valid JSON");
		return (-1);
	}
	rc = faults_apply(j, err, errlen);
	cJSON_Delete(j);
	return (rc);
}

/* Draws the faults of a prompt that starts to run. */
void
faults_plan(struct exec_fault *x)
{
	int k;

	memset(x, 0, sizeof *x);
	x->hang_step = 1;
	for (k = FX_CRASH; k <= FX_SAME_NAME; k++) {
		if (!fault_roll(k))
			continue;
		x->fired |= FXB(k);
		snprintf(x->node[k], sizeof x->node[k], "%s", faults[k].node);
	}
	snprintf(
	    x->error_type, sizeof x->error_type, "%s", faults[FX_ERROR].type);
	snprintf(
	    x->error_msg, sizeof x->error_msg, "%s", faults[FX_ERROR].message);
	x->hang_step = (int)faults[FX_HANG].step;
	if (x->fired & FXB(FX_SAME_NAME))
		snprintf(x->same_name, sizeof x->same_name, "%s",
		    faults[FX_SAME_NAME].name);
}

int
faults_prompt_500(void)
{
	return (fault_roll(FX_PROMPT_500));
}

long long
faults_view_delay(void)
{
	return (fault_roll(FX_VIEW_SLOW) ? faults[FX_VIEW_SLOW].ms : 0);
}

void
faults_free(void)
{
	memset(faults, 0, sizeof faults);
}

static cJSON *
faults_json(void)
{
	cJSON		   *o = cJSON_CreateObject(), *t, *f;
	const struct fault *x;
	int		    k;

	cJSON_AddNumberToObject(o, "seed", (double)seed);
	t = cJSON_AddObjectToObject(o, "faults");
	for (k = 0; k < FX_N; k++) {
		x = &faults[k];
		if (!x->set)
			continue;
		f = cJSON_AddObjectToObject(t, fault_names[k]);
		if (x->p >= 0)
			cJSON_AddNumberToObject(f, "p", x->p);
		if (x->nth > 0)
			cJSON_AddNumberToObject(f, "nth", (double)x->nth);
		if (x->times > 0)
			cJSON_AddNumberToObject(f, "times", (double)x->times);
		if (x->node[0] != '\0')
			cJSON_AddStringToObject(f, "node", x->node);
		if (k == FX_ERROR) {
			cJSON_AddStringToObject(f, "exception_type", x->type);
			cJSON_AddStringToObject(f, "message", x->message);
		}
		if (k == FX_VIEW_SLOW)
			cJSON_AddNumberToObject(f, "ms", (double)x->ms);
		if (k == FX_HANG)
			cJSON_AddNumberToObject(f, "step", (double)x->step);
		if (k == FX_SAME_NAME)
			cJSON_AddStringToObject(f, "name", x->name);
		cJSON_AddNumberToObject(f, "seen", (double)x->seen);
		cJSON_AddNumberToObject(f, "fired", (double)x->fired);
	}
	return (o);
}

/* GET /sim/faults: the table. POST: change it, then the table. */
int
route_faults(struct evhttp_request *req, cJSON *body)
{
	char   err[512];
	cJSON *e;

	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		if (body == NULL)
			snprintf(err, sizeof err, "the body is not valid JSON");
		if (body == NULL || faults_apply(body, err, sizeof err) == -1) {
			e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "error", err);
			http_reply_json(req, 400, e);
			return (0);
		}
		log_notice("faults changed");
	}
	http_reply_json(req, 200, faults_json());
	return (0);
}
