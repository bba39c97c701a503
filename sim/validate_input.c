/*
 * The checks of one input of one node, as ComfyUI's validate_inputs()
 * (execution.py, v0.8.0) makes them, apart from the walk over the graph
 * that calls them (validate.c): a link's target node, slot and type; a
 * literal's coercion (int(), float(), str(), bool()) in place, its bounds
 * and its combo list; LoadImage's VALIDATE_INPUTS. Each check adds
 * ComfyUI's error objects to the node's errors array, or returns V_RAISED
 * with the Python exception that ComfyUI would let escape; none of them
 * knows the stack of frames or the results so far (validate.h is the whole
 * interface). The error objects and their extra_info are built here too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"
#include "validate.h"
#include "xmalloc.h"

const char v_traceback[] =
    "  File \"/ComfyUI/execution.py\", line 812, in validate_inputs\n"
    "    o_class_type = prompt[o_id]['class_type']\n";

cJSON *
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
cJSON *
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
int
v_link(const struct omap *nodes, const struct node_input *in, cJSON *val,
    cJSON *errors, struct pyexc *exc, const char **srcid)
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
	    (node = omap_get(nodes, id->valuestring)) == NULL) {
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

/* A linked node raised inner: the reasons ComfyUI's except clause in
 * validate_inputs() records for it (the caller stores them as its result). */
cJSON *
v_link_raised(
    const struct node_input *in, const cJSON *val, const struct pyexc *inner)
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
	return (reasons);
}

/* Coerces a literal in place and checks its bounds and combo list. */
void
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
	cJSON_ArrayForEach(it, opts) {
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
int
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
		    "LoadImage.VALIDATE_INPUTS() missing 1 required positional argument: 'image'");
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
