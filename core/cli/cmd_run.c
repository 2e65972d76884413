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
#include "task/dist.h"
#include "task/experiment.h"
#include "task/trainer.h"

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

/* Threads and the run directory's name (mspt_train makes it, with its
 * hparams.yaml, once the configuration has proved good). */
static int prepare(mspt_experiment *x, char *run_dir, const char **resume,
                   mspt_error *err)
{
    const mspt_node *threads = mspt_node_get(x->root, "threads");
    if (threads->i > 0) /* bounded by mspt_experiment_load */
        mspt_set_threads((int)threads->i);

    const mspt_node *rd = mspt_node_get(x->root, "run_dir");
    if (rd && rd->type == MSPT_NODE_STRING)
        snprintf(run_dir, PATH_MAX, "%s", rd->s);
    else
        default_run_dir(x->root, run_dir, PATH_MAX);
    const mspt_node *rs = mspt_node_get(x->root, "resume");
    if (!*resume && rs && rs->type == MSPT_NODE_STRING)
        *resume = rs->s;
    if (mspt_dist_rank() > 0)
        return 0;
    /* Never write over an earlier run by accident. */
    char last[PATH_MAX + 64];
    snprintf(last, sizeof last, "%s/checkpoints/last.safetensors", run_dir);
    struct stat st;
    if (!*resume && stat(last, &st) == 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "run_dir %s holds an earlier run (%s); continue it "
                              "with --resume, or choose another run_dir", run_dir,
                              last);
    return 0;
}

static const char help[] =
    "Usage: mspt run EXPERIMENT [--resume[=CHECKPOINT]] [OVERRIDE...]\n"
    "\n"
    "Pretrains as the experiment says: a Lua script returning the experiment\n"
    "table, or the hparams.yaml of an earlier run (no code runs).  The run\n"
    "directory gets hparams.yaml, metrics.csv, tb/, plots/ and checkpoints/.\n"
    "  --resume[=CKPT]  continue a stopped run from run_dir's\n"
    "                   checkpoints/last.safetensors (or CKPT)\n"
    "Overrides (Hydra's habits):\n"
    "  key.path=value   change a key (typed by the value it replaces)\n"
    "  +key.path=value  add a key\n"
    "  ~key.path        remove a key; ~scheduler: no scheduler (constant lr)\n"
    "Tables and lists are YAML flow syntax:\n"
    "  '+scheduler={_target_: linear, warmup_epochs: 2}'  'plots.samples=[0, 4]'\n";

int mspt_cmd_run(int argc, char **argv)
{
    if (mspt_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    const char *file = NULL, *resume = NULL;
    /* as many overrides as arguments (none is ever dropped) */
    const char **overrides = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *overrides);
    size_t noverrides = 0;
    if (!overrides)
        return mspt_cli_usage("run: out of memory");
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--resume")) {
            resume = "last";
        } else if (!strncmp(argv[i], "--resume=", 9)) {
            resume = argv[i] + 9;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            free(overrides);
            return mspt_cli_usage("run: unknown option '%s'", argv[i]);
        } else if (!file) {
            file = argv[i];
        } else if (!mspt_override_is(argv[i])) {
            free(overrides);
            return mspt_cli_usage("run: '%s' is not an override (key=value, "
                                  "+key=value or ~key)", argv[i]);
        } else {
            overrides[noverrides++] = argv[i];
        }
    }
    if (!file) {
        free(overrides);
        return mspt_cli_usage("run: missing experiment file");
    }
    mspt_error err = {0};
    mspt_experiment x;
    char run_dir[PATH_MAX];
    int rc = mspt_experiment_load(&x, file, overrides, noverrides, &err);
    if (!rc)
        rc = prepare(&x, run_dir, &resume, &err);
    rc = mspt_dist_agree(rc, &err); /* under MPI: every rank goes on, or none */
    if (!rc) {
        mspt_dist_bcast(run_dir, sizeof run_dir); /* rank 0's time stamp */
        printf("run_dir: %s\n", run_dir);
        fflush(stdout);
        rc = mspt_train(&x, run_dir, resume, &err);
    }
    mspt_experiment_free(&x);
    free(overrides);
    return rc ? mspt_cli_fail(&err) : 0;
}
