/*
 * comfyq-sim: a ComfyUI API simulator (see sim.h for the modules and
 * README "comfyq-sim" for use). This file holds the configuration table,
 * makes the output/input/temp directories (the temp directory is emptied
 * at start, as ComfyUI does), and runs the loop until SIGINT or SIGTERM.
 * Queue, history and caches live in memory only: a restart loses them, as
 * a ComfyUI restart does.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <sys/stat.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "comfyq_paths.h"
#include "config.h"
#include "log.h"
#include "sim.h"
#include "xmalloc.h"

struct sim sim;

static const char *const log_levels[] = { "debug", "verbose", "notice",
	"warning", "error", NULL };

#define S(f) offsetof(struct sim_cfg, f)

static const struct cfg_entry sim_cfg_table[] = {
	{ "listen", CFG_STR, S(listen), "127.0.0.1", 0, 255, 0, 0, NULL, 0,
	    "Address to listen on (ComfyUI: --listen)." },
	{ "port", CFG_INT, S(port), "8188", 0, 65535, 0, 0, NULL, 0,
	    "Port (ComfyUI: --port); 0 picks a free one." },
	{ "port-file", CFG_STR, S(port_file), "", 0, 4095, 0, 0, NULL, 0,
	    "Write the port listened on into this file once ready." },
	{ "base-directory", CFG_STR, S(base_directory),
	    COMFYQ_DEFAULT_STATE_DIR "/sim", 0, 4095, 0, 0, NULL, 0,
	    "Holds output/, input/ and temp/ unless they are set." },
	{ "output-directory", CFG_STR, S(output_directory), "", 0, 4095, 0, 0,
	    NULL, 0, "Where SaveImage and VHS_VideoCombine write." },
	{ "input-directory", CFG_STR, S(input_directory), "", 0, 4095, 0, 0,
	    NULL, 0, "Where /upload/image writes and LoadImage reads." },
	{ "temp-directory", CFG_STR, S(temp_directory), "", 0, 4095, 0, 0, NULL,
	    0, "PreviewImage output; emptied at start." },
	{ "step-ms", CFG_INT, S(step_ms), "50", 0, 600000, 0, 0, NULL, 0,
	    "Time of one sampler step (KSampler runs steps x this)." },
	{ "model-load-ms", CFG_INT, S(model_load_ms), "1500", 0, 600000, 0, 0,
	    NULL, 0, "Time to load a checkpoint other than the loaded one." },
	{ "node-ms", CFG_INT, S(node_ms), "0", 0, 600000, 0, 0, NULL, 0,
	    "Time every other node takes." },
	{ "checkpoints", CFG_STR, S(checkpoints),
	    "sd_xl_base_1.0.safetensors,sd_xl_refiner_1.0.safetensors,svd_xt.safetensors",
	    0, 0, 0, 0, NULL, 0,
	    "Comma-separated files in models/checkpoints." },
	{ "loras", CFG_STR, S(loras),
	    "add-detail-xl.safetensors,pixel-art-xl.safetensors,ip-adapter-faceid-plusv2_sdxl_lora.safetensors",
	    0, 0, 0, 0, NULL, 0, "Comma-separated files in models/loras." },
	{ "controlnets", CFG_STR, S(controlnets),
	    "control-lora-canny-rank256.safetensors,control-lora-depth-rank256.safetensors",
	    0, 0, 0, 0, NULL, 0,
	    "Comma-separated files in models/controlnet." },
	{ "clip-vision", CFG_STR, S(clip_vision),
	    "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors", 0, 0, 0, 0, NULL, 0,
	    "Comma-separated files in models/clip_vision." },
	{ "ipadapters", CFG_STR, S(ipadapters),
	    "ip-adapter-faceid-plusv2_sdxl.bin", 0, 0, 0, 0, NULL, 0,
	    "Comma-separated files in models/ipadapter." },
	{ "max-upload-size", CFG_INT, S(max_upload_size), "100", 1, 4096, 0, 0,
	    NULL, 0, "Largest request body in MB (larger: 413)." },
	{ "max-nodes", CFG_INT, S(max_nodes), "10000", 1, 1000000, 0, 0, NULL,
	    0,
	    "Most nodes in a prompt (ComfyUI has no cap); more: 400 prompt_too_large." },
	{ "history-max", CFG_INT, S(history_max), "10000", 1, 1000000, 0, 0,
	    NULL, 0, "History entries kept (ComfyUI: 10000)." },
	{ "cache-none", CFG_BOOL, S(cache_none), "false", 0, 0, 0, 0, NULL, 0,
	    "Disable the output cache (ComfyUI: --cache-none)." },
	{ "progress-state", CFG_BOOL, S(progress_state), "true", 0, 0, 0, 0,
	    NULL, 0, "Send progress_state events (ComfyUI >= 2025-07)." },
	{ "faults", CFG_STR, S(faults), "", 0, 0, 0, 0, NULL, 0,
	    "Faults at start, as JSON (the body of POST /sim/faults)." },
	{ "fault-seed", CFG_INT, S(fault_seed), "1", 0, 1LL << 62, 0, 0, NULL,
	    0, "Seed of the fault draws." },
	{ "comfyui-version", CFG_STR, S(comfyui_version), "0.8.0", 0, 64, 0, 0,
	    NULL, 0, "Version /system_stats reports." },
	{ "device-name", CFG_STR, S(device_name),
	    "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", 0, 255, 0, 0,
	    NULL, 0, "Device name /system_stats reports." },
	{ "vram-mb", CFG_INT, S(vram_mb), "24564", 1, 1 << 24, 0, 0, NULL, 0,
	    "VRAM /system_stats reports." },
	{ "log-level", CFG_ENUM, S(log_level), "notice", 0, 0, 0, 0, log_levels,
	    0, "Log level." },
};

static const struct cfg_table sim_cfg_desc = {
	"comfyq-sim",
	"A ComfyUI API simulator: the same HTTP routes and WebSocket events,\n"
	"real PNG outputs, simulated time, and faults to inject.",
	sim_cfg_table,
	sizeof sim_cfg_table / sizeof sim_cfg_table[0],
	sizeof(struct sim_cfg),
};

static void
strlist_split(struct strlist *l, const char *csv)
{
	char *copy = xstrdup(csv), *tok, *save, *s, *e;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		for (s = tok; *s == ' '; s++)
			;
		for (e = s + strlen(s); e > s && e[-1] == ' '; e--)
			*--e = '\0';
		if (*s == '\0')
			continue;
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		l->v[l->n++] = xstrdup(s);
	}
	free(copy);
}

static void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/*
 * Makes the folder of setting name (set, else base-directory/sub) and
 * stores its absolute path; a bad one is "name: path: reason" in err.
 */
