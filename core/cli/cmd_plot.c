/* mspt plot RUN_DIR [--log]: the run's loss curves from its metrics.csv
 * (train_loss per step, train_loss_epoch and val_loss, lr on a right axis)
 * into RUN_DIR/plots/curves.png. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#include "cli/cli.h"
#include "task/curves.h"

static const char help[] =
    "Usage: mspt plot RUN_DIR [--log]\n"
    "\n"
    "Renders the run's loss curves from RUN_DIR/metrics.csv (train_loss per\n"
    "step, train_loss_epoch and val_loss per epoch, lr on a second axis) to\n"
    "RUN_DIR/plots/curves.png.\n"
    "  --log  logarithmic loss axis\n";

int mspt_cmd_plot(int argc, char **argv)
{
    if (mspt_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    const char *run_dir = NULL;
    int log_y = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--log"))
            log_y = 1;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return mspt_cli_usage("plot: unknown option '%s'", argv[i]);
        else if (!run_dir)
            run_dir = argv[i];
        else
            return mspt_cli_usage("plot: one run directory, got '%s' too", argv[i]);
    }
    if (!run_dir)
        return mspt_cli_usage("plot: missing run directory");

    mspt_error err = {0};
    char out[4400];
    int rc = mspt_render_curves(run_dir, log_y, out, sizeof out, &err);
    if (!rc)
        printf("wrote %s\n", out);
    return rc ? mspt_cli_fail(&err) : 0;
}
