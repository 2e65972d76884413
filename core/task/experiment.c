/* Loading and resolving an experiment, see experiment.h. */
#include "task/experiment.h"

#include <libgen.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "config/lua_config.h"
#include "config/override.h"
#include "config/yaml_io.h"
#include "task/normalize.h"
#include "engine/params.h"
#include "task/dist.h"

const mspt_param mspt_experiment_params[] = {
    {"name", MSPT_PARAM_STRING, "experiment", "name of the run"},
    {"seed", MSPT_PARAM_INT, "42", "seed of every random choice of the run"},
    {"threads", MSPT_PARAM_INT, "0", "compute threads (0: all cores)"},
    {"run_dir", MSPT_PARAM_STRING, MSPT_NO_DEFAULT,
     "directory for hparams.yaml, metrics and checkpoints "
     "(default runs/<name>/<date>-<time>)"},
    {"plugin_path", MSPT_PARAM_STRINGS, "{}",
     "extra plugin directories or module files, searched first"},
    {"resume", MSPT_PARAM_STRING, MSPT_NO_DEFAULT,
     "\"last\" (run_dir's last checkpoint) or a checkpoint path to continue"},
    {"pretrained_checkpoint_path", MSPT_PARAM_STRING, MSPT_NO_DEFAULT,
     "safetensors file whose model weights initialise the encoder"},
    {"pretrained_strict", MSPT_PARAM_BOOL, "true",
     "pretrained weights must match the model exactly (false: load what "
     "matches, list the rest)"},

    {"trainer.max_epochs", MSPT_PARAM_INT, "10", "epochs to train"},
    {"trainer.max_steps", MSPT_PARAM_INT, "-1",
     "stop after this many optimizer updates (-1: no limit)"},
    {"trainer.batch_size", MSPT_PARAM_INT, "32", "windows per batch"},
    {"trainer.train_val_split", MSPT_PARAM_FLOAT, "0.8",
     "fraction of each dataset used for training (seeded split; 1: no validation)"},
    {"trainer.shuffle", MSPT_PARAM_BOOL, "true", "reshuffle training windows each epoch"},
    {"trainer.drop_last", MSPT_PARAM_BOOL, "true", "drop a last incomplete training batch"},
    {"trainer.gradient_clip_val", MSPT_PARAM_FLOAT, "0",
     "clip the global gradient L2 norm to this value (0: off)"},
    {"trainer.accumulate_grad_batches", MSPT_PARAM_INT, "1",
     "batches whose gradients are averaged into one update"},
    {"trainer.val_check_interval", MSPT_PARAM_INT, "0",
     "also validate every N updates (0: at epoch ends only)"},
    {"trainer.limit_train_batches", MSPT_PARAM_INT, "0",
     "at most this many training batches per epoch (0: all)"},
    {"trainer.limit_val_batches", MSPT_PARAM_INT, "0",
     "at most this many validation batches (0: all)"},
    {"trainer.log_every_n_steps", MSPT_PARAM_INT, "10", "train_loss logging period"},
    {"trainer.num_workers", MSPT_PARAM_INT, "2", "data prefetch threads (0: none)"},
    {"trainer.save_last", MSPT_PARAM_BOOL, "true", "keep checkpoints/last.safetensors"},
    {"trainer.save_top_k", MSPT_PARAM_INT, "1",
     "keep the k best checkpoints by monitor (0: none)"},
    {"trainer.monitor", MSPT_PARAM_STRING, "val_loss",
     "metric ranking checkpoints (val_loss needs a validation split)"},
    {"trainer.mode", MSPT_PARAM_STRING, "min", "\"min\" or \"max\" of monitor is best"},
    {"trainer.progress_bar", MSPT_PARAM_STRING, "auto",
     "\"auto\" (on a terminal), \"on\" or \"off\""},

    {"masking.patch_size", MSPT_PARAM_INTS, "{1, 64}",
     "masked patch {H channels, W samples}"},
    {"masking.masking_ratio", MSPT_PARAM_FLOAT, "0.5", "fraction of patches masked"},
    {"masking.per_batch", MSPT_PARAM_BOOL, "false",
     "one mask shared by the batch (the reference code) instead of one per window"},
    {"masking.unmasked_loss_coeff", MSPT_PARAM_FLOAT, "0",
     "weight of the same loss on visible entries, added"},

    {"logger", MSPT_PARAM_STRINGS, "{\"tensorboard\", \"csv\"}",
     "where metrics go: \"tensorboard\" (run_dir/tb) and/or \"csv\" (metrics.csv)"},
    {"plots.samples", MSPT_PARAM_INTS, "{0, 1, 2}",
     "validation windows whose reconstruction is plotted each epoch (the "
     "default keeps those the split has)"},
    {"plots.channels", MSPT_PARAM_INTS, "{0}", "channels plotted for each sample"},
    {"plots.width", MSPT_PARAM_INT, "900", "plot width in pixels"},
    {"plots.height", MSPT_PARAM_INT, "320", "plot height in pixels"},

    {"input_normalization.normalize", MSPT_PARAM_BOOL, "false",
     "normalise each window's channels before masking"},
    {"input_normalization.mode", MSPT_PARAM_STRING, "affine",
     "\"affine\" (x - lower) / (upper - lower + 1e-8), the seed's "
     "RobustQuartileNormalize; \"quantile\" per-channel robust scaling; "
     "\"zscore\" per channel (LUNA); \"minmax\" per channel to [-1, 1] (TinyMyo)"},
    {"input_normalization.lower", MSPT_PARAM_FLOAT, "-20",
     "affine: the value mapped to 0 (FEMBA: -20)"},
    {"input_normalization.upper", MSPT_PARAM_FLOAT, "20",
     "affine: the value mapped to 1 (FEMBA: 20)"},
    {"input_normalization.quartile_normalization_lower_val", MSPT_PARAM_FLOAT,
     MSPT_NO_DEFAULT, "BioFoundation's name of lower"},
    {"input_normalization.quartile_normalization_upper_val", MSPT_PARAM_FLOAT,
     MSPT_NO_DEFAULT, "BioFoundation's name of upper"},
    {"input_normalization.quantile_lower", MSPT_PARAM_FLOAT, "0.025",
     "quantile: the channel's quantile mapped to 0"},
    {"input_normalization.quantile_upper", MSPT_PARAM_FLOAT, "0.975",
     "quantile: the channel's quantile mapped to 1"},
    {NULL, 0, NULL, NULL}};

