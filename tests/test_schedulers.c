/* Schedulers (plugins/schedulers): learning-rate sequences against timm's
 * CosineLRScheduler (transcribed), torch's MultiStepLR and LambdaLR, from
 * scripts/gen_fixtures_optim.py; purity; config errors with key paths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_util.h"

/* sched.txt holds float64 sequences ("tensor NAME 1 N" then N values),
 * read here in double: fixture.h reads float32. */
typedef struct seq {
    char name[64];
    size_t n;
    double *v;
} seq;

static seq seqs[32];
static int nseqs;

static void load_sequences(void)
{
    const char *src = getenv("MSPT_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/sched.txt",
             src ? src : ".");
    FILE *fp = fopen(path, "r");
    if (!fp)
        tap_bail("cannot open tests/fixtures/sched.txt");
    char word[16];
    int ndim;
    while (nseqs < 32 && fscanf(fp, "%15s", word) == 1) {
        seq *s = &seqs[nseqs++];
        if (strcmp(word, "tensor") ||
            fscanf(fp, "%63s %d %zu", s->name, &ndim, &s->n) != 3 ||
            ndim != 1)
            tap_bail("sched.txt: bad header");
        s->v = malloc(s->n * sizeof *s->v);
        for (size_t i = 0; i < s->n; i++)
            if (fscanf(fp, "%lf", &s->v[i]) != 1)
                tap_bail("sched.txt: short data");
    }
    fclose(fp);
}

static const seq *find_seq(const char *name)
{
    for (int i = 0; i < nseqs; i++)
        if (!strcmp(seqs[i].name, name))
            return &seqs[i];
    tap_bail("sched.txt: missing sequence");
}

static const mspt_component *component(const char *name)
{
    return tp_component("schedulers", "schedulers", MSPT_KIND_SCHEDULER,
                        name);
}

static void *make(const char *name, const char *yaml,
                  const mspt_schedule_info *info)
{
    const mspt_component *c = component(name);
    const mspt_scheduler_vt *vt = c->vtable;
    mspt_config cfg;
    mspt_node *tree = tp_config(c, "scheduler", yaml, &cfg);
    mspt_error err = {0};
    void *self = NULL;
    if (vt->create(&cfg, info, &self, &err))
        tap_bail(err.msg);
    mspt_node_free(tree);
    return self;
}

#define BASE 5e-4

/* The cases of gen_fixtures_optim.py's gen_schedulers, same options. */
typedef struct sched_case {
    const char *name, *component, *yaml;
    mspt_schedule_info info; /* steps_per_epoch, max_epochs, max_steps */
    int in_epochs;
} sched_case;

static const sched_case cases[] = {
    {"cosine_run", "cosine",
     "{warmup_epochs: 1.5, warmup_lr_init: 1e-6, lr_min: 1e-5}",
     {37, 8, 296}, 0},
    {"cosine_cycles", "cosine",
     "{t_initial: 40, lr_min: 1e-6, cycle_mul: 2, cycle_decay: 0.5, "
     "cycle_limit: 3, warmup_t: 10, warmup_lr_init: 1e-5, "
     "warmup_prefix: true}",
     {37, 8, 296}, 0},
    {"cosine_kdecay", "cosine",
     "{t_initial: 100, lr_min: 2e-5, cycle_decay: 0.5, cycle_limit: 2, "
     "warmup_t: 7, k_decay: 2}",
     {37, 8, 296}, 0},
    {"cosine_shrink", "cosine",
     "{t_initial: 60, cycle_mul: 0.5, cycle_limit: 4, k_decay: 0.5}",
     {37, 8, 296}, 0},
    {"cosine_grow", "cosine",
     "{t_initial: 150, cycle_mul: 1.5, cycle_decay: 0.7, cycle_limit: 3, "
     "k_decay: 1.5, warmup_t: 12}",
     {37, 8, 296}, 0},
    {"cosine_epochs", "cosine",
     "{t_in_epochs: true, warmup_epochs: 3, warmup_lr_init: 1e-6, "
     "lr_min: 1e-5}",
     {50, 30, 1500}, 1},
    {"multistep_warmup", "multistep",
     "{milestones: [60, 150, 150, 220], gamma: 0.5, warmup_iter: 25, "
     "warmup_init_lr: 1e-5}",
     {37, 8, 296}, 0},
    {"multistep_plain", "multistep", "{milestones: [40, 100]}", {37, 8, 296},
     0},
    {"multistep_epochs", "multistep",
     "{milestones: [5, 12], gamma: 0.3, t_in_epochs: true}", {20, 20, 400},
     1},
    {"constant_warmup", "constant", "{warmup_t: 20, warmup_lr_init: 1e-6}",
     {37, 8, 296}, 0},
    {"constant_epochs", "constant", "{warmup_epochs: 2, t_in_epochs: true}",
     {50, 30, 1500}, 1},
    {"linear_run", "linear", "{warmup_t: 30}", {20, 10, 200}, 0},
    {"linear_min", "linear",
     "{warmup_epochs: 0.5, warmup_lr_init: 1e-6, lr_min: 1e-5, t_total: 180}",
     {20, 10, 200}, 0},
};

/* lr at time t of a case: updates (epoch = updates / steps_per_epoch), or
 * epochs (update = the first update of that epoch). */
static double at(const mspt_scheduler_vt *vt, void *self, const sched_case *c,
                 long long t)
{
    long long spe = c->info.steps_per_epoch;
    return c->in_epochs ? vt->lr(self, t * spe, t, BASE)
                        : vt->lr(self, t, t / spe, BASE);
}

