/* What the optimizers of this module share: the parameter list with its
 * state buffers, the step counter, checkpoint access and config checks.
 * Private to the module (nothing here is exported from the .so). */
#ifndef OPTIM_H
#define OPTIM_H

#include <mspt/mspt.h>

#define OPTIM_MAX_BUFS 3

/* One parameter tensor, the group it belongs to and its state buffers
 * (numel floats each, zeroed at create). */
typedef struct optim_slot {
    mspt_tensor *p;
    size_t group;
    float *buf[OPTIM_MAX_BUFS];
} optim_slot;

typedef struct optim {
    mspt_param_group *groups; /* the trainer's, read at every step */
    size_t ngroups;
    optim_slot *slots;
    size_t nslots;
    int nbufs;
    const char *buf_names[OPTIM_MAX_BUFS];
    float *state;             /* one block holding every buffer */
    long long steps;
} optim;

/* Collect the groups' parameters and allocate nbufs zeroed buffers per
 * parameter, named "<param>.<buf_names[i]>"; 0 or an error naming the
 * component's config path. */
int optim_init(optim *o, const mspt_config *cfg, mspt_param_group *groups,
               size_t ngroups, int nbufs, const char *const *buf_names,
               mspt_error *err);
void optim_free(optim *o);

/* The vtable entries every optimizer shares (self points at an optim
 * placed first in the optimizer's own struct). */
size_t optim_state(void *self, mspt_state_buffer *out, size_t cap);
long long optim_get_steps(void *self);
void optim_set_steps(void *self, long long steps);

/* Config checks: each returns 0 or fills err with "<path>.<key>: ...". */
int optim_check_lr_wd(const mspt_config *cfg, int lr_positive,
                      mspt_error *err);
int optim_read_betas(const mspt_config *cfg, double betas[2],
                     mspt_error *err);
int optim_read_nonneg(const mspt_config *cfg, const char *key, double *v,
                      mspt_error *err);

/* The components, one per file. */
extern const mspt_component optim_sgd, optim_adam, optim_adamw, optim_lamb;

#endif