/* Keys of the optimizer slot that the core reads, beside the optimizer's
 * own (every optimizer declares lr and weight_decay). */
const mspt_param mspt_optimizer_slot_params[] = {
    {"differential_lr", MSPT_PARAM_BOOL, "false",
     "give the reconstruction head its own learning rate"},
    {"head_lr", MSPT_PARAM_FLOAT, MSPT_NO_DEFAULT,
     "learning rate of the head with differential_lr (default lr·head_lr_scale)"},
    {"head_lr_scale", MSPT_PARAM_FLOAT, "1", "head lr multiplier with differential_lr"},
    {"no_decay_bias_norm", MSPT_PARAM_BOOL, "false",
     "no weight decay on biases, norm weights and embeddings"},
    {NULL, 0, NULL, NULL}};

/* Keys of the scheduler slot that the core reads, beside the scheduler's. */
const mspt_param mspt_scheduler_slot_params[] = {
    {"epoch_lag", MSPT_PARAM_INT, "0",
     "epochs the schedule trails: epoch e trains at the rate of epoch "
     "max(e - epoch_lag, 0); 1 is PyTorch Lightning stepping an epoch scheduler "
     "after each epoch with the epoch just finished (BioFoundation's "
     "interval: epoch tasks)"},
    {NULL, 0, NULL, NULL}};

typedef struct slot_def {
    const char *key;
    mspt_kind kind;
    int required;
    int list_ok;
    const mspt_param *common; /* slot keys the core reads, or NULL */
} slot_def;

static const slot_def slot_defs[] = {
    {"model", MSPT_KIND_ENCODER, 1, 0, NULL},
    {"criterion", MSPT_KIND_LOSS, 1, 0, NULL},
    {"optimizer", MSPT_KIND_OPTIMIZER, 1, 0, mspt_optimizer_slot_params},
    {"scheduler", MSPT_KIND_SCHEDULER, 0, 0, mspt_scheduler_slot_params},
    {"data", MSPT_KIND_DATASET, 1, 1, NULL},
};
#define NSLOTS (sizeof slot_defs / sizeof slot_defs[0])
static const char *const slot_keys[] = {"model", "criterion", "optimizer",
                                        "scheduler", "data", NULL};

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* Make a path relative to the experiment absolute, in place in the tree so
 * that hparams.yaml replays from anywhere. */
