/*
 * The errors of one spec (see wferrors.h): the list, and the LoRA and
 * ControlNet entries checked one by one through lora.c's and
 * controlnet.c's own list parsers, so that the messages are theirs.
 */
#include <stdio.h>
#include <string.h>

#include "wferrors.h"

/*
 * Adds one error to we. Past WF_ERRORS_MAX the last entry says how many
 * more there were: "...; 150 not in 1..100 (... and 8 more)".
 */
void
wf_errors_add(struct wf_errors *we, const char *msg)
{
	char *last;

	if (we->n == 0 && we->more == 0)
		snprintf(we->first, sizeof we->first, "%s", msg);
	if (we->n < WF_ERRORS_MAX) {
		snprintf(we->msg[we->n++], WF_ERROR_LEN, "%s", msg);
		return;
	}
	last = we->msg[WF_ERRORS_MAX - 1];
	if (we->more++ == 0) {
		we->cut = strlen(last);
		if (we->cut > WF_ERROR_LEN - 32)
			we->cut = WF_ERROR_LEN - 32;
	}
	snprintf(last + we->cut, WF_ERROR_LEN - we->cut, " (... and %d more)",
	    we->more);
}

/* An error that stops the checks: listed in we, if given. Returns -1. */
int
wf_errors_fail(struct wf_errors *we, const char *msg)
{
	if (we != NULL)
		wf_errors_add(we, msg);
	return (-1);
}

/* An error that need not stop the checks: -1 without we, else listed. */
int
wf_errors_note(struct wf_errors *we, const char *msg)
{
	if (we == NULL)
		return (-1);
	wf_errors_add(we, msg);
	return (0);
}

/*
 * The LoRA entries one by one, each error listed in we; each entry is
 * checked against those accepted before it (in ll), as in the whole list.
 * Returns -1 when an entry was refused.
 */
int
wf_errors_loras(const cJSON *loras, struct lora_list *ll, struct wf_errors *we,
    char *err, size_t errlen)
{
	const cJSON *v;
	char	     from[32];
	int	     i = 0, bad = 0;

	cJSON_ArrayForEach(v, loras) {
		snprintf(from, sizeof from, "loras[%d]", i++);
		if (lora_parse_entry(v, from, ll, err, errlen) == -1) {
			wf_errors_add(we, err);
			bad = 1;
		}
	}
	return (bad ? -1 : 0);
}

/*
 * Once cn_parse_list() has refused arr: each entry on its own, each
 * error listed in we. What is parsed here is thrown away: the job is
 * refused.
 */
void
wf_errors_cns(const cJSON *arr, const cJSON *inputs, const struct cn_map *m,
    struct wf_errors *we, char *err, size_t errlen)
{
	const cJSON    *v;
	struct cn_entry e;
	char		from[32];
	int		i = 0;

	cJSON_ArrayForEach(v, arr) {
		if (i == CN_MAX) {
			snprintf(err, errlen, "controlnets: over %d entries",
			    CN_MAX);
			wf_errors_add(we, err);
			return;
		}
		snprintf(from, sizeof from, "controlnets[%d]", i++);
		if (cn_parse_entry(v, from, inputs, m, &e, err, errlen) == -1)
			wf_errors_add(we, err);
	}
}
