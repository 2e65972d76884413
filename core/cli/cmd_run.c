/* mspt run EXPERIMENT [overrides...] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mspt/mspt.h>

#include "cli/cli.h"
#include "config/override.h"
#include "config/yaml_io.h"
#include "task/experiment.h"

/* mkdir -p */
static int make_dirs(const char *path, mspt_error *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "run_dir %s: %s", buf,
                                  strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "run_dir %s: %s", buf,
                              strerror(errno));
    return 0;
}

static void default_run_dir(const mspt_node *root, char *out, size_t size)
{
    const mspt_node *name = mspt_node_get(root, "name");
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(out, size, "runs/%s/%s", name ? name->s : "experiment", stamp);
}

/* Build every component once, as training will, so that configuration
 * mistakes the schemas cannot see (a data shape the encoder cannot take)
 * surface before anything runs. */
static int build_components(mspt_experiment *x, mspt_error *err)
{
    const mspt_node *seed = mspt_node_get(x->root, "seed");
    mspt_rng *rng = mspt_rng_new((uint64_t)seed->i);
    mspt_params *params = mspt_params_new();
    int rc = 0;

    const mspt_encoder_vt *enc = x->model.c->vtable;
    void *model = NULL;
    if ((rc = enc->create(&x->model.cfg, params, rng, &model, err)))
        goto done;
    printf("model      %s.%s: %zu parameters in %zu tensors\n",
           "encoders", x->model.c->name, mspt_params_numel(params),
           mspt_params_count(params));
    for (size_t i = 0; i < x->ndata; i++) {
        const mspt_dataset_vt *dvt = x->data[i].c->vtable;
        void *ds = NULL;
        if ((rc = dvt->create(&x->data[i].cfg, &ds, err)))
            goto done_model;
        size_t windows;
        int channels, samples;
        dvt->shape(ds, &windows, &channels, &samples);
        printf("%-10s datasets.%s: %zu windows of %d x %d\n", x->data[i].path,
               x->data[i].c->name, windows, channels, samples);
        rc = enc->check_input(model, channels, samples, err);
        dvt->destroy(ds);
        if (rc) {
            mspt_error_prefix(err, "%s", x->data[i].path);
            goto done_model;
        }
    }
    const mspt_loss_vt *lvt = x->criterion.c->vtable;
    void *loss = NULL;
    if ((rc = lvt->create(&x->criterion.cfg, &loss, err)))
        goto done_model;
    lvt->destroy(loss);
    printf("criterion  losses.%s\n", x->criterion.c->name);

    mspt_param_group group = {NULL, mspt_params_count(params), 0.0f, 0.0f};
    group.params = malloc((group.count ? group.count : 1) * sizeof *group.params);
    for (size_t i = 0; i < group.count; i++)
        group.params[i] = mspt_params_at(params, i);
    const mspt_optimizer_vt *ovt = x->optimizer.c->vtable;
    void *opt = NULL;
    rc = ovt->create(&x->optimizer.cfg, &group, 1, &opt, err);
    if (!rc) {
        ovt->destroy(opt);
        printf("optimizer  optimizers.%s\n", x->optimizer.c->name);
    }
    free(group.params);
    if (!rc && x->scheduler.c) {
        const mspt_scheduler_vt *svt = x->scheduler.c->vtable;
        mspt_schedule_info info = {1, 1, 1};
        void *sched = NULL;
        if (!(rc = svt->create(&x->scheduler.cfg, &info, &sched, err))) {
            svt->destroy(sched);
            printf("scheduler  schedulers.%s\n", x->scheduler.c->name);
        }
    }
done_model:
    enc->destroy(model);
done:
    mspt_params_free(params);
    mspt_rng_free(rng);
    return rc;
}

int mspt_cmd_run(int argc, char **argv)
{
    if (argc < 1)
        return mspt_cli_usage("run: missing experiment file");
    const char *file = argv[0];
    for (int i = 1; i < argc; i++)
        if (!mspt_override_is(argv[i]))
            return mspt_cli_usage("run: '%s' is not an override (key=value, "
                                  "+key=value or ~key)", argv[i]);
    mspt_error err = {0};
    mspt_experiment x;
    if (mspt_experiment_load(&x, file, (const char *const *)argv + 1,
                             (size_t)argc - 1, &err)) {
        mspt_experiment_free(&x);
        return mspt_cli_fail(&err);
    }
    const mspt_node *threads = mspt_node_get(x.root, "threads");
    if (threads->i < 0) {
        mspt_experiment_free(&x);
        mspt_error_set(&err, MSPT_ERR_CONFIG, "threads: must be >= 0 (0: all "
                       "cores), got %lld", threads->i);
        return mspt_cli_fail(&err);
    }
    if (threads->i > 0)
        mspt_set_threads((int)threads->i);

    char run_dir[PATH_MAX];
    const mspt_node *rd = mspt_node_get(x.root, "run_dir");
    if (rd)
        snprintf(run_dir, sizeof run_dir, "%s", rd->s);
    else
        default_run_dir(x.root, run_dir, sizeof run_dir);

    int rc = build_components(&x, &err);
    if (!rc)
        rc = make_dirs(run_dir, &err);
    char hp[PATH_MAX + 16];
    snprintf(hp, sizeof hp, "%s/hparams.yaml", run_dir);
    if (!rc)
        rc = mspt_yaml_save(x.root, hp, &err);
    if (!rc)
        printf("run_dir    %s (hparams.yaml written)\n", run_dir);
    mspt_experiment_free(&x);
    return rc ? mspt_cli_fail(&err) : 0;
}
