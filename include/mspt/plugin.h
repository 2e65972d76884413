/* mspt — the plugin ABI.
 *
 * A plugin is a shared module exporting one function:
 *
 *     MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p);
 *
 * which calls mspt_plugin_register() once per component it provides and
 * returns 0.  Each component descriptor names its kind, its name, a one-line
 * summary, its parameter schema and the kind's vtable, and carries the ABI
 * major version it was built against (MSPT_COMPONENT_INIT fills it in); the
 * host loads components built for MSPT_ABI_OLDEST..MSPT_ABI_VERSION and
 * refuses others.
 *
 * ABI history: 2 added mspt_dataset_vt.live_channels (a dataset of ABI 1
 * has the first four members only; the host reads it as if live_channels
 * were NULL).  Every other vtable is unchanged since 1.
 *
 * Lifetimes: descriptors, schemas and vtables are static data of the module,
 * which stays loaded while the host runs. */
#ifndef MSPT_PLUGIN_H
#define MSPT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <mspt/config.h>
#include <mspt/error.h>
#include <mspt/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change of the structures below; MSPT_ABI_OLDEST is the
 * oldest ABI whose components this host still loads. */
#define MSPT_ABI_VERSION 2
#define MSPT_ABI_OLDEST 1

#define MSPT_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef enum mspt_kind {
    MSPT_KIND_ENCODER,
    MSPT_KIND_LOSS,
    MSPT_KIND_OPTIMIZER,
    MSPT_KIND_SCHEDULER,
    MSPT_KIND_DATASET,
    MSPT_KIND_COUNT
} mspt_kind;

/* Parameter types of a schema entry. */
typedef enum mspt_param_type {
    MSPT_PARAM_INT,
    MSPT_PARAM_FLOAT,   /* accepts integers too */
    MSPT_PARAM_BOOL,
    MSPT_PARAM_STRING,
    MSPT_PARAM_INTS,    /* list of integers, e.g. {2, 16} */
    MSPT_PARAM_FLOATS,
    MSPT_PARAM_STRINGS
} mspt_param_type;

/* One schema entry.  `def` is the default written as in a Lua experiment
 * ("79", "1e-3", "true", "\"cosine\"" or "cosine", "{2, 16}"); NULL marks a
 * required parameter.  Schemas end with an entry whose name is NULL. */
typedef struct mspt_param {
    const char *name;
    mspt_param_type type;
    const char *def;
    const char *help;
} mspt_param;

/* ---- vtables, one per kind -------------------------------------------- */

/* Encoder: builds its parameters from the config, maps a masked window to
 * its reconstruction.  forward gets x (B, C, T) with masked entries zero and
 * mask (B·C·T bytes, 1 = masked); it returns the reconstruction (B, C, T) and
 * optionally the latent embeddings, or NULL after an op error in ctx. */
typedef struct mspt_encoder_vt {
    int (*create)(const mspt_config *cfg, mspt_params *params, mspt_rng *rng,
                  void **self, mspt_error *err);
    /* Refuse a data shape the config cannot take, naming both shapes. */
    int (*check_input)(void *self, int channels, int samples,
                       mspt_error *err);
    mspt_tensor *(*forward)(void *self, mspt_ctx *ctx, mspt_tensor *x,
                            const uint8_t *mask, mspt_tensor **embed);
    void (*destroy)(void *self);
} mspt_encoder_vt;

/* Loss: a scalar from prediction and target over the selected elements
 * (mask NULL = all). */
typedef struct mspt_loss_vt {
    int (*create)(const mspt_config *cfg, void **self, mspt_error *err);
    mspt_tensor *(*forward)(void *self, mspt_ctx *ctx, mspt_tensor *pred,
                            mspt_tensor *target, const uint8_t *mask);
    void (*destroy)(void *self);
} mspt_loss_vt;

/* A group of parameters that share a learning rate and weight decay. */
typedef struct mspt_param_group {
    mspt_tensor **params;
    size_t count;
    float lr;           /* set by the trainer before each step */
    float weight_decay;
} mspt_param_group;

/* A named float buffer of optimizer state, for checkpoints. */
typedef struct mspt_state_buffer {
    char name[160];
    float *data;
    size_t numel;
} mspt_state_buffer;

/* Optimizer: updates parameters from their accumulated gradients. */
typedef struct mspt_optimizer_vt {
    int (*create)(const mspt_config *cfg, mspt_param_group *groups,
                  size_t ngroups, void **self, mspt_error *err);
    void (*step)(void *self);
    /* Fill up to cap state buffers; returns how many exist. */
    size_t (*state)(void *self, mspt_state_buffer *out, size_t cap);
    /* Optimizer step count (bias corrections), saved and restored. */
    long long (*get_steps)(void *self);
    void (*set_steps)(void *self, long long steps);
    void (*destroy)(void *self);
} mspt_optimizer_vt;

/* What a scheduler knows of the run when it is built. */
typedef struct mspt_schedule_info {
    long long steps_per_epoch; /* optimizer updates per epoch */
    long long max_epochs;      /* 0 if only max_steps bounds the run */
    long long max_steps;       /* total optimizer updates planned */
} mspt_schedule_info;

/* Scheduler: a pure function of progress, so resuming needs no state.
 * update counts optimizer updates since the start, epoch counts finished
 * epochs; timm's step_update(update) and step(epoch) both reduce to it. */
typedef struct mspt_scheduler_vt {
    int (*create)(const mspt_config *cfg, const mspt_schedule_info *info,
                  void **self, mspt_error *err);
    double (*lr)(void *self, long long update, long long epoch,
                 double base_lr);
    void (*destroy)(void *self);
} mspt_scheduler_vt;

/* Dataset: a list of windows, each (channels, samples) float32. */
typedef struct mspt_dataset_vt {
    int (*create)(const mspt_config *cfg, void **self, mspt_error *err);
    void (*shape)(void *self, size_t *windows, int *channels, int *samples);
    /* Copy window i into out (channels·samples floats); thread-safe. */
    int (*read)(void *self, size_t i, float *out, mspt_error *err);
    void (*destroy)(void *self);
    /* ABI 2.  The number of leading channels of window i that carry signal,
     * the rest being zero padding (1..channels); the trainer never masks
     * padding into the loss.  NULL: all channels, always.  Thread-safe. */
    int (*live_channels)(void *self, size_t i);
} mspt_dataset_vt;

/* ---- descriptors and registration ------------------------------------- */

typedef struct mspt_component {
    int abi_version;         /* MSPT_ABI_VERSION of the build; keep first */
    mspt_kind kind;
    const char *name;        /* "femba", "cosine", ... */
    const char *summary;     /* one line */
    const mspt_param *params;
    const void *vtable;      /* the kind's mspt_*_vt */
} mspt_component;

#define MSPT_COMPONENT_INIT MSPT_ABI_VERSION

typedef struct mspt_plugin mspt_plugin;

/* Register one component; non-zero if the host refused it (the reason is
 * reported by the host, naming the module). */
int mspt_plugin_register(mspt_plugin *p, const mspt_component *c);

/* The one entry point of a module. */
typedef int (*mspt_plugin_init_fn)(mspt_plugin *p);
#define MSPT_PLUGIN_ENTRY "mspt_plugin_init"

const char *mspt_kind_name(mspt_kind kind);

#ifdef __cplusplus
}
#endif
#endif