static int
sim_dir(const char *name, const char *set, const char *sub, char *out,
    size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX], abs[PATH_MAX];

	if (set != NULL && *set != '\0')
		snprintf(path, sizeof path, "%s", set);
	else {
		name = "base-directory";
		snprintf(
		    path, sizeof path, "%s/%s", sim.cfg.base_directory, sub);
	}
	if (path[0] != '/') {
		if (getcwd(abs, sizeof abs) == NULL) {
			snprintf(err, errlen, "getcwd: %s", strerror(errno));
			return (-1);
		}
		strncat(abs, "/", sizeof abs - strlen(abs) - 1);
		strncat(abs, path, sizeof abs - strlen(abs) - 1);
	} else
		snprintf(abs, sizeof abs, "%s", path);
	path_norm(abs, out, len);
	return (config_check_dir(name, out, CFG_DIR_OUT, err, errlen));
}

static int
sim_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0 && remove(path) == -1)
		log_warn("%s", path);
	return (0);
}

static void
sim_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGINT:
	case SIGTERM:
		log_notice("signal %d: stopping", (int)sig);
		event_base_loopexit(sim.base, NULL);
		break;
	case SIGHUP:
		log_notice(
		    "SIGHUP: nothing to reload (faults change through POST /sim/faults)");
		break;
	default:
		fatalx("unexpected signal %d", (int)sig);
	}
}

