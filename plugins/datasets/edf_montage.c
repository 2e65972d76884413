/* Channel picking and montages (see edf_montage.h). */
#include "edf_montage.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const edf_tuh_channels[21] = {
    "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7",
    "F8",  "T3",  "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ"};

const char *const edf_tcp_pairs[22] = {
    "FP1-F7", "F7-T3", "T3-T5", "T5-O1", "FP2-F8", "F8-T4", "T4-T6", "T6-O2",
    "A1-T3",  "T3-C3", "C3-CZ", "CZ-C4", "C4-T4",  "T4-A2", "FP1-F3", "F3-C3",
    "C3-P3",  "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2"};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void edf_channel_key(const char *label, char *key, size_t n)
{
    while (*label == ' ')
        label++;
    if (!strncasecmp(label, "EEG ", 4))
        label += 4;
    while (*label == ' ')
        label++;
    size_t len = strlen(label);
    while (len > 0 && label[len - 1] == ' ')
        len--;
    if (len > 4 && !strncasecmp(label + len - 4, "-REF", 4))
        len -= 4;
    else if (len > 3 && !strncasecmp(label + len - 3, "-LE", 3))
        len -= 3;
    if (len >= n)
        len = n - 1;
    for (size_t i = 0; i < len; i++)
        key[i] = (char)toupper((unsigned char)label[i]);
    key[len] = '\0';
}

/* The data signal labelled like `want`, or -1. */
static int find(const edf_file *f, const char *want)
{
    for (int s = 0; s < f->nsignals; s++)
        if (!f->sig[s].annotation && !strcasecmp(f->sig[s].label, want))
            return s;
    char k[64], ks[64];
    edf_channel_key(want, k, sizeof k);
    for (int s = 0; s < f->nsignals; s++) {
        edf_channel_key(f->sig[s].label, ks, sizeof ks);
        if (!f->sig[s].annotation && !strcmp(ks, k))
            return s;
    }
    return -1;
}

int edf_pick(const edf_file *f, const char *const *channels, int n, int *idx,
             char *err, size_t errlen)
{
    char missing[512] = "", have[400] = "";
    int nmissing = 0;
    for (int i = 0; i < n; i++) {
        idx[i] = find(f, channels[i]);
        if (idx[i] < 0) {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, "%s%s",
                     nmissing++ ? ", " : "", channels[i]);
        }
    }
    if (!nmissing)
        return 0;
    for (int s = 0, first = 1; s < f->nsignals; s++) {
        if (f->sig[s].annotation)
            continue;
        size_t l = strlen(have);
        snprintf(have + l, sizeof have - l, "%s'%s'", first ? "" : ", ",
                 f->sig[s].label);
        first = 0;
    }
    return fail(err, errlen, "%s: missing channel%s %s (labels may differ in "
                "case, an 'EEG ' prefix and a '-REF' or '-LE' suffix); the "
                "file has %s", f->name, nmissing > 1 ? "s" : "", missing, have);
}

/* Index of the channel whose key is that of name[0..len), or -1. */
static int channel_index(const char *name, size_t len,
                         const char *const *channels, int nch)
{
    char part[64], k[64], kc[64];
    if (len >= sizeof part)
        return -1;
    memcpy(part, name, len);
    part[len] = '\0';
    edf_channel_key(part, k, sizeof k);
    for (int i = 0; i < nch; i++) {
        edf_channel_key(channels[i], kc, sizeof kc);
        if (!strcmp(k, kc))
            return i;
    }
    return -1;
}

static int alloc(edf_montage *m, int n)
{
    m->n = n;
    m->a = malloc((size_t)n * sizeof *m->a);
    m->b = malloc((size_t)n * sizeof *m->b);
    if (!m->a || !m->b) {
        edf_montage_free(m);
        return -1;
    }
    return 0;
}

int edf_montage_pairs(edf_montage *m, const char *const *pairs, int npairs,
                      const char *const *channels, int nch, char *err,
                      size_t errlen)
{
    if (alloc(m, npairs))
        return fail(err, errlen, "montage: out of memory");
    for (int k = 0; k < npairs; k++) {
        const char *p = pairs[k];
        m->a[k] = m->b[k] = -1;
        /* labels may hold '-' themselves: try every split */
        for (const char *d = strchr(p, '-'); d && m->b[k] < 0;
             d = strchr(d + 1, '-')) {
            int a = channel_index(p, (size_t)(d - p), channels, nch);
            int b = channel_index(d + 1, strlen(d + 1), channels, nch);
            if (a >= 0 && b >= 0)
                m->a[k] = a, m->b[k] = b;
        }
        if (m->b[k] < 0) {
            edf_montage_free(m);
            return fail(err, errlen, "pair '%s' is not 'A-B' with A and B "
                        "among the picked channels", p);
        }
    }
    return 0;
}

int edf_montage_none(edf_montage *m, int nch)
{
    if (alloc(m, nch))
        return -1;
    for (int k = 0; k < nch; k++)
        m->a[k] = k, m->b[k] = -1;
    return 0;
}

void edf_montage_free(edf_montage *m)
{
    free(m->a);
    free(m->b);
    m->a = m->b = NULL;
    m->n = 0;
}
