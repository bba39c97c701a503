/*
 * validate_prompt() as ComfyUI's execution.py does it (v0.8.0): find the
 * output nodes, validate each one's inputs depth-first, remember every
 * node's result in a dict in the order validations finish, and build
 * node_errors from it. Literal inputs are coerced in place (int(), float(),
 * str(), bool()) and the coerced graph is what gets queued. A Python
 * exception that ComfyUI would let escape (a link to a missing node, a bad
 * slot index) becomes exception_during_(inner_)validation exactly where
 * ComfyUI catches it; one that escapes the handler entirely sets `raised`
 * (the caller answers 500). Within one node, inputs are checked in
 * declaration order (ComfyUI iterates a set).
 *
 * Python's recursion is an explicit stack of frames here (struct vframe),
 * with the same order of checks and results, so a chain of any length
 * cannot overflow the C stack; node lookups go through an index, so the
 * work is linear in the graph. Two bounds are the sim's own (README, Known
 * differences): a prompt of more than max-nodes nodes, and node_errors of
 * more than V_DEPS_MAX dependent_outputs, are refused as prompt_too_large.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"
#include "xmalloc.h"

#define V_RAISED (-1)
#define V_WAIT	 2 /* a frame waits for a linked node */

/* Most dependent_outputs entries in one 400 body (v_collect). */
#define V_DEPS_MAX 100000

struct vres {
	int    ok;
	cJSON *reasons;
};

struct vframe;

struct vctx {
	cJSON	      *prompt;
	struct omap   *nodes;	  /* node id -> its object (the first) */
	struct omap   *validated; /* node id -> struct vres, in finish order */
	struct omap   *active;	  /* ids on the stack */
	struct vframe *stack;	  /* validate_inputs() calls under way */
	size_t	       depth, cap;
	struct omap   *errors; /* node id -> its dependent_outputs array */
	long long      ndeps;  /* entries of all dependent_outputs */
};

/* A growing string. */
struct vbuf {
	char  *s;
	size_t len, cap;
};

static const char v_traceback[] =
    "  File \"/ComfyUI/execution.py\", line 812, in validate_inputs\n"
    "    o_class_type = prompt[o_id]['class_type']\n";

static void
vres_free(void *p)
{
	struct vres *r = p;

	if (r != NULL) {
		cJSON_Delete(r->reasons);
		free(r);
	}
}

static void
v_set(struct vctx *c, const char *id, int ok, cJSON *reasons)
{
	struct vres *r = xmalloc(sizeof *r);

	r->ok = ok;
	r->reasons = reasons;
	vres_free(omap_put(c->validated, id, r));
}

static cJSON *
v_error(
    const char *type, const char *message, const char *details, cJSON *extra)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddStringToObject(e, "details", details);
	cJSON_AddItemToObject(
	    e, "extra_info", extra != NULL ? extra : cJSON_CreateObject());
	return (e);
}

/* extra_info {input_name, input_config[, received_value]} */
static cJSON *
v_extra(const struct node_input *in, int config, const cJSON *received)
{
	cJSON *x = cJSON_CreateObject();

	cJSON_AddStringToObject(x, "input_name", in->name);
	if (config)
		cJSON_AddItemToObject(x, "input_config", node_input_config(in));
	if (received != NULL)
		cJSON_AddItemToObject(
		    x, "received_value", cJSON_Duplicate(received, 1));
	return (x);
}

/* Formats a bound the way the class declares it (int or float). */
static void
v_bound(
    const struct node_input *in, double b, int is_int, char *buf, size_t len)
{
	if (in->type == IT_INT || is_int)
		snprintf(buf, len, "%.0f", b);
	else
		py_float_repr(b, buf, len);
}

/*
 * The checks of a linked input [node id, slot] before the linked node is
 * validated. Returns 1 with the linked node's id in *src, 0 when the link
 * itself is wrong (the error added to errors), V_RAISED with exc for what
 * ComfyUI lets escape from validate_inputs().
 */
