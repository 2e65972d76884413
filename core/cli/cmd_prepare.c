/* mspt prepare EXPERIMENT [overrides...]: build the experiment's datasets
 * once, so that those with a preprocessing cache (EDF) fill it ahead of
 * training; prints what each dataset holds. */
#include <stdio.h>
#include <string.h>

#include <mspt/mspt.h>

#include "cli/cli.h"
#include "config/override.h"
#include "task/experiment.h"

static const char help[] =
    "Usage: mspt prepare EXPERIMENT [OVERRIDE...]\n"
    "\n"
    "Builds the experiment's datasets once, so that those with a\n"
    "preprocessing cache (EDF) fill it ahead of training, and prints what\n"
    "each holds.  Overrides as for 'mspt run'.\n";

int mspt_cmd_prepare(int argc, char **argv)
{
    if (mspt_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    if (argc < 1)
        return mspt_cli_usage("prepare: missing experiment file");
    for (int i = 1; i < argc; i++)
        if (!mspt_override_is(argv[i]))
            return mspt_cli_usage("prepare: '%s' is not an override (key=value, "
                                  "+key=value or ~key)", argv[i]);
    mspt_error err = {0};
    mspt_experiment x;
    int rc = mspt_experiment_load(&x, argv[0], (const char *const *)argv + 1,
                                  (size_t)argc - 1, &err);
    for (size_t i = 0; !rc && i < x.ndata; i++) {
        const mspt_dataset_vt *vt = x.data[i].c->vtable;
        void *ds = NULL;
        int made = vt->create(&x.data[i].cfg, &ds, &err);
        if ((rc = mspt_slot_built(&x.data[i], NULL, made, &err))) {
            if (!made && ds)
                vt->destroy(ds);
            break;
        }
        size_t windows;
        int channels, samples;
        vt->shape(ds, &windows, &channels, &samples);
        printf("%s: datasets.%s, %zu windows of %d x %d\n", x.data[i].path,
               x.data[i].c->name, windows, channels, samples);
        vt->destroy(ds);
    }
    mspt_experiment_free(&x);
    return rc ? mspt_cli_fail(&err) : 0;
}
