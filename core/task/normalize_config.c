/* Input normalisation settings from the configuration, see normalize.h. */
#include <math.h>
#include <string.h>

#include "config/node.h"
#include "task/normalize.h"

static const char *const alias_of[2][2] = {
    {"quartile_normalization_lower_val", "lower"},
    {"quartile_normalization_upper_val", "upper"},
};

/* The old meaning of lower and upper (quantiles) left without a mode. */
static int refuse_legacy_bounds(const mspt_node *sec, mspt_error *err)
{
    const mspt_node *norm = mspt_node_get(sec, "normalize");
    if (mspt_node_get(sec, "mode") || !norm || norm->type != MSPT_NODE_BOOL || !norm->b)
        return 0;
    int given = 0, quantile_like = 1;
    for (int k = 0; k < 2; k++) {
        const mspt_node *v = mspt_node_get(sec, alias_of[k][1]);
        if (!v)
            continue;
        given = 1;
        double d = mspt_node_is_number(v) ? mspt_node_number(v) : NAN;
        quantile_like &= d >= 0 && d <= 1;
    }
    if (!given || !quantile_like)
        return 0;
    return mspt_error_set(
        err, MSPT_ERR_CONFIG,
        "input_normalization: lower/upper in [0, 1] without a mode look like the "
        "quantiles they were before mspt 0.2; say mode = \"quantile\" (with "
        "quantile_lower/quantile_upper) or mode = \"affine\" to map those values");
}

int mspt_norm_aliases(mspt_node *root, int as_written, mspt_error *err)
{
    mspt_node *sec = root ? mspt_node_get(root, "input_normalization") : NULL;
    if (!sec || sec->type != MSPT_NODE_MAP)
        return 0; /* absent, or the schema names the wrong type later */
    for (int k = 0; k < 2; k++) {
        mspt_node *alias = mspt_node_get(sec, alias_of[k][0]);
        if (!alias)
            continue;
        if (alias->type == MSPT_NODE_NULL) { /* an unset optional key */
            mspt_node_remove(sec, alias_of[k][0]);
            continue;
        }
        if (as_written && mspt_node_get(sec, alias_of[k][1]))
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "input_normalization: %s and %s are the same "
                                  "key; give one", alias_of[k][0], alias_of[k][1]);
        mspt_node_set(sec, alias_of[k][1], mspt_node_copy(alias));
        mspt_node_remove(sec, alias_of[k][0]);
    }
    return as_written ? refuse_legacy_bounds(sec, err) : 0;
}

static const char *const mode_names[] = {"affine", "quantile", "zscore", "minmax", NULL};

int mspt_norm_read(const mspt_node *root, mspt_norm *n, mspt_error *err)
{
    memset(n, 0, sizeof *n);
    if (!mspt_node_at(root, "input_normalization.normalize")->b)
        return 0;
    const char *mode = mspt_node_at(root, "input_normalization.mode")->s;
    int m = 0;
    while (mode_names[m] && strcmp(mode_names[m], mode))
        m++;
    if (!mode_names[m])
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "input_normalization.mode: '%s' is not a "
                              "normalisation (affine, quantile, zscore, minmax)",
                              mode);
    n->mode = (mspt_norm_mode)(MSPT_NORM_AFFINE + m);
    if (n->mode == MSPT_NORM_AFFINE) {
        n->lower = mspt_node_number(mspt_node_at(root, "input_normalization.lower"));
        n->upper = mspt_node_number(mspt_node_at(root, "input_normalization.upper"));
        if (!(isfinite(n->upper - n->lower) && n->lower < n->upper))
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "input_normalization: affine needs finite lower "
                                  "< upper, got %g, %g", n->lower, n->upper);
    } else if (n->mode == MSPT_NORM_QUANTILE) {
        n->lower = mspt_node_number(mspt_node_at(root, "input_normalization.quantile_lower"));
        n->upper = mspt_node_number(mspt_node_at(root, "input_normalization.quantile_upper"));
        if (!(n->lower >= 0 && n->lower < n->upper && n->upper <= 1))
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "input_normalization: quantile needs 0 <= "
                                  "quantile_lower < quantile_upper <= 1, got %g, %g",
                                  n->lower, n->upper);
    }
    return 0;
}