static int
v_link(struct vctx *c, const struct node_input *in, cJSON *val, cJSON *errors,
    struct pyexc *exc, const char **srcid)
{
	const cJSON		*id = val->child, *slot = id->next;
	const struct node_class *src;
	cJSON			*node, *x;
	const char		*received, *want;
	char			 details[512], *s;
	long			 k, n;
	int			 ok;

	if (cJSON_IsArray(id) || cJSON_IsObject(id)) {
		py_exc(
		    exc, "TypeError", "unhashable type: '%s'", py_typename(id));
		return (V_RAISED);
	}
	if (!cJSON_IsString(id) ||
	    (node = omap_get(c->nodes, id->valuestring)) == NULL) {
		s = py_repr(id);
		py_exc(exc, "KeyError", "%s", s);
		free(s);
		return (V_RAISED);
	}
	src = node_class_find(
	    cJSON_GetObjectItemCaseSensitive(node, "class_type")->valuestring);
	if (!cJSON_IsBool(slot) &&
	    (!cJSON_IsNumber(slot) ||
		slot->valuedouble != floor(slot->valuedouble))) {
		py_exc(exc, "TypeError",
		    "tuple indices must be integers or slices, not %s",
		    py_typename(slot));
		return (V_RAISED);
	}
	n = (long)node_noutputs(src);
	k = cJSON_IsBool(slot) ? cJSON_IsTrue(slot) : (long)slot->valuedouble;
	if (k < 0)
		k += n;
	if (k < 0 || k >= n) {
		py_exc(exc, "IndexError", "tuple index out of range");
		return (V_RAISED);
	}
	received = src->outputs[k];
	want = in->type == IT_LINK ? in->io : NULL;
	if (in->type != IT_COMBO && in->type != IT_LINK)
		want = in->io;
	ok = want != NULL &&
	    (strcmp(received, want) == 0 ||
		(in->also && strcmp(received, in->also) == 0) ||
		strcmp(want, "*") == 0);
	if (!ok) {
		cJSON *t;

		if (want != NULL)
			s = xstrdup(want);
		else {
			t = node_options(in);
			s = py_repr(t);
			cJSON_Delete(t);
		}
		snprintf(details, sizeof details,
		    "%s, received_type(%s) mismatch input_type(%s)", in->name,
		    received, s);
		free(s);
		x = v_extra(in, 1, NULL);
		cJSON_AddStringToObject(x, "received_type", received);
		cJSON_AddItemToObject(
		    x, "linked_node", cJSON_Duplicate(val, 1));
		cJSON_AddItemToArray(errors,
		    v_error("return_type_mismatch",
			"Return type mismatch between linked nodes", details,
			x));
		return (0);
	}
	*srcid = id->valuestring;
	return (1);
}

/* The linked node src raised inner: what ComfyUI's except clause in
 * validate_inputs() records for it. */
static void
v_link_raised(struct vctx *c, const struct node_input *in, const cJSON *val,
    const char *src, const struct pyexc *inner)
{
	cJSON *x, *reasons;

	x = v_extra(in, 1, NULL);
	cJSON_AddStringToObject(x, "exception_message", inner->msg);
	cJSON_AddStringToObject(x, "exception_type", inner->type);
	cJSON_AddItemToObject(x, "traceback",
	    cJSON_CreateStringArray((const char *const[]){ v_traceback }, 1));
	cJSON_AddItemToObject(x, "linked_node", cJSON_Duplicate(val, 1));
	reasons = cJSON_CreateArray();
	cJSON_AddItemToArray(reasons,
	    v_error("exception_during_inner_validation",
		"Exception when validating inner node", inner->msg, x));
	v_set(c, src, 0, reasons);
}

