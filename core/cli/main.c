/* mspt — masked signal pretraining.  Entry point and global options. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mspt/mspt.h>

#include "cli/cli.h"
#include "config.h"
#include "engine/gemm.h"
#include "task/dist.h"

static const char usage[] =
    "Usage: mspt COMMAND [ARGS...]\n"
    "\n"
    "Pretrain EEG and biosignal encoders by masked signal modeling.\n"
    "\n"
    "Commands:\n"
    "  run EXPERIMENT [--resume[=CKPT]] [KEY=VALUE...]\n"
    "                                  pretrain (.lua, or the hparams.yaml of\n"
    "                                  an earlier run); --resume continues\n"
    "                                  from run_dir's last checkpoint\n"
    "  plugins [KIND [NAME]]           list components; one component's\n"
    "                                  parameters\n"
    "  plugins [KIND] MODULE.so[:NAME] what a module file provides\n"
    "  reconstruct EXPERIMENT --weights W (--input X | --windows N) --out O\n"
    "                                  a model's reconstruction, embeddings\n"
    "                                  (and --grad gradients) of a batch\n"
    "  plot RUN_DIR [--log]            loss curves of a run, to\n"
    "                                  RUN_DIR/plots/curves.png\n"
    "  prepare EXPERIMENT [KEY=VALUE...]  build the datasets (fill caches)\n"
    "\n"
    "Overrides follow Hydra: optimizer.lr=5e-4 changes an existing key,\n"
    "+trainer.max_steps=10 adds one, ~key removes one; tables are YAML flow\n"
    "syntax: '+scheduler={_target_: linear, warmup_epochs: 2}'.\n"
    "'mspt COMMAND --help' describes each command.\n"
    "\n"
    "Options:\n"
    "  -h, --help      this help\n"
    "  -V, --version   version, BLAS kernel, features compiled in\n"
    "\n"
    "Environment: MSPT_PLUGIN_PATH (colon-separated plugin directories),\n"
    "MSPT_BLIS_ARCH (force a BLIS kernel set).  See mspt(1).\n";

int mspt_cli_wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    return 0;
}

int mspt_cli_fail(const mspt_error *err)
{
    /* One line, whatever the message holds; under MPI, naming the rank,
     * and once for an error all ranks stopped on. */
    const char *rank = mspt_dist_error_prefix();
    if (!rank)
        return err->status ? (int)err->status : 1;
    fputs("mspt: ", stderr);
    fputs(rank, stderr);
    for (const char *p = err->msg; *p; p++)
        fputc(*p == '\n' ? ' ' : *p, stderr);
    fputc('\n', stderr);
    return err->status ? (int)err->status : 1;
}

int mspt_cli_usage(const char *fmt, ...)
{
    mspt_error err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    err.status = MSPT_ERR_CONFIG;
    size_t n = strlen(err.msg);
    snprintf(err.msg + n, sizeof err.msg - n, " (see 'mspt --help')");
    mspt_dist_agree(err.status, &err); /* under MPI every rank has it: say it once */
    return mspt_cli_fail(&err);
}

static int version(void)
{
    printf("mspt %s\n", MSPT_VERSION);
    printf("plugin ABI: %d (loads %d-%d)\n", MSPT_ABI_VERSION, MSPT_ABI_OLDEST,
           MSPT_ABI_VERSION);
    printf("BLAS: BLIS, kernel %s, %s\n", mspt_blas_kernel(),
           mspt_blas_threading());
    printf("thin GEMMs: %s\n", mspt_thin_gemm_state());
    printf("threads: %d\n", mspt_get_threads());
    printf("features:");
#ifdef HAVE_HDF5
    printf(" +hdf5");
#else
    printf(" -hdf5");
#endif
#ifdef HAVE_CAIRO
    printf(" +cairo");
#else
    printf(" -cairo");
#endif
#ifdef HAVE_MPI
    printf(" +mpi");
#else
    printf(" -mpi");
#endif
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return mspt_cli_usage("missing command");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version"))
        return version();
    if (!strcmp(cmd, "run")) { /* data parallel under mpirun or srun */
        mspt_error err = {0};
        int rc = mspt_dist_init(&argc, &argv, &err);
        if (rc)
            mspt_cli_fail(&err);
        else if (mspt_dist_rank() > 0 && !freopen("/dev/null", "w", stdout))
            mspt_dist_abort("/dev/null: cannot open"); /* other ranks are silent */
        else
            rc = mspt_cmd_run(argc - 2, argv + 2);
        mspt_dist_finalize(rc);
        return rc;
    }
    if (!strcmp(cmd, "plugins"))
        return mspt_cmd_plugins(argc - 2, argv + 2);
    if (!strcmp(cmd, "reconstruct"))
        return mspt_cmd_reconstruct(argc - 2, argv + 2);
    if (!strcmp(cmd, "plot"))
        return mspt_cmd_plot(argc - 2, argv + 2);
    if (!strcmp(cmd, "prepare"))
        return mspt_cmd_prepare(argc - 2, argv + 2);
    return mspt_cli_usage("unknown command '%s'", cmd);
}