static void check_sequences(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const sched_case *c = &cases[k];
        const seq *s = find_seq(c->name);
        const mspt_scheduler_vt *vt = component(c->component)->vtable;
        void *self = make(c->component, c->yaml, &c->info);
        double worst = 0;
        long long worst_t = 0;
        for (size_t t = 0; t < s->n; t++) {
            double got = at(vt, self, c, (long long)t), want = s->v[t];
            double e = fabs(got - want) / (fabs(want) + 1e-300);
            if (want == 0)
                e = got == 0 ? 0 : 1;
            if (!(e <= worst)) {
                worst = e;
                worst_t = (long long)t;
            }
        }
        ok(worst <= 1e-9, "%s: %zu %s match the reference (worst rel err "
           "%.2g at t=%lld)", c->name, s->n,
           c->in_epochs ? "epochs" : "updates", worst, worst_t);
        vt->destroy(self);
    }
}

/* Pure function of progress: a second instance evaluated backwards (as
 * after a resume) gives the same bits. */
static void check_pure(void)
{
    const sched_case *c = &cases[1];
    const mspt_scheduler_vt *vt = component(c->component)->vtable;
    void *a = make(c->component, c->yaml, &c->info);
    void *b = make(c->component, c->yaml, &c->info);
    double fwd[300];
    for (int t = 0; t < 300; t++)
        fwd[t] = at(vt, a, c, t);
    int same = 1;
    for (int t = 299; t >= 0; t--)
        same &= at(vt, b, c, t) == fwd[t];
    ok(same, "cosine: the rate depends on progress only (reverse order, "
       "fresh instance: same bits)");
    vt->destroy(a);
    vt->destroy(b);
}

/* With every default, cosine spans the run: base at 0, half way base/2,
 * lr_min = 0 at the end (timm's defaults, t_initial = max_steps). */
static void check_cosine_defaults(void)
{
    mspt_schedule_info info = {100, 4, 400};
    const mspt_scheduler_vt *vt = component("cosine")->vtable;
    void *s = make("cosine", "{}", &info);
    ok(vt->lr(s, 0, 0, BASE) == BASE, "cosine defaults: base rate at 0");
    is_close(vt->lr(s, 200, 2, BASE), BASE / 2, 1e-12,
             "cosine defaults: half the base rate half way");
    ok(vt->lr(s, 400, 4, BASE) == 0 && vt->lr(s, 500, 5, BASE) == 0,
       "cosine defaults: lr_min 0 from the end of the run on");
    vt->destroy(s);
}

static void expect_error(const char *name, const char *yaml,
                         mspt_schedule_info info, const char *want)
{
    const mspt_component *c = component(name);
    const mspt_scheduler_vt *vt = c->vtable;
    mspt_config cfg;
    mspt_error err = {0};
    void *self = NULL;
    mspt_node *tree = tp_config_err(c, "scheduler", yaml, &cfg, &err);
    int rc = tree ? vt->create(&cfg, &info, &self, &err) : (int)err.status;
    ok(rc == MSPT_ERR_CONFIG && !self && strstr(err.msg, want),
       "%s %s: config error naming '%s'", name, yaml, want);
    if (!strstr(err.msg, want))
        diag("message: %s", err.msg);
    if (self)
        vt->destroy(self);
    mspt_node_free(tree);
}

static void check_errors(void)
{
    mspt_schedule_info run = {20, 10, 200}, no_len = {20, 0, 0},
                       no_spe = {0, 0, 200};
    expect_error("cosine", "{warmup_epochs: -1}", run,
                 "scheduler.warmup_epochs: must be >= 0");
    expect_error("cosine", "{warmup_t: -5}", run,
                 "scheduler.warmup_t: must be >= 0");
    expect_error("cosine", "{warmup_t: 5, warmup_epochs: 1}", run,
                 "scheduler.warmup_t: give warmup_epochs or warmup_t");
    expect_error("cosine", "{t_initial: 0}", run,
                 "scheduler.t_initial: must be positive");
    expect_error("cosine", "{}", no_len, "scheduler.t_initial: not set");
    expect_error("cosine", "{t_in_epochs: true}", no_len,
                 "length in epochs is unknown");
    expect_error("cosine", "{t_initial: 1.5}", run,
                 "scheduler.t_initial: expected an integer");
    expect_error("cosine", "{cycle_mul: 0}", run, "scheduler.cycle_mul:");
    expect_error("cosine", "{cycle_limit: 0}", run, "scheduler.cycle_limit:");
    expect_error("cosine", "{lr_min: -1e-5}", run, "scheduler.lr_min:");
    expect_error("cosine", "{k_decay: 0}", run, "scheduler.k_decay:");
    expect_error("cosine", "{warmup_epochs: 1}", no_spe,
                 "scheduler.warmup_epochs: the run's updates per epoch");
    expect_error("multistep", "{milestones: []}", run,
                 "scheduler.milestones: needs at least one");
    expect_error("multistep", "{}", run,
                 "scheduler.milestones: missing required key");
    expect_error("multistep", "{milestones: [10, -3]}", run,
                 "scheduler.milestones[2]: must be >= 0");
    expect_error("multistep", "{milestones: [10], warmup_iter: -1}", run,
                 "scheduler.warmup_iter: must be >= 0");
    expect_error("multistep", "{milestones: [10], gamma: 0}", run,
                 "scheduler.gamma:");
    expect_error("constant", "{warmup_t: -1}", run,
                 "scheduler.warmup_t: must be >= 0");
    expect_error("linear", "{t_total: 0}", run,
                 "scheduler.t_total: must be positive");
    expect_error("linear", "{warmup_t: 300}", run,
                 "scheduler: the warmup (300) is longer");
    expect_error("linear", "{lr_min: -1}", run, "scheduler.lr_min:");
}

int main(void)
{
    load_sequences();
    check_sequences();
    check_pure();
    check_cosine_defaults();
    check_errors();
    return tap_done();
}
