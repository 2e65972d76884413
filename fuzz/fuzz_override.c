/* libFuzzer target for the override parser (core/config/override.c): the
 * input is split at newlines into up to 8 overrides, each classified
 * (override, _target_, structural) and applied in turn to a small tree
 * holding every node type, lists of tables and a nested table; the tree
 * is then written as hparams.yaml would be.  Build and run:
 * fuzz/run_fuzz_override.sh (see fuzz/README.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/override.h"
#include "config/yaml_io.h"

static const char tree[] =
    "name: fuzz\nseed: 42\nlr: 0.5\nflag: true\nnothing: null\n"
    "patch: [1, 64]\nnames: [a, b]\n"
    "model: {_target_: toy, embed_dim: 8, filter: {low: 0.1, high: 40}}\n"
    "data: [{_target_: edf, path: a.edf}, {_target_: toy_ramp, windows: 8}]\n"
    "scheduler: {_target_: cosine, epoch_lag: 0}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const slots[] = {"model", "criterion", "optimizer",
                                        "scheduler", "data", NULL};
    if (size > 8192)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    mspt_error err;
    mspt_node *root = mspt_yaml_parse(tree, "tree", &err);
    if (!root)
        abort();
    char *save = NULL;
    int k = 0;
    for (char *arg = strtok_r(buf, "\n", &save); arg && k < 8;
         arg = strtok_r(NULL, "\n", &save), k++) {
        if (!mspt_override_is(arg))
            continue;
        (void)mspt_override_is_target(arg);
        (void)mspt_override_is_structural(arg, slots);
        mspt_override_apply(root, arg, &err);
    }
    FILE *fp = fopen("/dev/null", "w");
    if (fp) {
        mspt_yaml_write(root, fp, &err);
        fclose(fp);
    }
    mspt_node_free(root);
    free(buf);
    return 0;
}
