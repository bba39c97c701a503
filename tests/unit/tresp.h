/*
 * Replies written by hand in RESP, read with hiredis's own reader as a
 * connection would read them, for the tests of the reply decoders.
 */
#ifndef COMFYQ_TRESP_H
#define COMFYQ_TRESP_H

#include <hiredis/hiredis.h>

redisReply *tresp(const char *s);

#endif
