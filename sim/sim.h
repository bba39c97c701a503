/*
 * comfyq-sim: a ComfyUI API simulator. This header is the map of its
 * modules and the few types they share. The reference for every reply and
 * event is ComfyUI's server (see shared/comfyui-api.md in the workplace
 * docs, README "comfyq-sim").
 *
 *   main.c      configuration table, directories, signals, the loop
 *   http.c      evhttp listener, the route table, /api twins, CSRF guard
 *   reqparse.c  the parsing http.c and upload.c act on: routes, Host and
 *               Origin, JSON bodies, multipart forms (reqparse.h)
 *   api.c       /prompt /interrupt /free /system_stats /object_info ...
 *   queue.c     the pending heap (Python heapq order) and the running slot
 *   history.c   finished prompts, /history
 *   validate.c  validate_prompt(): the 400 bodies and node_errors
 *   validate_input.c the checks of one input: links, literals, files
 *   pyfmt.c     Python's str()/repr()/int()/float() for those messages
 *   nodes.c     the node classes: inputs, outputs, /object_info
 *   graph.c     a parsed view of one API-format graph
 *   exec.c      one state machine per prompt: steps, interrupt, faults
 *   execlist.c  ComfyUI's ExecutionList: which node runs next
 *   report.c    what a prompt tells its client and history
 *   work.c      what each node class does to values, time and files
 *   cache.c     the classic output cache (input signatures)
 *   output.c    output names and files: PNG, MP4, WEBP
 *   png.c       PNG encoding, a cache of encoded files
 *   paths.c     os.path.normpath/join/commonpath, " [output]" names
 *   notify.c    WebSocket events: status, per-client, silence
 *   ws_server.c the /ws upgrade and frames (wslay)
 *   view.c      /view    upload.c  /upload/image    faults.c  /sim/faults
 *   stats.c     /sim/stats: prompts, idle time between them, model loads
 *   omap.c      an insertion-ordered string map
 *   json.c      cJSON_PrintUnformatted's exact bytes, without its sprintf
 */
#ifndef COMFYQ_SIM_H
#define COMFYQ_SIM_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct event_base;
struct evhttp_request;

/* ---- configuration (main.c) ---- */
struct sim_cfg {
	char	 *listen;
	long long port;
	char	 *port_file;
	char	 *base_directory;
	char	 *output_directory;
	char	 *input_directory;
	char	 *temp_directory;
	long long step_ms;
	long long model_load_ms;
	long long node_ms;
	char	 *checkpoints;
	char	 *loras;
	char	 *controlnets;
	char	 *clip_vision;
	char	 *ipadapters;
	long long max_upload_size; /* MB */
	long long max_nodes;
	long long history_max;
	int	  cache_none;
	int	  progress_state;
	char	 *faults;
	long long fault_seed;
	char	 *comfyui_version;
	char	 *device_name;
	long long vram_mb;
	int	  log_level;
};

struct strlist {
	char **v;
	size_t n;
};

struct sim {
	struct sim_cfg	   cfg;
	struct event_base *base;
	char		   output_dir[4096]; /* absolute, no trailing / */
	char		   input_dir[4096];
	char		   temp_dir[4096];
	struct strlist checkpoints, loras, controlnets, clip_vision, ipadapters;
	int	       argc;
	char	     **argv;
};

extern struct sim sim;

/* ---- omap.c: insertion-ordered map of string keys ---- */
struct omap;
struct omap_ent;
struct omap	*omap_new(void);
void		 omap_free(struct omap *, void (*)(void *));
void		*omap_get(const struct omap *, const char *);
void		*omap_put(struct omap *, const char *, void *);
void		*omap_del(struct omap *, const char *);
size_t		 omap_len(const struct omap *);
struct omap_ent *omap_first(const struct omap *);
struct omap_ent *omap_next(const struct omap_ent *);
const char	*omap_key(const struct omap_ent *);
void		*omap_val(const struct omap_ent *);