int
main(int argc, char **argv)
{
	struct event	    *ev_int, *ev_term, *ev_hup;
	struct event_config *ecfg;
	int		     precise;
	char		     err[1024];
	const char	    *fmt = getenv("COMFYQ_LOG_FORMAT");
	int		     check = 0;

	sim.argc = argc;
	sim.argv = argv;
	log_init("comfyq-sim", LL_NOTICE, fmt != NULL && !strcmp(fmt, "json"));
	switch (
	    config_load(&sim_cfg_desc, &sim.cfg, argc, argv, err, sizeof err)) {
	case CONFIG_EXIT_OK:
		config_free(&sim_cfg_desc, &sim.cfg);
		return (0);
	case CONFIG_ERROR:
		fprintf(stderr, "comfyq-sim: %s\n", err);
		config_free(&sim_cfg_desc, &sim.cfg);
		return (2);
	case CONFIG_CHECK:
		check = 1;
		break;
	case CONFIG_OK:
		break;
	}
	log_level = sim.cfg.log_level;
	if (sim_dir("output-directory", sim.cfg.output_directory, "output",
		sim.output_dir, sizeof sim.output_dir, err, sizeof err) == -1 ||
	    sim_dir("input-directory", sim.cfg.input_directory, "input",
		sim.input_dir, sizeof sim.input_dir, err, sizeof err) == -1 ||
	    sim_dir("temp-directory", sim.cfg.temp_directory, "temp",
		sim.temp_dir, sizeof sim.temp_dir, err, sizeof err) == -1 ||
	    faults_init(sim.cfg.faults, sim.cfg.fault_seed, err, sizeof err) ==
		-1) {
		fprintf(stderr, "comfyq-sim: %s\n", err);
		faults_free();
		config_free(&sim_cfg_desc, &sim.cfg);
		return (2);
	}
	if (check) {
		printf("comfyq-sim: configuration OK\n");
		faults_free();
		config_free(&sim_cfg_desc, &sim.cfg);
		return (0);
	}
	nftw(sim.temp_dir, sim_rm, 16, FTW_DEPTH | FTW_PHYS);
	strlist_split(&sim.checkpoints, sim.cfg.checkpoints);
	strlist_split(&sim.loras, sim.cfg.loras);
	strlist_split(&sim.controlnets, sim.cfg.controlnets);
	strlist_split(&sim.clip_vision, sim.cfg.clip_vision);
	strlist_split(&sim.ipadapters, sim.cfg.ipadapters);
	signal(SIGPIPE, SIG_IGN);
	/* precise timers (a timerfd, re-armed every turn of the loop):
	 * --step-ms and the other delays mean what they say, to the
	 * microsecond; with no delay to simulate, the loop's turns go without
	 * that syscall and the few timers left (faults) round up to the
	 * millisecond. The changelist folds a turn's read/write toggles of a
	 * connection (evhttp makes several a request) into one epoll_ctl. */
	precise = sim.cfg.step_ms > 0 || sim.cfg.model_load_ms > 0 ||
	    sim.cfg.node_ms > 0;
	if ((ecfg = event_config_new()) == NULL ||
	    (precise &&
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER) ==
		    -1) ||
	    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) ==
		-1 ||
	    (sim.base = event_base_new_with_config(ecfg)) == NULL)
		fatalx("cannot create the event loop");
	event_config_free(ecfg);
	ev_int = evsignal_new(sim.base, SIGINT, sim_signal, NULL);
	ev_term = evsignal_new(sim.base, SIGTERM, sim_signal, NULL);
	ev_hup = evsignal_new(sim.base, SIGHUP, sim_signal, NULL);
	if (ev_int == NULL || ev_term == NULL || ev_hup == NULL)
		fatalx("cannot set signal handlers");
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_hup, NULL);
	config_dump(&sim_cfg_desc, &sim.cfg);
	if (http_start(err, sizeof err) == -1) {
		fprintf(stderr, "comfyq-sim: %s\n", err);
		return (1);
	}
	log_notice("output %s, input %s, temp %s", sim.output_dir,
	    sim.input_dir, sim.temp_dir);
	event_base_dispatch(sim.base);

	exec_shutdown();
	http_stop();
	queue_free_all();
	history_free_all();
	cache_reset();
	output_reset();
	faults_free();
	strlist_free(&sim.checkpoints);
	strlist_free(&sim.loras);
	strlist_free(&sim.controlnets);
	strlist_free(&sim.clip_vision);
	strlist_free(&sim.ipadapters);
	event_free(ev_int);
	event_free(ev_term);
	event_free(ev_hup);
	event_base_free(sim.base);
	config_free(&sim_cfg_desc, &sim.cfg);
	log_notice("stopped");
	return (0);
}
