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
 * This file is the walk and the report: the scan for outputs, the
 * validate_inputs() of each node, the results so far and node_errors. The
 * checks of one input (a link, a literal, a class's VALIDATE_INPUTS) and
 * the error objects they build are validate_input.c's, through
 * validate.h; they never see the stack or the results.
 *
 * Python's recursion is an explicit stack of frames here (struct vframe),
 * with the same order of checks and results, so a chain of any length
 * cannot overflow the C stack; node lookups go through an index, so the
 * work is linear in the graph. Two bounds are the sim's own (README, Known
 * differences): a prompt of more than max-nodes nodes, and node_errors of
 * more than V_DEPS_MAX dependent_outputs, are refused as prompt_too_large.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "validate.h"
#include "xmalloc.h"

#define V_WAIT 2 /* a frame waits for a linked node */

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
					"Bad linked input, must be a length-2 list of [node_id, slot_index]",
					in->name, v_extra(in, 1, val)));
				continue;
			}
			rc = v_link(
			    c->nodes, in, val, f->errors, &f->exc, &f->src);
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
				v_set(c, f->src, 0,
				    v_link_raised(in, val, &inner));
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
			v_set(c, f->src, 0, v_link_raised(f->in, f->val, &e));
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

	cJSON_ArrayForEach(n, prompt) {
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
			    "Cannot execute because a node is missing the class_type property.",
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
		cJSON_ArrayForEach(t, partial) {
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

	cJSON_ArrayForEach(e, reasons) {
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
	cJSON_ArrayForEach(o, prompt) {
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
	cJSON_ArrayForEach(o, outputs) {
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
			    "node_errors would list more than %d dependent outputs; this comfyq-sim lists at most that many",
			    V_DEPS_MAX);
			r->error =
			    v_too_large("Prompt has too many errors to report",
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