static void absolutize(mspt_experiment *x, mspt_node *str)
{
    if (str->s[0] == '/')
        return;
    char buf[PATH_MAX * 2];
    snprintf(buf, sizeof buf, "%s/%s", x->dir, str->s);
    free(str->s);
    str->s = strdup(buf);
}

/* Each component table of the experiment, with its slot definition. */
typedef int (*table_fn)(mspt_experiment *x, const slot_def *d,
                        const char *path, mspt_node *table, size_t index,
                        mspt_error *err);

static int each_table(mspt_experiment *x, table_fn fn, mspt_error *err)
{
    for (size_t s = 0; s < NSLOTS; s++) {
        const slot_def *d = &slot_defs[s];
        mspt_node *v = mspt_node_get(x->root, d->key);
        if (v && v->type == MSPT_NODE_FUNCTION && d->kind == MSPT_KIND_SCHEDULER) {
            x->scheduler_fn = v; /* function(step, epoch, base_lr) */
            continue;
        }
        if (!v || v->type == MSPT_NODE_NULL) {
            if (d->required)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: missing (an %s table with _target_)",
                                      d->key, mspt_kind_name(d->kind));
            continue;
        }
        if (d->list_ok && v->type == MSPT_NODE_LIST) {
            if (v->n == 0 || v->n > MSPT_MAX_DATASETS)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: expected 1 to %d dataset tables",
                                      d->key, MSPT_MAX_DATASETS);
            for (size_t i = 0; i < v->n; i++) {
                char path[64];
                snprintf(path, sizeof path, "%s.%zu", d->key, i);
                int rc = fn(x, d, path, v->items[i], i, err);
                if (rc)
                    return rc;
            }
            continue;
        }
        int rc = fn(x, d, d->key, v, 0, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_target(mspt_experiment *x, const slot_def *d,
                        const char *path, mspt_node *t, size_t i,
                        mspt_error *err)
{
    (void)x;
    (void)i;
    if (t->type != MSPT_NODE_MAP)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: expected a table with _target_, got %s", path,
                              mspt_node_type_name(t->type));
    mspt_node *target = mspt_node_get(t, "_target_");
    if (!target)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s._target_: missing (the %s to build)", path,
                              mspt_kind_name(d->kind));
    if (target->type != MSPT_NODE_STRING || !*target->s)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s._target_: expected a component name or a "
                              "module path", path);
    if (mspt_target_is_path(target->s))
        absolutize(x, target);
    return 0;
}

static int load_target_module(mspt_experiment *x, const slot_def *d,
                              const char *path, mspt_node *t, size_t i,
                              mspt_error *err)
{
    (void)d;
    (void)i;
    const char *target = mspt_node_get(t, "_target_")->s;
    if (!mspt_target_is_path(target))
        return 0;
    char file[PATH_MAX];
    mspt_target_split(target, file, sizeof file);
    int rc = mspt_registry_load_file(x->reg, file, -1, err);
    if (rc)
        mspt_error_prefix(err, "%s._target_", path);
    return rc;
}

