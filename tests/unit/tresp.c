/* Replies from RESP text (see tresp.h). */
#include <string.h>

#include "tresp.h"
#include "unit.h"

/* The reply RESP text s stands for; the caller frees it. */
redisReply *
tresp(const char *s)
{
	redisReader *rd = redisReaderCreate();
	void	    *r = NULL;

	redisReaderFeed(rd, s, strlen(s));
	if (redisReaderGetReply(rd, &r) != REDIS_OK || r == NULL)
		unit_fail(__FILE__, __LINE__, "bad RESP in the test: %s", s);
	redisReaderFree(rd);
	return (r);
}