/* Coerces a literal in place and checks its bounds and combo list. */
static void
v_literal(cJSON *inputs, const struct node_input *in, cJSON *val, cJSON *errors)
{
	struct pyexc exc;
	cJSON	    *nv = NULL, *opts, *it, *x;
	char	     details[1024], msg[256], vb[64], bb[64], *s;
	double	     d = 0;
	int	     rc = 0, found = 0;

	switch (in->type) {
	case IT_INT:
		rc = py_int(val, &d, &exc);
		nv = rc == 0 ? cJSON_CreateNumber(d) : NULL;
		break;
	case IT_FLOAT:
		rc = py_float(val, &d, &exc);
		nv = rc == 0 ? cJSON_CreateNumber(d) : NULL;
		break;
	case IT_STRING:
		s = py_str(val);
		nv = cJSON_CreateString(s);
		free(s);
		break;
	case IT_BOOLEAN:
		nv = cJSON_CreateBool(py_truthy(val));
		break;
	default:
		break;
	}
	if (rc == -1) {
		s = py_str(val);
		snprintf(msg, sizeof msg,
		    "Failed to convert an input value to a %s value", in->io);
		snprintf(details, sizeof details, "%s, %s, %s", in->name, s,
		    exc.msg);
		free(s);
		x = v_extra(in, 1, val);
		cJSON_AddStringToObject(x, "exception_message", exc.msg);
		cJSON_AddItemToArray(
		    errors, v_error("invalid_input_type", msg, details, x));
		return;
	}
	if (nv != NULL) {
		cJSON_ReplaceItemInObjectCaseSensitive(inputs, in->name, nv);
		val = nv;
	}
	if (in->flags & IN_CUSTOM_VAL)
		return;
	if (in->type == IT_INT || in->type == IT_FLOAT) {
		if (in->type == IT_INT)
			snprintf(vb, sizeof vb, "%.0f", d);
		else
			py_float_repr(d, vb, sizeof vb);
		if ((in->flags & IN_HAS_MIN) && d < in->min) {
			v_bound(
			    in, in->min, in->flags & IN_MIN_INT, bb, sizeof bb);
			snprintf(msg, sizeof msg,
			    "Value %s smaller than min of %s", vb, bb);
			cJSON_AddItemToArray(errors,
			    v_error("value_smaller_than_min", msg, in->name,
				v_extra(in, 1, val)));
			return;
		}
		if ((in->flags & IN_HAS_MAX) && d > in->max) {
			v_bound(
			    in, in->max, in->flags & IN_MAX_INT, bb, sizeof bb);
			snprintf(msg, sizeof msg,
			    "Value %s bigger than max of %s", vb, bb);
			cJSON_AddItemToArray(errors,
			    v_error("value_bigger_than_max", msg, in->name,
				v_extra(in, 1, val)));
		}
		return;
	}
	if (in->type != IT_COMBO)
		return;
	opts = node_options(in);
	cJSON_ArrayForEach(it, opts)
	{
		if (cJSON_IsString(val) &&
		    strcmp(it->valuestring, val->valuestring) == 0)
			found = 1;
	}
	if (!found) {
		int   big = cJSON_GetArraySize(opts) > 20;
		char *list = big ? NULL : py_repr(opts);

		s = py_str(val);
		if (big)
			snprintf(details, sizeof details,
			    "%s: '%s' not in (list of length %d)", in->name, s,
			    cJSON_GetArraySize(opts));
		else
			snprintf(details, sizeof details, "%s: '%s' not in %s",
			    in->name, s, list);
		free(s);
		free(list);
		x = v_extra(in, 0, NULL);
		cJSON_AddItemToObject(x, "input_config",
		    big ? cJSON_CreateNull() : node_input_config(in));
		cJSON_AddItemToObject(
		    x, "received_value", cJSON_Duplicate(val, 1));
		cJSON_AddItemToArray(errors,
		    v_error(
			"value_not_in_list", "Value not in list", details, x));
	}
	cJSON_Delete(opts);
}

/* LoadImage.VALIDATE_INPUTS(image): the file must exist. */
static int
v_custom(const struct node_class *cls, cJSON *inputs, cJSON *errors,
    struct pyexc *exc)
{
	cJSON *img, *x;
	char   path[8192], details[4200];