/* ---- pyfmt.c: Python's formatting and conversions ---- */
struct pyexc {
	char type[64]; /* "KeyError", "TypeError", ... */
	char msg[512]; /* str(exception) */
};
void	    py_float_repr(double, char *, size_t);
char	   *py_str(const cJSON *);  /* str(v), malloc'd */
char	   *py_repr(const cJSON *); /* repr(v), malloc'd */
int	    py_int(const cJSON *, double *, struct pyexc *);
int	    py_float(const cJSON *, double *, struct pyexc *);
int	    py_truthy(const cJSON *);
const char *py_typename(const cJSON *);
void	    py_exc(struct pyexc *e, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- nodes.c: node classes ---- */
enum in_type {
	IT_LINK, /* a typed link: MODEL, IMAGE, ... (io names the type) */
	IT_INT,
	IT_FLOAT,
	IT_STRING,
	IT_BOOLEAN,
	IT_COMBO,
};

enum combo_src {
	CS_STATIC,
	CS_CHECKPOINTS,
	CS_LORAS,
	CS_CONTROLNETS,
	CS_INPUT_IMAGES,
};

#define IN_OPTIONAL   0x01
#define IN_MULTILINE  0x02
#define IN_DYNPROMPT  0x04
#define IN_UPLOAD     0x08 /* image_upload */
#define IN_CUSTOM_VAL 0x10 /* checked by the class' VALIDATE_INPUTS */
#define IN_HAS_MIN    0x20
#define IN_HAS_MAX    0x40
#define IN_MIN_INT    0x80 /* a FLOAT bound declared as a Python int */
#define IN_MAX_INT    0x100

struct node_input {
	const char	  *name;
	enum in_type	   type;
	const char	  *io;	 /* IT_LINK type, and the JSON type name */
	const char	  *also; /* a second accepted link type */
	enum combo_src	   src;
	const char *const *options; /* CS_STATIC, NULL-terminated */
	int		   flags;
	double		   min, max, step, round;
	const char	  *def; /* default as JSON text, or NULL */
};

enum node_kind {
	NK_CKPT,
	NK_CKPT_VIDEO,
	NK_CLIP_ENCODE,
	NK_EMPTY_LATENT,
	NK_KSAMPLER,
	NK_VAE_DECODE,
	NK_VAE_ENCODE,
	NK_SAVE_IMAGE,
	NK_PREVIEW_IMAGE,
	NK_LORA,
	NK_LORA_MODEL,
	NK_CNET_LOADER,
	NK_CNET_APPLY,
	NK_LOAD_IMAGE,
	NK_EMPTY_IMAGE,
	NK_INVERT,
	NK_SCALE,
	NK_SCALE_BY,
	NK_FACEID_LOADER,
	NK_FACEID,
	NK_SVD_COND,
	NK_VIDEO_CFG,
	NK_VHS_COMBINE,
	NK_SAVE_WEBP,
};

struct node_class {
	const char		*name;
	const char		*display;
	const char		*category;
	const char		*module;
	const char		*description;
	enum node_kind		 kind;
	int			 output_node;
	const struct node_input *inputs; /* ends with a NULL name */
	const char *const	*outputs;
	const char *const	*output_names; /* NULL: same as outputs */
	const char		*hidden;       /* "prompt,extra_pnginfo" */
};

const struct node_class *node_class_find(const char *);
const struct node_input *node_input_find(
    const struct node_class *, const char *);
size_t node_noutputs(const struct node_class *);
cJSON *node_options(const struct node_input *);
cJSON *node_input_config(const struct node_input *);
cJSON *node_object_info(const char *only);

/* ---- graph.c: a parsed API-format graph ---- */
struct gnode {
	const char		*id;
	cJSON			*json;
	cJSON			*inputs; /* object, or NULL */
	const struct node_class *cls;
};

struct graph {
	struct gnode *v;
	size_t	      n;
	struct omap  *index; /* id -> index + 1 (the first node of an id) */
};

struct graph *graph_new(cJSON *);
void	      graph_free(struct graph *);
int	      graph_find(const struct graph *, const char *);
int	      graph_link(const cJSON *, const char **, int *);

/* ---- prompts (queue.c) ---- */
struct prompt {
	char	     *id;
	double	      number;
	int	      number_float; /* an explicit "number": a Python float */
	cJSON	     *graph;	    /* coerced by validation */
	cJSON	     *extra;	    /* extra_data with client_id, create_time */
	cJSON	     *outputs;	    /* output node ids to execute */
	char	     *client_id;    /* extra.client_id when a string */
	struct graph *g;
};

void	       prompt_free(struct prompt *);
cJSON	      *prompt_item(const struct prompt *, int ref);
void	       queue_put(struct prompt *);
struct prompt *queue_get(void);
void	       queue_done(void);
struct prompt *queue_running(void);
int	       queue_remaining(void);
void	       queue_free_all(void);

/* ---- history.c ---- */
void history_put(const char *id, cJSON *entry);
void history_free_all(void);

/* ---- validate.c ---- */
struct vresult {
	int    ok;
	cJSON *error;	    /* the "error" object when !ok */
	cJSON *node_errors; /* always an object */
	cJSON *outputs;	    /* output ids to execute when ok */
	int    raised;	    /* a Python exception escaped: HTTP 500 */
};
void validate_prompt(cJSON *prompt, const cJSON *partial, struct vresult *);
void vresult_free(struct vresult *);

/* ---- work.c: values and what node classes do ---- */
enum vtype {
	V_NONE,
	V_MODEL,
	V_CLIP,
	V_VAE,
	V_COND,
	V_LATENT,
	V_IMAGE,
	V_MASK,
	V_CNET,
	V_CLIPV,
	V_IPADAPTER,
	V_FILES,
};

struct value {
	enum vtype  t;
	int	    w, h, batch;
	uint64_t    seed;
	int	    solid;
	uint32_t    rgb;
	int	    invert;
	char	   *path; /* IMAGE loaded from a file */
	const char *ckpt; /* MODEL: the checkpoint it needs on the GPU */
};

struct node_result {
	int	      refs;
	int	      n;
	struct value *out;
	cJSON	     *ui; /* an output node's UI dict, or NULL */
};

struct node_result *result_ref(struct node_result *);
void		    result_unref(struct node_result *);
const char	   *value_repr(const struct value *);

/* How a node's work goes: a wait, then steps with progress, then done. */
struct work {
	long long load_ms; /* no progress, no interrupt check */
	int	  steps;   /* progress events, each step_ms apart */
	long long step_ms;
	int	  progress_only; /* steps without waiting (VHS frames) */
};

struct exec_fault;
int  work_plan(const struct graph *, int, struct node_result **, struct work *,
     struct pyexc *);
int  work_finish(const struct graph *, int, struct node_result **,
     const char *prompt_id, const struct exec_fault *, struct node_result **,
     struct pyexc *);
void work_unload_models(void);
int  work_model_loaded(void);
const char *work_loaded_ckpt(void);

/* ---- cache.c ---- */
#define SIG_LEN 65
void		    cache_set_prompt(const struct graph *, char (*)[SIG_LEN]);
struct node_result *cache_get(const char *sig);
void		    cache_put(const char *sig, struct node_result *);
void		    cache_reset(void);

/* ---- output.c ---- */
#define OUT_BLACK     0x1
#define OUT_TRUNCATED 0x2
#define OUT_TINY      0x4
#define OUT_HUGE      0x8
int  output_images(const struct value *, const char *prefix, int temp,
     int faults, const char *same_name, cJSON *list, struct pyexc *);
int  output_video(const struct value *, double fps, const char *prefix,
     const char *format, int save_output, int pingpong, int faults, cJSON *list,
     struct pyexc *);
int  output_webp(const struct value *, double fps, const char *prefix,
     int faults, cJSON *list, struct pyexc *);
void output_reset(void);

/* ---- json.c: cJSON_PrintUnformatted's bytes, faster ---- */
char *json_print(const cJSON *, size_t *len);

/* ---- png.c: PNG encoding, with a cache of encoded files ---- */
struct membuf { /* bytes stb's writers (and output.c) append to */
	unsigned char *p;
	size_t	       len, cap;
};
void membuf_add(void *ctx, void *data, int size);
int  png_encode(const unsigned char *px, int w, int h, int level,
     unsigned char **out, size_t *len);
void png_reset(void);

/* ---- execlist.c: which node runs next ---- */
struct execlist;
struct execlist *execlist_new(const struct graph *, const int *cached);
void		 execlist_free(struct execlist *);
void		 execlist_add(struct execlist *, int);
int		 execlist_pick(struct execlist *);
void		 execlist_done(struct execlist *, int);
int		 execlist_pending(const struct execlist *, int);
int		 execlist_left(const struct execlist *);

/* ---- exec.c ---- */
void	    exec_kick(void);
void	    exec_interrupt(const char *prompt_id);
void	    exec_free_flags(int unload_models, int free_memory);
void	    exec_shutdown(void);
const char *exec_reconnect_node(const char *sid);

/* ---- faults.c ---- */
enum fault_kind {
	FX_CRASH,   /* the process exits */
	FX_HANG,    /* the node stops progressing; only an interrupt ends it */
	FX_OOM,	    /* torch.OutOfMemoryError, models unloaded */
	FX_ERROR,   /* an execution_error */
	FX_NO_FACE, /* IPAdapterFaceID: "InsightFace: No face detected." */
	FX_WS_DROP, /* the prompt's WebSocket is dropped mid-job */
	FX_SILENCE, /* nothing is sent to the prompt's socket */
	FX_BLACK,   /* all-black images */
	FX_TRUNCATED, /* PNGs cut in half */
	FX_TINY,      /* videos of 2 KB */
	FX_HUGE,      /* PNGs that declare 16384x16384 */
	FX_SAME_NAME, /* every image saved under one name */
	FX_PROMPT_500,
	FX_VIEW_SLOW,
	FX_N
};
#define FXB(k) (1u << (k))

struct exec_fault {
	unsigned fired;		  /* FXB() bits */
	char	 node[FX_N][128]; /* node id or class it hits; "": default */
	char	 error_type[128];
	char	 error_msg[512];
	int	 hang_step;
	char	 same_name[256]; /* FX_SAME_NAME: the file name */
};

int	  faults_init(const char *json, long long seed, char *err, size_t);
void	  faults_plan(struct exec_fault *);
int	  faults_prompt_500(void);
long long faults_view_delay(void);
void	  faults_free(void);
int	  route_faults(struct evhttp_request *, cJSON *);

/* ---- notify.c ---- */
void notify_status(void);
void notify_hello(const char *sid);
void notify_send(const char *sid, const char *type, cJSON *data);
void notify_mute(const char *sid);
int  notify_wanted(const char *sid);
void notify_unmute(void);

/* ---- ws_server.c ---- */
void ws_server_upgrade(struct evhttp_request *);
int  ws_server_send(const char *sid, const char *skip, const char *, size_t);
int  ws_server_reaches(const char *sid, const char *skip);
void ws_server_drop(const char *sid);
void ws_server_close_all(void);

/* ---- http.c ---- */
int	    http_start(char *err, size_t);
void	    http_stop(void);
void	    http_reply_json(struct evhttp_request *, int, cJSON *);
void	    http_reply_500(struct evhttp_request *);
const char *http_query(struct evhttp_request *, const char *);
int	    http_json_keys(const cJSON *j, const char *k1, const char *k2);
int    http_clear_delete(const cJSON *, void (*)(void), void (*)(const char *));
cJSON *api_features(void);

/* ---- route handlers: return 0 when replied, else a status for an empty
 * body ---- */
int route_prompt_get(struct evhttp_request *, cJSON *);
int route_prompt_post(struct evhttp_request *, cJSON *);
int route_queue_get(struct evhttp_request *, cJSON *);
int route_queue_post(struct evhttp_request *, cJSON *);
int route_interrupt(struct evhttp_request *, cJSON *);
int route_free(struct evhttp_request *, cJSON *);
int route_history_get(struct evhttp_request *, cJSON *);
int route_history_post(struct evhttp_request *, cJSON *);
int route_system_stats(struct evhttp_request *, cJSON *);
int route_sim_stats(struct evhttp_request *, cJSON *);
int route_object_info(struct evhttp_request *, cJSON *);
int route_features(struct evhttp_request *, cJSON *);
int route_models(struct evhttp_request *, cJSON *);
int route_embeddings(struct evhttp_request *, cJSON *);
int route_view(struct evhttp_request *, cJSON *);
int route_upload_image(struct evhttp_request *, cJSON *);

/* ---- stats.c: GET /sim/stats ---- */
void stats_prompt_posted(void);
void stats_prompt_start(void);
void stats_prompt_end(void);
void stats_model_load(void);
void stats_interrupt(void);
int  route_sim_stats(struct evhttp_request *, cJSON *);

/* The part of the path after a prefix route's prefix (/history/<id>). */
const char *http_path_rest(void);

void view_shutdown(void);

/* ---- paths.c: os.path as ComfyUI uses it ---- */
void path_norm(const char *, char *, size_t);
void path_join(const char *dir, const char *name, char *out, size_t len);
int  path_inside(const char *root, const char *path);
int  path_mkdirs(const char *);
int  path_annotated(const char *name, const char *def, char *, size_t);

#endif
