/* Parameter list, state buffers, step counter and config checks shared by
 * the optimizers of this module (see optim.h). */
#include "optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_error(mspt_error *err, const mspt_config *cfg, const char *key,
                     const char *what, double got)
{
    return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.%s: %s, got %g",
                          mspt_config_path(cfg), key, what, got);
}

int optim_check_lr_wd(const mspt_config *cfg, int lr_positive, mspt_error *err)
{
    double lr = mspt_config_float(cfg, "lr");
    if (lr_positive ? !(lr > 0) : !(lr >= 0))
        return key_error(err, cfg, "lr",
                         lr_positive ? "learning rate must be > 0"
                                     : "learning rate must be >= 0",
                         lr);
    double v;
    return optim_read_nonneg(cfg, "weight_decay", &v, err);
}

int optim_read_nonneg(const mspt_config *cfg, const char *key, double *v,
                      mspt_error *err)
{
    *v = mspt_config_float(cfg, key);
    if (!(*v >= 0))
        return key_error(err, cfg, key, "must be >= 0", *v);
    return 0;
}

int optim_read_betas(const mspt_config *cfg, double betas[2], mspt_error *err)
{
    size_t n = mspt_config_len(cfg, "betas");
    if (n != 2)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s.betas: expected 2 numbers {beta1, beta2}, "
                              "got %zu", mspt_config_path(cfg), n);
    for (size_t i = 0; i < 2; i++) {
        betas[i] = mspt_config_float_at(cfg, "betas", i);
        if (!(betas[i] >= 0 && betas[i] < 1))
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "%s.betas[%zu]: must be in [0, 1), got %g",
                                  mspt_config_path(cfg), i + 1, betas[i]);
    }
    return 0;
}

int optim_init(optim *o, const mspt_config *cfg, mspt_param_group *groups,
               size_t ngroups, int nbufs, const char *const *buf_names,
               mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    memset(o, 0, sizeof *o);
    o->groups = groups;
    o->ngroups = ngroups;
    o->nbufs = nbufs;
    for (int b = 0; b < nbufs; b++)
        o->buf_names[b] = buf_names[b];
    /* Room for "<name>.<longest buffer name>" in a state buffer's name. */
    size_t longest = 0, numel = 0;
    for (int b = 0; b < nbufs; b++)
        if (strlen(buf_names[b]) > longest)
            longest = strlen(buf_names[b]);
    for (size_t g = 0; g < ngroups; g++)
        for (size_t i = 0; i < groups[g].count; i++) {
            const mspt_tensor *p = groups[g].params[i];
            if (!p || !p->data)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: parameter %zu of group %zu is NULL",
                                      path, i, g);
            if (p->name && strlen(p->name) + 1 + longest >=
                               sizeof(((mspt_state_buffer *)0)->name))
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: parameter name '%s' is too long "
                                      "for a state buffer name", path, p->name);
            o->nslots++;
            numel += p->numel;
        }
    if (o->nslots == 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: got an empty parameter list", path);
    o->slots = calloc(o->nslots, sizeof *o->slots);
    o->state = calloc(numel * (size_t)nbufs + 1, sizeof(float));
    if (!o->slots || !o->state) {
        optim_free(o);
        return mspt_error_set(err, MSPT_ERR_RUNTIME,
                              "%s: out of memory for optimizer state", path);
    }
    size_t k = 0, off = 0;
    for (size_t g = 0; g < ngroups; g++)
        for (size_t i = 0; i < groups[g].count; i++, k++) {
            optim_slot *s = &o->slots[k];
            s->p = groups[g].params[i];
            s->group = g;
            for (size_t j = 0; j < k; j++)
                if (o->slots[j].p == s->p) {
                    mspt_error_set(err, MSPT_ERR_CONFIG,
                                   "%s: parameter '%s' appears more than "
                                   "once in the groups", path,
                                   s->p->name ? s->p->name : "?");
                    optim_free(o);
                    return MSPT_ERR_CONFIG;
                }
            for (int b = 0; b < nbufs; b++) {
                s->buf[b] = o->state + off;
                off += s->p->numel;
            }
        }
    return 0;
}

void optim_free(optim *o)
{
    free(o->slots);
    free(o->state);
    o->slots = NULL;
    o->state = NULL;
}

size_t optim_state(void *self, mspt_state_buffer *out, size_t cap)
{
    optim *o = self;
    size_t n = 0;
    for (size_t k = 0; k < o->nslots; k++)
        for (int b = 0; b < o->nbufs; b++, n++) {
            if (n >= cap)
                continue;
            const optim_slot *s = &o->slots[k];
            if (s->p->name)
                snprintf(out[n].name, sizeof out[n].name, "%s.%s",
                         s->p->name, o->buf_names[b]);
            else
                snprintf(out[n].name, sizeof out[n].name, "param%zu.%s", k,
                         o->buf_names[b]);
            out[n].data = s->buf[b];
            out[n].numel = s->p->numel;
        }
    return n;
}

long long optim_get_steps(void *self) { return ((optim *)self)->steps; }

void optim_set_steps(void *self, long long steps)
{
    ((optim *)self)->steps = steps;
}