	if (cls->kind != NK_LOAD_IMAGE)
		return (0);
	img = cJSON_GetObjectItemCaseSensitive(inputs, "image");
	if (img == NULL) {
		py_exc(exc, "TypeError",
		    "LoadImage.VALIDATE_INPUTS() missing 1 required "
		    "positional argument: 'image'");
		return (V_RAISED);
	}
	if (!cJSON_IsString(img)) {
		py_exc(exc, "AttributeError",
		    "'%s' object has no attribute 'endswith'",
		    graph_link(img, NULL, NULL) ? "NoneType"
						: py_typename(img));
		return (V_RAISED);
	}
	if (path_annotated(
		img->valuestring, sim.input_dir, path, sizeof path) == 0 &&
	    access(path, F_OK) == 0)
		return (0);
	snprintf(details, sizeof details, "image - Invalid image file: %s",
	    img->valuestring);
	x = cJSON_CreateObject();
	cJSON_AddStringToObject(x, "input_name", "image");
	cJSON_AddItemToArray(errors,
	    v_error("custom_validation_failed",
		"Custom validation failed for node", details, x));
	return (0);
}

/*
 * validate_inputs() of one node, as a frame of the explicit stack that
 * stands for Python's recursion (a chain of any length must not overflow
 * the C stack): the node, its errors so far, and the input it is at.
 */
struct vframe {
	const char		*id;
	const struct node_class *cls;
	cJSON			*inputs;
	cJSON			*errors;
	const struct node_input *in;
	cJSON			*val; /* the link being followed */
	const char		*src; /* its node */
	int			 valid;
	struct pyexc		 exc; /* what it raised */
};

/* Starts validate_inputs(id) on a new top frame. 1: pushed; 0: raised
 * before it began (exc set, nothing pushed). */
static int
v_enter(struct vctx *c, const char *id, struct pyexc *exc)
{
	struct vframe *f;
	cJSON	      *node, *inputs;

	node = omap_get(c->nodes, id);
	inputs = cJSON_GetObjectItemCaseSensitive(node, "inputs");
	if (inputs == NULL) {
		py_exc(exc, "KeyError", "'inputs'");
		return (0);
	}
	if (!cJSON_IsObject(inputs) && !cJSON_IsArray(inputs) &&
	    !cJSON_IsString(inputs)) {
		py_exc(exc, "TypeError",
		    "argument of type '%s' is not iterable",
		    py_typename(inputs));
		return (0);
	}
	if (c->depth == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->stack = xrealloc(c->stack, c->cap * sizeof *c->stack);
	}
	f = &c->stack[c->depth++];
	memset(f, 0, sizeof *f);
	f->id = id;
	f->cls = node_class_find(
	    cJSON_GetObjectItemCaseSensitive(node, "class_type")->valuestring);
	f->inputs = inputs;
	f->errors = cJSON_CreateArray();
	f->in = f->cls->inputs;
	f->valid = 1;
	omap_put(c->active, id, c);
	return (1);
}

/*
 * Goes on with the inputs of the top frame. Returns V_WAIT when it must
 * wait for the linked node f->src (not validated yet, not on the stack);
 * else the node is done: 1 valid, 0 invalid (the result stored), V_RAISED
 * with f->exc.
 */
