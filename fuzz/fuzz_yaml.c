/* libFuzzer target for the YAML configuration loader (core/config/
 * yaml_io.c): any input is read as a configuration document (depth and
 * alias budgets included); an accepted tree is written back as
 * hparams.yaml would be, and what is written must read again (the writer
 * never produces a file the reader refuses).  Build and run:
 * fuzz/run_fuzz_yaml.sh (see fuzz/README.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/yaml_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mspt_error err;
    mspt_node *n = mspt_yaml_parse_bytes(data, size, "fuzz.yaml", &err);
    if (!n)
        return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (fp) {
        int wrote = mspt_yaml_write(n, fp, &err) == 0;
        fclose(fp);
        if (wrote) {
            mspt_node *back = mspt_yaml_parse_bytes(text, len, "written", &err);
            if (!back) {
                fprintf(stderr, "written YAML does not read back: %s\n%s\n",
                        err.msg, text);
                abort();
            }
            mspt_node_free(back);
        }
        free(text);
    }
    mspt_node_free(n);
    return 0;
}
