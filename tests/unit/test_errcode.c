/*
 * The error codes are listed twice: lua/lib.lua's ERROR_CODES (with the
 * terminal state each leads to) and shared/errcode.c. This reads the list
 * out of the library text the programs load (comfyq_lua_library) and
 * holds the two lists to each other, both ways.
 */
#include <stdio.h>
#include <string.h>

#include "errcode.h"
#include "rq.h"
#include "unit.h"

#define LUA_CODES_MAX 64

struct lua_code {
	char name[64];
	char state[32];
};

/*
 * The entries of `local ERROR_CODES = { name = 'state', ... }` in the
 * library text; how many, or -1 when the table is not found.
 */
static int
lua_codes(struct lua_code *out, int max)
{
	const char *p, *end;
	int	    n = 0, used;

	p = strstr(comfyq_lua_library, "local ERROR_CODES = {");
	if (p == NULL || (end = strstr(p, "\n}")) == NULL)
		return (-1);
	p = strchr(p, '{') + 1;
	while (p < end && n < max) {
		while (p < end && strchr(" \t\n,", *p) != NULL)
			p++;
		if (p >= end)
			break;
		if (sscanf(p, "%63[a-z_] = '%31[a-z_]'%n", out[n].name,
			out[n].state, &used) != 2)
			return (-1);
		p += used;
		n++;
	}
	return (n);
}

static void
test_lua_and_c_agree(void)
{
	struct lua_code codes[LUA_CODES_MAX];
	enum errcode	c;
	int		n, i, found;

	n = lua_codes(codes, LUA_CODES_MAX);
	ASSERT_EQ(n, EC_COUNT);
	/* Every code of lib.lua is one of errcode.c's, with its state. */
	for (i = 0; i < n; i++) {
		if (errcode_parse(codes[i].name, &c) == -1)
			unit_fail(__FILE__, __LINE__,
			    "lua/lib.lua code '%s' is not in errcode.c",
			    codes[i].name);
		ASSERT_STREQ(
		    codes[i].state, c == EC_CANCELED ? "canceled" : "failed");
	}
	/* Every code of errcode.c is in lib.lua. */
	for (c = 0; c < EC_COUNT; c++) {
		for (found = 0, i = 0; i < n; i++)
			found += strcmp(codes[i].name, errcode_name(c)) == 0;
		if (found != 1)
			unit_fail(__FILE__, __LINE__,
			    "errcode.c code '%s' is in lua/lib.lua %d times",
			    errcode_name(c), found);
	}
}

const struct unit_test test_errcode[] = {
	{ "lua_and_c_agree", test_lua_and_c_agree },
	{ NULL, NULL },
};
