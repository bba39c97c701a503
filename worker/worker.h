/*
 * comfyq-worker: one process in front of one ComfyUI. This header is what
 * main.c sees of the worker: an opaque object made from the settings, on
 * one event loop. Each module keeps its own state private (struct worker
 * in worker_int.h, for the worker*.c files alone; struct run in run_int.h;
 * struct comfy in comfy.c; struct backend in backend.c), and a module
 * hears from its owner's side only through the callbacks it was given.
 *
 *   main.c     config table, signals, the loop
 *   worker.c   the worker object: made and freed, health, drain
 *   worker_claim.c   claim and acquire (BZPOPMIN on markers), the runs
 *   worker_record.c  register, heartbeat, the command connection
 *   worker_cancel.c  cancels at once (SUBSCRIBE ctl:<id>)
 *   worker_env.c     what a run is given (run_env): its Redis calls, its
 *              ComfyUI requests, its news back to the worker
 *   run.c      one job's state machine, from claim to complete/fail,
 *              with its stages in run_prepare.c, run_submit.c,
 *              run_fetch.c and run_report.c (run_int.h)
 *   comfy.c    ComfyUI's HTTP API and its WebSocket, events to runs
 *   backend.c  health of ComfyUI and starting it when it is down
 *   outputs.c  history outputs: which to fetch, validate, store
 *   errmap.c   ComfyUI failures to stable error codes
 *   jobfiles.c the files a graph reads, for the janitor's file cleanup
 * The graph a job sends comes from the workflow layer (shared/workflow/wfjob.h):
 * templates, LoRA and ControlNet surgery, input images.
 *
 * Includes within worker/ run one way: main.c -> worker.h -> settings.h;
 * worker*.c -> worker_int.h -> run.h, worker.h (and backend.h, comfy.h);
 * run*.c -> run_int.h -> run.h, outputs.h (and settings.h, errmap.h,
 * jobfiles.h); backend.c -> backend.h, comfy.h, settings.h. No run or
 * backend file includes a worker header.
 */
#ifndef COMFYQ_WORKER_H
#define COMFYQ_WORKER_H

#include "settings.h"

struct event_base;
struct wf_registry;
struct worker;

/* Takes the templates (main loads them while checking the settings). */
struct worker *worker_new(struct event_base *base, struct worker_cfg *cfg,
    struct wf_registry *workflows);
void	       worker_free(struct worker *w);
void	       worker_drain(struct worker *w);
void	       worker_reloaded(struct worker *w);

#endif
