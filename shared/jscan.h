/*
 * A JSON text's top-level object read without building it: its members
 * one by one as spans of the text (a value is skipped over, bracket by
 * bracket and string by string, never parsed). For messages the worker
 * reads only part of: a ComfyUI socket message's "type" before it decides
 * to parse the rest, a /history entry without its "prompt" (the whole
 * graph again). The scan checks only what it walks (brackets, strings,
 * commas and colons); a value it spans is checked by whoever parses it.
 */
#ifndef COMFYQ_JSCAN_H
#define COMFYQ_JSCAN_H

#include <stddef.h>

struct jscan {
	const char *p, *end;
	int	    first;
};

/* One member: its key as written (between the quotes, escapes kept)
 * and its value's span; mem..vend is the whole member's text. */
struct jscan_member {
	const char *mem;
	const char *key;
	size_t	    klen;
	const char *val, *vend;
};

int jscan_open(struct jscan *s, const char *text, size_t len);
int jscan_next(struct jscan *s, struct jscan_member *m);
int jscan_find(
    const char *text, size_t len, const char *key, struct jscan_member *m);

#endif
