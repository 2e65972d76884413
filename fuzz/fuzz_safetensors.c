/* libFuzzer target for the safetensors reader (core/io/safetensors.c): the
 * input is written to a file and opened with mspt_st_open (which maps it
 * and validates the header); an accepted file has every tensor queried and
 * read as float32, and every metadata entry looked up.  Build and run:
 * fuzz/run_fuzz_safetensors.sh (see fuzz/README.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"

static char path[64];

__attribute__((destructor)) static void remove_file(void)
{
    if (path[0])
        unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0])
        snprintf(path, sizeof path, "%s/mspt-fuzz-st.%ld",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        abort();
    if (fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
        abort();
    mspt_error err = {0};
    mspt_st_file *f = mspt_st_open(path, &err);
    if (!f) {
        if (!strstr(err.msg, path)) /* every refusal names the file */
            abort();
        return 0;
    }
    for (size_t i = 0; i < mspt_st_count(f); i++) {
        const char *name = mspt_st_name(f, i);
        if (mspt_st_find(f, name) != (long)i)
            abort();
        size_t n = mspt_st_numel(f, i), bytes = 0;
        const int64_t *shape = mspt_st_shape(f, i);
        size_t prod = 1;
        for (int d = 0; d < mspt_st_ndim(f, i); d++)
            prod *= (size_t)shape[d];
        const void *raw = mspt_st_data(f, i, &bytes);
        if (prod != n || bytes != n * mspt_st_dtype_size(mspt_st_dtype_of(f, i)) ||
            (bytes && !raw))
            abort();
        float *out = malloc((n ? n : 1) * sizeof *out);
        if (out && mspt_st_read_f32(f, name, out, n, &err))
            abort();
        free(out);
    }
    for (size_t i = 0; i < mspt_st_metadata_count(f); i++)
        if (!mspt_st_metadata(f, mspt_st_metadata_key(f, i)))
            abort();
    mspt_st_close(f);
    return 0;
}
