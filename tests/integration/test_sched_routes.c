/*
 * The scheduler's route table against its OpenAPI document: every route
 * the program serves (scheduler/sched_http.c) is a path and method of the
 * document it serves at /v1/openapi.json, and every path and method of
 * the document is a route. Both come from sched_core, as the program
 * links them.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "sched_http.h"
#include "unit.h"

static const char *const verbs[] = { "get", "post", "put", "delete", "patch",
	"head", "options", "trace" };

static void
test_routes_documented(void)
{
	cJSON *doc, *paths, *p;
	char   lower[16];
	size_t i, k;

	doc = cJSON_ParseWithLength(sched_openapi_json, sched_openapi_json_len);
	ASSERT_TRUE(doc != NULL);
	ASSERT_STREQ(
	    cJSON_GetObjectItemCaseSensitive(doc, "openapi")->valuestring,
	    "3.0.3");
	paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
	ASSERT_TRUE(cJSON_IsObject(paths));
	for (i = 0; i < http_route_count(); i++) {
		if (!http_route_documented(i))
			continue; /* ComfyUI's API, /comfy/ */
		snprintf(lower, sizeof lower, "%s", http_route_method(i));
		for (k = 0; lower[k] != '\0'; k++)
			lower[k] = (char)tolower((unsigned char)lower[k]);
		p = cJSON_GetObjectItemCaseSensitive(
		    paths, http_route_pattern(i));
		if (p == NULL ||
		    cJSON_GetObjectItemCaseSensitive(p, lower) == NULL)
			unit_fail(__FILE__, __LINE__,
			    "route %s %s is not in openapi.json",
			    http_route_method(i), http_route_pattern(i));
		unit_checks++;
	}
	cJSON_ArrayForEach(p, paths) {
		for (k = 0; k < sizeof verbs / sizeof verbs[0]; k++) {
			int found = 0;

			if (cJSON_GetObjectItemCaseSensitive(p, verbs[k]) ==
			    NULL)
				continue;
			for (i = 0; i < http_route_count(); i++)
				if (strcmp(http_route_pattern(i), p->string) ==
					0 &&
				    strcasecmp(
					http_route_method(i), verbs[k]) == 0)
					found = 1;
			if (!found)
				unit_fail(__FILE__, __LINE__,
				    "openapi.json has %s %s, the route table not",
				    verbs[k], p->string);
			unit_checks++;
		}
	}
	cJSON_Delete(doc);
}

int
main(void)
{
	static const struct unit_test t = { "routes_documented",
		test_routes_documented };

	log_init("test_sched_routes", LL_WARNING, 0);
	return (unit_run("sched_routes", &t) ? 0 : 1);
}
