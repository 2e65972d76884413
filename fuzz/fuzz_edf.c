/* libFuzzer target for the EDF / EDF+ / BDF reader (plugins/datasets/
 * edf_reader.c): any input is parsed; an accepted header then has every
 * sample of every data signal decoded, its EDF+D runs computed, channels
 * picked by label, and (when small) the whole preprocessing run without
 * band filters, so that resampling and windowing meet odd rates and
 * lengths too.  Build and run: fuzz/run_fuzz_edf.sh (see fuzz/README.md). */
#include <stdint.h>
#include <stdlib.h>

#include "edf_montage.h"
#include "edf_prep.h"
#include "edf_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    edf_file f;
    char err[EDF_ERR_LEN];
    if (edf_parse(&f, data, size, "fuzz.edf", err, sizeof err))
        return 0;
    long most = 0;
    long long total = 0;
    for (int s = 0; s < f.nsignals; s++) {
        most = f.sig[s].samples > most ? f.sig[s].samples : most;
        total += f.sig[s].samples * f.nrecords;
    }
    float *x = malloc((size_t)most * sizeof *x);
    for (long long r = 0; x && r < f.nrecords; r++)
        for (int s = 0; s < f.nsignals; s++)
            if (!f.sig[s].annotation)
                edf_read(&f, s, r, 1, 1.0, x);
    free(x);
    edf_segment *seg;
    size_t nseg;
    if (edf_segments(&f, &seg, &nseg, err, sizeof err) == 0)
        free(seg);
    const char *ch[] = {"A", "EEG B-REF"};
    int idx[2];
    edf_pick(&f, ch, 2, idx, err, sizeof err);
    edf_free(&f);
    if (total <= 1000000) {
        edf_recipe r = {ch, 2, {0}, 0, 0, 0, 64, 16, 8, 1.0, 1};
        edf_windows w;
        if (edf_montage_none(&r.montage, 2) == 0 &&
            edf_prep_buffer(data, size, "fuzz.edf", &r, &w, err, sizeof err) == 0)
            free(w.data);
        edf_montage_free(&r.montage);
    }
    return 0;
}