static int resolve_slot(mspt_experiment *x, const slot_def *d,
                        const char *path, mspt_node *t, size_t i,
                        mspt_error *err)
{
    const char *target = mspt_node_get(t, "_target_")->s;
    const mspt_component *c = NULL;
    if (mspt_target_is_path(target)) {
        char file[PATH_MAX];
        const char *name = mspt_target_split(target, file, sizeof file);
        const mspt_component *found[16];
        size_t n = mspt_registry_from_module(x->reg, file, d->kind, found, 16);
        for (size_t k = 0; k < n && k < 16; k++)
            if (!name || !strcmp(found[k]->name, name))
                c = c ? NULL : found[k];
        if (!c)
            return mspt_error_set(
                err, MSPT_ERR_CONFIG, "%s._target_: %s %s", path, file,
                n == 0 ? "registers no component of this kind"
                : name ? "registers no component of that name"
                       : "registers several; name one as path.so:name");
    } else {
        /* "femba" or "encoders.femba" */
        const char *name = target;
        const char *dot = strchr(target, '.');
        if (dot) {
            char kind[32];
            snprintf(kind, sizeof kind, "%.*s", (int)(dot - target), target);
            int k = mspt_kind_from_plural(kind);
            if (k < 0)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s._target_: '%s' names unknown kind "
                                      "'%s'", path, target, kind);
            if ((mspt_kind)k != d->kind)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s._target_: '%s' is a%s %s, but %s "
                                      "takes an %s", path, target,
                                      k == MSPT_KIND_ENCODER ? "n" : "",
                                      mspt_kind_name(k), d->key,
                                      mspt_kind_name(d->kind));
            name = dot + 1;
        }
        c = mspt_registry_find(x->reg, d->kind, name, err);
        if (!c)
            return mspt_error_prefix(err, "%s._target_", path);
    }
    mspt_slot *slot = d->kind == MSPT_KIND_ENCODER     ? &x->model
                      : d->kind == MSPT_KIND_LOSS      ? &x->criterion
                      : d->kind == MSPT_KIND_OPTIMIZER ? &x->optimizer
                      : d->kind == MSPT_KIND_SCHEDULER ? &x->scheduler
                                                       : &x->data[i];
    if (d->kind == MSPT_KIND_DATASET)
        x->ndata = i + 1;
    snprintf(slot->path, sizeof slot->path, "%s", path);
    slot->c = c;
    mspt_config_init(&slot->cfg, path, t);
    return 0;
}

static mspt_slot *slot_of(mspt_experiment *x, const char *path)
{
    mspt_slot *all[] = {&x->model, &x->criterion, &x->optimizer, &x->scheduler};
    for (size_t i = 0; i < 4; i++)
        if (all[i]->c && !strcmp(all[i]->path, path))
            return all[i];
    for (size_t i = 0; i < x->ndata; i++)
        if (!strcmp(x->data[i].path, path))
            return &x->data[i];
    return NULL;
}

static int fill_slot(mspt_experiment *x, const slot_def *d, const char *path,
                     mspt_node *t, size_t i, mspt_error *err)
{
    (void)i;
    (void)err;
    const mspt_param *schemas[] = {slot_of(x, path)->c->params, d->common, NULL};
    mspt_schema_fill_defaults(t, schemas);
    return 0;
}

static int validate_slot(mspt_experiment *x, const slot_def *d,
                         const char *path, mspt_node *t, size_t i,
                         mspt_error *err)
{
    (void)i;
    static const char *const skip[] = {"_target_", NULL};
    mspt_slot *s = slot_of(x, path);
    const mspt_param *schemas[] = {s->c->params, d->common, NULL};
    int rc = mspt_schema_validate(t, path, schemas, skip, err);
    mspt_config_init(&s->cfg, path, t);
    return rc;
}

/* threads: 0 (all cores) up to the engine's bound, said with its reason. */
static int check_threads(const mspt_node *root, mspt_error *err)
{
    long long n = mspt_node_get(root, "threads")->i;
    int max = mspt_max_threads();
    if (n < 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "threads: must be >= 0 (0: "
                              "all cores), got %lld", n);
    if (n > max)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "threads: %lld is more than %d (4 per online CPU, "
                              "%d online; 0 uses all cores)", n, max, max / 4);
    return 0;
}

static int load_tree(mspt_experiment *x, const char *path, mspt_error *err)
{
    if (has_suffix(path, ".lua")) {
        x->root = mspt_lua_load(path, &x->L, err);
    } else if (has_suffix(path, ".yaml") || has_suffix(path, ".yml")) {
        x->root = mspt_yaml_load(path, err);
        if (x->root && x->root->type != MSPT_NODE_MAP) {
            mspt_error_set(err, MSPT_ERR_CONFIG,
                           "%s: expected a mapping of experiment keys", path);
            mspt_node_free(x->root);
            x->root = NULL;
        }
    } else {
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: expected an experiment .lua or .yaml file",
                              path);
    }
    return x->root ? 0 : MSPT_ERR_CONFIG;
}