static int
v_inputs(struct vctx *c, struct vframe *f)
{
	const struct node_input *in;
	struct vres		*done;
	struct pyexc		 inner;
	cJSON			*val;
	int			 rc;

	for (; (in = f->in)->name != NULL; f->in++) {
		val = cJSON_IsObject(f->inputs)
		    ? cJSON_GetObjectItemCaseSensitive(f->inputs, in->name)
		    : NULL;
		if (val == NULL) {
			if (!(in->flags & IN_OPTIONAL))
				cJSON_AddItemToArray(f->errors,
				    v_error("required_input_missing",
					"Required input is missing", in->name,
					v_extra(in, 0, NULL)));
			continue;
		}
		if (cJSON_IsArray(val)) {
			if (cJSON_GetArraySize(val) != 2) {
				cJSON_AddItemToArray(f->errors,
				    v_error("bad_linked_input",
					"Bad linked input, must be a length-2 "
					"list of [node_id, slot_index]",
					in->name, v_extra(in, 1, val)));
				continue;
			}
			rc = v_link(c, in, val, f->errors, &f->exc, &f->src);
			if (rc == V_RAISED)
				return (V_RAISED);
			if (rc == 0) {
				f->valid = 0;
				continue;
			}
			if (omap_get(c->active, f->src) != NULL) {
				/* A cycle: Python recurses until
				 * RecursionError. */
				py_exc(&inner, "RecursionError",
				    "maximum recursion depth exceeded");
				v_link_raised(c, in, val, f->src, &inner);
				f->valid = 0;
			} else if ((done = omap_get(c->validated, f->src)) ==
			    NULL) {
				f->val = val;
				return (V_WAIT);
			} else if (!done->ok)
				f->valid = 0;
			continue;
		}
		if (cJSON_IsObject(val) &&
		    cJSON_GetObjectItemCaseSensitive(val, "__value__")) {
			cJSON_ReplaceItemInObjectCaseSensitive(f->inputs,
			    in->name,
			    cJSON_DetachItemFromObjectCaseSensitive(
				val, "__value__"));
			val = cJSON_GetObjectItemCaseSensitive(
			    f->inputs, in->name);
		}
		v_literal(f->inputs, in, val, f->errors);
	}
	if (v_custom(f->cls, f->inputs, f->errors, &f->exc) == V_RAISED)
		return (V_RAISED);
	omap_del(c->active, f->id);
	rc = f->valid && cJSON_GetArraySize(f->errors) == 0;
	v_set(c, f->id, rc, f->errors);
	f->errors = NULL;
	return (rc);
}

/* validate_inputs(id): 1 valid, 0 invalid, V_RAISED with exc. */
static int
v_node(struct vctx *c, const char *id, struct pyexc *exc)
{
	struct vframe *f;
	struct vres   *done;
	struct pyexc   e;
	size_t	       base = c->depth;
	int	       rc;

	if ((done = omap_get(c->validated, id)) != NULL)
		return (done->ok);
	if (!v_enter(c, id, exc))
		return (V_RAISED);
	for (;;) {
		f = &c->stack[c->depth - 1];
		if ((rc = v_inputs(c, f)) == V_WAIT) {
			/* Into the linked node, as Python recurses. */
			if (v_enter(c, f->src, &e))
				continue;
			rc = V_RAISED;
		} else {
			/* The frame's node is done: back to its caller. */
			if (rc == V_RAISED) {
				omap_del(c->active, f->id);
				cJSON_Delete(f->errors);
				e = f->exc;
			}
			if (--c->depth == base) {
				if (rc == V_RAISED)
					*exc = e;
				return (rc);
			}
			f = &c->stack[c->depth - 1];
		}
		/* f followed a link to f->src, which ended with rc. */
		if (rc == V_RAISED)
			v_link_raised(c, f->in, f->val, f->src, &e);
		if (rc != 1)
			f->valid = 0;
		f->in++;
	}
}

static cJSON *
v_prompt_error(const char *type, const char *message, const char *details)
{
	return (v_error(type, message, details, NULL));
}

/* Checks the class_type of every node; finds the outputs. */
static int
v_scan(cJSON *prompt, const cJSON *partial, cJSON *outputs, struct vresult *r)
{
	const struct node_class *cls;
	const cJSON		*n, *ct, *t;
	char			 msg[512], details[512], *s;
	int			 in_partial;

	cJSON_ArrayForEach(n, prompt)
	{
		snprintf(details, sizeof details, "Node ID '#%s'", n->string);
		if (cJSON_IsNumber(n) || cJSON_IsBool(n) || cJSON_IsNull(n)) {
			r->raised = 1;
			return (-1);
		}
		ct = cJSON_IsObject(n)
		    ? cJSON_GetObjectItemCaseSensitive(n, "class_type")
		    : NULL;
		if (ct == NULL) {
			r->error = v_prompt_error("invalid_prompt",
			    "Cannot execute because a node is missing the "
			    "class_type property.",
			    details);
			return (-1);
		}
		if (cJSON_IsArray(ct) || cJSON_IsObject(ct)) {
			r->raised = 1;
			return (-1);
		}
		cls = cJSON_IsString(ct) ? node_class_find(ct->valuestring)
					 : NULL;
		if (cls == NULL) {
			s = py_str(ct);
			snprintf(msg, sizeof msg,
			    "Cannot execute because node %s does not exist.",
			    s);
			free(s);
			r->error =
			    v_prompt_error("invalid_prompt", msg, details);
			return (-1);
		}
		if (!cls->output_node)
			continue;
		in_partial = !cJSON_IsArray(partial);
		cJSON_ArrayForEach(t, partial)
		{
			if (cJSON_IsString(t) &&
			    strcmp(t->valuestring, n->string) == 0)
				in_partial = 1;
		}
		if (in_partial)
			cJSON_AddItemToArray(
			    outputs, cJSON_CreateString(n->string));
	}
	return (0);
}

