/* The loss curves of a run directory, as a PNG beside its metrics. */
#ifndef MSPT_CURVES_H
#define MSPT_CURVES_H

#include <stddef.h>

#include <mspt/error.h>

/* Read RUN_DIR/metrics.csv and write RUN_DIR/plots/curves.png (its path
 * into out_path when not NULL).  log_y: losses on a log scale. */
int mspt_render_curves(const char *run_dir, int log_y, char *out_path,
                       size_t out_size, mspt_error *err);

#endif