int mspt_experiment_load(mspt_experiment *x, const char *path,
                         const char *const *overrides, size_t noverrides,
                         mspt_error *err)
{
    memset(x, 0, sizeof *x);
    snprintf(x->source, sizeof x->source, "%s", path);
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    if (!realpath(dirname(buf), x->dir))
        snprintf(x->dir, sizeof x->dir, ".");
    int rc = load_tree(x, path, err);
    if (rc)
        return rc;

    /* Overrides that add, remove or replace a component come first, so
     * that components are looked up in the tree the run will use. */
    for (size_t i = 0; i < noverrides; i++)
        if (mspt_override_is_structural(overrides[i], slot_keys) &&
            (rc = mspt_override_apply(x->root, overrides[i], err)))
            return rc;
    if ((rc = each_table(x, check_target, err)))
        return rc;

    /* Plugins: explicit module paths, plugin_path, then the default search. */
    x->reg = mspt_registry_new();
    if ((rc = each_table(x, load_target_module, err)))
        return rc;
    mspt_node *pp = mspt_node_get(x->root, "plugin_path");
    const char *extra[64];
    size_t nextra = 0;
    if (pp && pp->type == MSPT_NODE_LIST)
        for (size_t i = 0; i < pp->n && nextra < 64; i++)
            if (pp->items[i]->type == MSPT_NODE_STRING) {
                absolutize(x, pp->items[i]);
                extra[nextra++] = pp->items[i]->s;
            }
    if ((rc = mspt_registry_load_default(x->reg, extra, nextra, err)))
        return rc;
    if ((rc = each_table(x, resolve_slot, err)))
        return rc;

    /* Defaults first, so that a.b=3 may name a key left at its default. */
    const mspt_param *core[] = {mspt_experiment_params, NULL};
    if ((rc = mspt_norm_aliases(x->root, 1, err)))
        return rc;
    int had_samples = mspt_node_at(x->root, "plots.samples") != NULL;
    mspt_schema_fill_defaults(x->root, core);
    /* an override replaces the node: the default is the node filled here */
    const mspt_node *samples = had_samples ? NULL : mspt_node_at(x->root, "plots.samples");
    if ((rc = each_table(x, fill_slot, err)))
        return rc;
    for (size_t i = 0; i < noverrides; i++)
        if (!mspt_override_is_structural(overrides[i], slot_keys) &&
            (rc = mspt_override_apply(x->root, overrides[i], err)))
            return rc;
    if ((rc = mspt_norm_aliases(x->root, 0, err)) ||
        (rc = mspt_schema_validate(x->root, "", core, slot_keys, err)))
        return rc;
    x->plot_samples_default = samples && samples == mspt_node_at(x->root, "plots.samples");
    if ((rc = check_threads(x->root, err)))
        return rc;
    if ((rc = each_table(x, validate_slot, err)))
        return rc;
    /* Stray modules the experiment does not need: said once, by rank 0
     * (when the experiment needs one, the error above says it instead). */
    if (mspt_dist_rank() == 0)
        mspt_registry_warn_skipped(x->reg);
    return 0;
}

int mspt_slot_built(const mspt_slot *s, const mspt_params *ps, int rc,
                    mspt_error *err)
{
    const char *key = mspt_config_undeclared(&s->cfg);
    const char *refused = ps ? mspt_params_refused(ps) : NULL;
    if (key)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.%s: %s.%s reads this key "
                              "but does not declare it among its parameters (a "
                              "plugin bug: add it to the component's schema)",
                              s->path, key, mspt_kind_plural(s->c->kind), s->c->name);
    if (refused)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s.%s: %s (a plugin bug)",
                              s->path, mspt_kind_plural(s->c->kind), s->c->name,
                              refused);
    if (rc && s->c->kind == MSPT_KIND_DATASET) /* data the run cannot use is */
        rc = err->status = MSPT_ERR_CONFIG;    /* an input error: exit 2 */
    return rc;
}

void mspt_experiment_free(mspt_experiment *x)
{
    mspt_node_free(x->root);
    mspt_registry_free(x->reg);
    if (x->L)
        lua_close(x->L);
    memset(x, 0, sizeof *x);
}