/*
 * Adds the failed nodes of one output to node_errors (execution.py): every
 * failed node validated so far lists the output in dependent_outputs, so
 * the body grows with outputs x failed nodes. Returns -1 when it would list
 * more than V_DEPS_MAX outputs in all (the sim's bound; ComfyUI has none).
 */
static int
v_collect(struct vctx *c, const char *o, cJSON *node_errors)
{
	struct omap_ent *e;
	struct vres	*r;
	cJSON		*ne, *node, *deps;

	for (e = omap_first(c->validated); e != NULL; e = omap_next(e)) {
		r = omap_val(e);
		if (r->ok || cJSON_GetArraySize(r->reasons) == 0)
			continue;
		if (++c->ndeps > V_DEPS_MAX)
			return (-1);
		if ((deps = omap_get(c->errors, omap_key(e))) == NULL) {
			node = omap_get(c->nodes, omap_key(e));
			ne = cJSON_AddObjectToObject(node_errors, omap_key(e));
			cJSON_AddItemToObject(
			    ne, "errors", cJSON_Duplicate(r->reasons, 1));
			deps = cJSON_AddArrayToObject(ne, "dependent_outputs");
			cJSON_AddStringToObject(ne, "class_type",
			    cJSON_GetObjectItemCaseSensitive(node, "class_type")
				->valuestring);
			omap_put(c->errors, omap_key(e), deps);
		}
		cJSON_AddItemToArray(deps, cJSON_CreateString(o));
	}
	return (0);
}

/* Appends "message: details" of each reason as a line to buf. */
static void
v_details(struct vbuf *b, const cJSON *reasons)
{
	const cJSON *e;
	const char  *m, *d;
	size_t	     need;

	cJSON_ArrayForEach(e, reasons)
	{
		m = cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring;
		d = cJSON_GetObjectItemCaseSensitive(e, "details")->valuestring;
		need = b->len + strlen(m) + strlen(d) + 4;
		if (need > b->cap) {
			b->cap = need > 2 * b->cap ? need : 2 * b->cap;
			b->s = xrealloc(b->s, b->cap);
		}
		b->len += (size_t)snprintf(b->s + b->len, b->cap - b->len,
		    "%s%s: %s", b->len > 0 ? "\n" : "", m, d);
	}
}

/* The sim's own refusal of a prompt it will not take (README, Known
 * differences): 400 with ComfyUI's error shape. */
static cJSON *
v_too_large(const char *message, const char *details, long long n,
    long long max, const char *what)
{
	cJSON *x = cJSON_CreateObject();
	char   key[32];

	snprintf(key, sizeof key, "max_%s", what);
	cJSON_AddNumberToObject(x, what, (double)n);
	cJSON_AddNumberToObject(x, key, (double)max);
	return (v_error("prompt_too_large", message, details, x));
}

