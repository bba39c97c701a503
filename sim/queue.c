/*
 * The prompt queue, as ComfyUI's PromptQueue keeps it: a binary min-heap
 * on (number, prompt_id) maintained with the same sift steps as Python's
 * heapq, so GET /queue shows queue_pending in the same unsorted heap order
 * ComfyUI does, plus the one running prompt. Every change broadcasts a
 * `status` (queue_updated()); deleting the last pending prompt sends two,
 * as ComfyUI's delete_queue_item() does. POST /queue touches pending
 * prompts only.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "sim.h"
#include "xmalloc.h"

static struct prompt **heap;
static size_t	       nheap, capheap;
static struct prompt  *running;

void
prompt_free(struct prompt *p)
{
	if (p == NULL)
		return;
	free(p->id);
	free(p->client_id);
	cJSON_Delete(p->graph);
	cJSON_Delete(p->extra);
	cJSON_Delete(p->outputs);
	graph_free(p->g);
	free(p);
}

/* [number, prompt_id, prompt, extra_data, outputs_to_execute]. With ref
 * the array refers to the prompt's trees; without, it takes them. */
cJSON *
prompt_item(const struct prompt *cp, int ref)
{
	struct prompt *p = (struct prompt *)cp;
	cJSON	      *a = cJSON_CreateArray();
	char	       num[64];

	if (p->number_float) {
		py_float_repr(p->number, num, sizeof num);
		cJSON_AddItemToArray(a, cJSON_CreateRaw(num));
	} else
		cJSON_AddItemToArray(a, cJSON_CreateNumber(p->number));
	cJSON_AddItemToArray(a, cJSON_CreateString(p->id));
	if (ref) {
		cJSON_AddItemReferenceToArray(a, p->graph);
		cJSON_AddItemReferenceToArray(a, p->extra);
		cJSON_AddItemReferenceToArray(a, p->outputs);
		return (a);
	}
	cJSON_AddItemToArray(a, p->graph);
	cJSON_AddItemToArray(a, p->extra);
	cJSON_AddItemToArray(a, p->outputs);
	p->graph = p->extra = p->outputs = NULL;
	return (a);
}

/* The tuple order: number, then prompt_id. */
static int
q_less(const struct prompt *a, const struct prompt *b)
{
	if (a->number != b->number)
		return (a->number < b->number);
	return (strcmp(a->id, b->id) < 0);
}

static void
q_siftdown(size_t start, size_t pos)
{
	struct prompt *item = heap[pos];
	size_t	       parent;

	while (pos > start) {
		parent = (pos - 1) >> 1;
		if (!q_less(item, heap[parent]))
			break;
		heap[pos] = heap[parent];
		pos = parent;
	}
	heap[pos] = item;
}

static void
q_siftup(size_t pos)
{
	struct prompt *item = heap[pos];
	size_t	       start = pos, child = 2 * pos + 1;

	while (child < nheap) {
		if (child + 1 < nheap && !q_less(heap[child], heap[child + 1]))
			child++;
		heap[pos] = heap[child];
		pos = child;
		child = 2 * pos + 1;
	}
	heap[pos] = item;
	q_siftdown(start, pos);
}

void
queue_put(struct prompt *p)
{
	if (nheap == capheap) {
		capheap = capheap ? capheap * 2 : 16;
		heap = xrealloc(heap, capheap * sizeof *heap);
	}
	heap[nheap++] = p;
	q_siftdown(0, nheap - 1);
	notify_status();
	exec_kick();
}

/* Pops the first prompt and makes it the running one. */
struct prompt *
queue_get(void)
{
	struct prompt *top, *last;

	if (nheap == 0)
		return (NULL);
	last = heap[--nheap];
	if (nheap > 0) {
		top = heap[0];
		heap[0] = last;
		q_siftup(0);
	} else
		top = last;
	running = top;
	notify_status();
	return (top);
}

/* The running prompt has ended (the caller owns and frees it). */
void
queue_done(void)
{
	running = NULL;
}

struct prompt *
queue_running(void)
{
	return (running);
}

int
queue_remaining(void)
{
	return ((int)nheap + (running != NULL));
}

static void
queue_wipe(void)
{
	size_t i;

	for (i = 0; i < nheap; i++)
		prompt_free(heap[i]);
	nheap = 0;
	notify_status();
}

/* Deletes the first pending prompt with this id; 1 if one was found. */
static int
queue_delete(const char *id)
{
	size_t i;

	for (i = 0; i < nheap; i++) {
		if (strcmp(heap[i]->id, id) != 0)
			continue;
		if (nheap == 1)
			queue_wipe();
		else {
			prompt_free(heap[i]);
			memmove(&heap[i], &heap[i + 1],
			    (nheap - i - 1) * sizeof *heap);
			nheap--;
			for (i = nheap / 2; i-- > 0;)
				q_siftup(i);
		}
		notify_status();
		return (1);
	}
	return (0);
}

static cJSON *
queue_json(void)
{
	cJSON *o = cJSON_CreateObject(), *a;
	size_t i;

	a = cJSON_AddArrayToObject(o, "queue_running");
	if (running != NULL)
		cJSON_AddItemToArray(a, prompt_item(running, 1));
	a = cJSON_AddArrayToObject(o, "queue_pending");
	for (i = 0; i < nheap; i++)
		cJSON_AddItemToArray(a, prompt_item(heap[i], 1));
	return (o);
}

void
queue_free_all(void)
{
	size_t i;

	for (i = 0; i < nheap; i++)
		prompt_free(heap[i]);
	free(heap);
	heap = NULL;
	nheap = capheap = 0;
	running = NULL;
}

int
route_queue_get(struct evhttp_request *req, cJSON *body)
{
	(void)body;
	http_reply_json(req, 200, queue_json());
	return (0);
}

static void
queue_delete_id(const char *id)
{
	queue_delete(id);
}

/* POST /queue {"clear": true, "delete": [ids]}: 200, empty body. */
int
route_queue_post(struct evhttp_request *req, cJSON *body)
{
	(void)req;
	return (http_clear_delete(body, queue_wipe, queue_delete_id));
}
