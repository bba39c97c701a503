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

struct vres {
	int    ok;
	cJSON *reasons;
};

struct vctx {
	cJSON	    *prompt;
	struct omap *validated; /* node id -> struct vres, in finish order */
	struct omap *active;	/* ids on the recursion stack */
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

static const char *
v_pytype(const cJSON *v)
{
	if (cJSON_IsString(v))
		return ("str");
	if (cJSON_IsNumber(v))
		return (
		    v->valuedouble == floor(v->valuedouble) ? "int" : "float");
	if (cJSON_IsBool(v))
		return ("bool");
	if (cJSON_IsArray(v))
		return ("list");
	if (cJSON_IsObject(v))
		return ("dict");
	return ("NoneType");
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

static int v_node(struct vctx *, const char *, struct pyexc *);

/*
 * A linked input: [node id, slot]. Returns 1 if valid, 0 if not (error
 * added or the source failed), V_RAISED with exc for what ComfyUI lets
 * escape from validate_inputs().
 */
static int
v_link(struct vctx *c, const struct node_input *in, cJSON *val, cJSON *errors,
    struct pyexc *exc)
{
	const cJSON		*id = val->child, *slot = id->next;
	const struct node_class *src;
	cJSON			*node, *x, *reasons;
	const char		*received, *want;
	char			 details[512], *s;
	struct pyexc		 inner;
	long			 k, n;
	int			 rc, ok;

	if (cJSON_IsArray(id) || cJSON_IsObject(id)) {
		py_exc(exc, "TypeError", "unhashable type: '%s'", v_pytype(id));
		return (V_RAISED);
	}
	if (!cJSON_IsString(id) ||
	    (node = cJSON_GetObjectItemCaseSensitive(
		 c->prompt, id->valuestring)) == NULL) {
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
		    v_pytype(slot));
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
	if (omap_get(c->active, id->valuestring) != NULL) {
		/* A cycle: Python recurses until RecursionError. */
		py_exc(&inner, "RecursionError",
		    "maximum recursion depth exceeded");
		rc = V_RAISED;
	} else
		rc = v_node(c, id->valuestring, &inner);
	if (rc != V_RAISED)
		return (rc);
	x = v_extra(in, 1, NULL);
	cJSON_AddStringToObject(x, "exception_message", inner.msg);
	cJSON_AddStringToObject(x, "exception_type", inner.type);
	cJSON_AddItemToObject(x, "traceback",
	    cJSON_CreateStringArray((const char *const[]){ v_traceback }, 1));
	cJSON_AddItemToObject(x, "linked_node", cJSON_Duplicate(val, 1));
	reasons = cJSON_CreateArray();
	cJSON_AddItemToArray(reasons,
	    v_error("exception_during_inner_validation",
		"Exception when validating inner node", inner.msg, x));
	v_set(c, id->valuestring, 0, reasons);
	return (0);
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
		    graph_link(img, NULL, NULL) ? "NoneType" : v_pytype(img));
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

/* validate_inputs(): 1 valid, 0 invalid, V_RAISED with exc. */
static int
v_node(struct vctx *c, const char *id, struct pyexc *exc)
{
	const struct node_class *cls;
	const struct node_input *in;
	struct vres		*done;
	cJSON			*node, *inputs, *val, *errors;
	int			 valid = 1, rc = 0;

	if ((done = omap_get(c->validated, id)) != NULL)
		return (done->ok);
	node = cJSON_GetObjectItemCaseSensitive(c->prompt, id);
	cls = node_class_find(
	    cJSON_GetObjectItemCaseSensitive(node, "class_type")->valuestring);
	inputs = cJSON_GetObjectItemCaseSensitive(node, "inputs");
	if (inputs == NULL) {
		py_exc(exc, "KeyError", "'inputs'");
		return (V_RAISED);
	}
	if (!cJSON_IsObject(inputs) && !cJSON_IsArray(inputs) &&
	    !cJSON_IsString(inputs)) {
		py_exc(exc, "TypeError",
		    "argument of type '%s' is not iterable", v_pytype(inputs));
		return (V_RAISED);
	}
	errors = cJSON_CreateArray();
	omap_put(c->active, id, c);
	for (in = cls->inputs; in->name != NULL; in++) {
		val = cJSON_IsObject(inputs)
		    ? cJSON_GetObjectItemCaseSensitive(inputs, in->name)
		    : NULL;
		if (val == NULL) {
			if (!(in->flags & IN_OPTIONAL))
				cJSON_AddItemToArray(errors,
				    v_error("required_input_missing",
					"Required input is missing", in->name,
					v_extra(in, 0, NULL)));
			continue;
		}
		if (cJSON_IsArray(val)) {
			if (cJSON_GetArraySize(val) != 2) {
				cJSON_AddItemToArray(errors,
				    v_error("bad_linked_input",
					"Bad linked input, must be a length-2 "
					"list of [node_id, slot_index]",
					in->name, v_extra(in, 1, val)));
				continue;
			}
			if ((rc = v_link(c, in, val, errors, exc)) == V_RAISED)
				goto raised;
			if (rc == 0)
				valid = 0;
			continue;
		}
		if (cJSON_IsObject(val) &&
		    cJSON_GetObjectItemCaseSensitive(val, "__value__")) {
			cJSON_ReplaceItemInObjectCaseSensitive(inputs, in->name,
			    cJSON_DetachItemFromObjectCaseSensitive(
				val, "__value__"));
			val =
			    cJSON_GetObjectItemCaseSensitive(inputs, in->name);
		}
		v_literal(inputs, in, val, errors);
	}
	if (v_custom(cls, inputs, errors, exc) == V_RAISED)
		goto raised;
	omap_del(c->active, id);
	rc = valid && cJSON_GetArraySize(errors) == 0;
	v_set(c, id, rc, errors);
	return (rc);
raised:
	omap_del(c->active, id);
	cJSON_Delete(errors);
	return (V_RAISED);
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

/* Adds the failed nodes of one output to node_errors (execution.py). */
static void
v_collect(struct vctx *c, const char *o, cJSON *node_errors)
{
	struct omap_ent *e;
	struct vres	*r;
	cJSON		*ne, *node;

	for (e = omap_first(c->validated); e != NULL; e = omap_next(e)) {
		r = omap_val(e);
		if (r->ok || cJSON_GetArraySize(r->reasons) == 0)
			continue;
		if ((ne = cJSON_GetObjectItemCaseSensitive(
			 node_errors, omap_key(e))) == NULL) {
			node = cJSON_GetObjectItemCaseSensitive(
			    c->prompt, omap_key(e));
			ne = cJSON_AddObjectToObject(node_errors, omap_key(e));
			cJSON_AddItemToObject(
			    ne, "errors", cJSON_Duplicate(r->reasons, 1));
			cJSON_AddArrayToObject(ne, "dependent_outputs");
			cJSON_AddStringToObject(ne, "class_type",
			    cJSON_GetObjectItemCaseSensitive(node, "class_type")
				->valuestring);
		}
		cJSON_AddItemToArray(
		    cJSON_GetObjectItemCaseSensitive(ne, "dependent_outputs"),
		    cJSON_CreateString(o));
	}
}

static void
v_append(char **s, const char *line)
{
	char *n = *s == NULL ? xstrdup(line) : xasprintf("%s\n%s", *s, line);

	free(*s);
	*s = n;
}

void
validate_prompt(cJSON *prompt, const cJSON *partial, struct vresult *r)
{
	struct vctx  c = { prompt, omap_new(), omap_new() };
	struct pyexc exc;
	struct vres *res;
	cJSON	    *outputs = cJSON_CreateArray(), *o, *x, *reasons, *e;
	char	    *details = NULL, *line;
	int	     rc;

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
		cJSON_ArrayForEach(e, res->reasons)
		{
			line = xasprintf("%s: %s",
			    cJSON_GetObjectItemCaseSensitive(e, "message")
				->valuestring,
			    cJSON_GetObjectItemCaseSensitive(e, "details")
				->valuestring);
			v_append(&details, line);
			free(line);
		}
		v_collect(&c, o->valuestring, r->node_errors);
	}
	if (r->outputs->child == NULL) {
		r->error = v_prompt_error("prompt_outputs_failed_validation",
		    "Prompt outputs failed validation",
		    details != NULL ? details : "");
		cJSON_Delete(r->outputs);
		r->outputs = NULL;
		goto out;
	}
	r->ok = 1;
out:
	free(details);
	cJSON_Delete(outputs);
	omap_free(c.validated, vres_free);
	omap_free(c.active, NULL);
}

void
vresult_free(struct vresult *r)
{
	cJSON_Delete(r->error);
	cJSON_Delete(r->node_errors);
	cJSON_Delete(r->outputs);
	memset(r, 0, sizeof *r);
}