void
validate_prompt(cJSON *prompt, const cJSON *partial, struct vresult *r)
{
	struct vctx  c;
	struct vbuf  details = { NULL, 0, 0 };
	struct pyexc exc;
	struct vres *res;
	cJSON	    *outputs = cJSON_CreateArray(), *o, *x, *reasons;
	char	     msg[256];
	int	     rc, n;

	memset(&c, 0, sizeof c);
	c.prompt = prompt;
	c.nodes = omap_new();
	c.validated = omap_new();
	c.active = omap_new();
	c.errors = omap_new();
	memset(r, 0, sizeof *r);
	r->node_errors = cJSON_CreateObject();
	if (!cJSON_IsObject(prompt)) {
		/* A list or string is iterated by Python; an empty one has
		 * no outputs, anything else raises. */
		if ((cJSON_IsArray(prompt) && prompt->child == NULL) ||
		    (cJSON_IsString(prompt) && *prompt->valuestring == '\0'))
			r->error = v_prompt_error(
			    "prompt_no_outputs", "Prompt has no outputs", "");
		else
			r->raised = 1;
		goto out;
	}
	if ((n = cJSON_GetArraySize(prompt)) > sim.cfg.max_nodes) {
		snprintf(msg, sizeof msg,
		    "%d nodes; this comfyq-sim takes at most %lld (max-nodes)",
		    n, sim.cfg.max_nodes);
		r->error = v_too_large("Prompt has too many nodes", msg, n,
		    sim.cfg.max_nodes, "nodes");
		goto out;
	}
	cJSON_ArrayForEach(o, prompt)
	{
		if (omap_get(c.nodes, o->string) == NULL)
			omap_put(c.nodes, o->string, o);
	}
	if (v_scan(prompt, partial, outputs, r) == -1)
		goto out;
	if (outputs->child == NULL) {
		r->error = v_prompt_error(
		    "prompt_no_outputs", "Prompt has no outputs", "");
		goto out;
	}
	r->outputs = cJSON_CreateArray();
	cJSON_ArrayForEach(o, outputs)
	{
		rc = v_node(&c, o->valuestring, &exc);
		if (rc == V_RAISED) {
			x = cJSON_CreateObject();
			cJSON_AddStringToObject(x, "exception_type", exc.type);
			cJSON_AddItemToObject(x, "traceback",
			    cJSON_CreateStringArray(
				(const char *const[]){ v_traceback }, 1));
			reasons = cJSON_CreateArray();
			cJSON_AddItemToArray(reasons,
			    v_error("exception_during_validation",
				"Exception when validating node", exc.msg, x));
			v_set(&c, o->valuestring, 0, reasons);
		}
		if (rc == 1) {
			cJSON_AddItemToArray(
			    r->outputs, cJSON_CreateString(o->valuestring));
			continue;
		}
		res = omap_get(c.validated, o->valuestring);
		v_details(&details, res->reasons);
		if (v_collect(&c, o->valuestring, r->node_errors) == -1) {
			snprintf(msg, sizeof msg,
			    "node_errors would list more than %d dependent "
			    "outputs; this comfyq-sim lists at most that many",
			    V_DEPS_MAX);
			r->error = v_too_large("Prompt has too many errors to "
					       "report",
			    msg, c.ndeps, V_DEPS_MAX, "dependent_outputs");
			cJSON_Delete(r->node_errors);
			r->node_errors = cJSON_CreateObject();
			cJSON_Delete(r->outputs);
			r->outputs = NULL;
			goto out;
		}
	}
	if (r->outputs->child == NULL) {
		r->error = v_prompt_error("prompt_outputs_failed_validation",
		    "Prompt outputs failed validation",
		    details.s != NULL ? details.s : "");
		cJSON_Delete(r->outputs);
		r->outputs = NULL;
		goto out;
	}
	r->ok = 1;
out:
	free(details.s);
	cJSON_Delete(outputs);
	omap_free(c.nodes, NULL);
	omap_free(c.validated, vres_free);
	omap_free(c.active, NULL);
	omap_free(c.errors, NULL);
	free(c.stack);
}

void
vresult_free(struct vresult *r)
{
	cJSON_Delete(r->error);
	cJSON_Delete(r->node_errors);
	cJSON_Delete(r->outputs);
	memset(r, 0, sizeof *r);
}
