/*
 * Private to validate_prompt(): what the walk over the graph and the error
 * report (validate.c) ask of the checks of one input (validate_input.c).
 * The checks see one node's inputs and errors, and the index of the nodes
 * for a link; the walk keeps the stack, the results and node_errors.
 */
#ifndef COMFYQ_SIM_VALIDATE_H
#define COMFYQ_SIM_VALIDATE_H

#include "sim.h"

/* A check's result: a Python exception escaped validate_inputs(). */
#define V_RAISED (-1)

/* The traceback lines ComfyUI reports for an exception in validation. */
extern const char v_traceback[];

/* {type, message, details, extra_info}: extra, or {} when NULL. */
cJSON *v_error(
    const char *type, const char *message, const char *details, cJSON *extra);
/* extra_info {input_name[, input_config][, received_value]}. */
cJSON *v_extra(const struct node_input *in, int config, const cJSON *received);

/*
 * The checks of a linked input val, [node id, slot], before the linked
 * node is validated; nodes maps a node id to its object. Returns 1 with the
 * linked node's id in *srcid, 0 when the link itself is wrong (the error
 * added to errors), V_RAISED with exc for what ComfyUI lets escape from
 * validate_inputs().
 */
int v_link(const struct omap *nodes, const struct node_input *in, cJSON *val,
    cJSON *errors, struct pyexc *exc, const char **srcid);
/* The reasons ComfyUI's except clause in validate_inputs() records for a
 * linked node that raised inner, reached through input in's link val. */
cJSON *v_link_raised(
    const struct node_input *in, const cJSON *val, const struct pyexc *inner);
/* Coerces literal val of input in, in place in inputs, and checks its
 * bounds and combo list; errors get what fails. */
void v_literal(
    cJSON *inputs, const struct node_input *in, cJSON *val, cJSON *errors);
/* The class's VALIDATE_INPUTS (LoadImage: the image file must exist): 0
 * with any failure added to errors, or V_RAISED with exc. */
int v_custom(const struct node_class *cls, cJSON *inputs, cJSON *errors,
    struct pyexc *exc);

#endif
