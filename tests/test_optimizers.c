/* Optimizers (plugins/optimizers): 10-step trajectories and final state
 * against torch.optim.SGD / Adam / AdamW and torch_optimizer's Lamb
 * (scripts/gen_fixtures_optim.py); state buffer names and sizes; resume
 * through state() and set_steps; thread-count independence; config errors
 * with key paths; the lr / weight_decay schema contract. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "plugin_util.h"

#define STEPS 10
#define NP 4

static const char *const pnames[NP] = {"a", "b", "c", "d"};

static const mspt_component *component(const char *name)
{
    return tp_component("optimizers", "optimizers", MSPT_KIND_OPTIMIZER,
                        name);
}

/* The fixture's four tensors as parameters, in one group or in two
 * ({a, b}, {c, d}) as the generator groups them. */
typedef struct model {
    mspt_params *ps;
    mspt_tensor *p[NP];
    mspt_param_group groups[2];
    size_t ngroups;
} model;

static void model_init(model *m, const fixture *f, size_t ngroups)
{
    memset(m, 0, sizeof *m);
    m->ps = mspt_params_new();
    for (int i = 0; i < NP; i++) {
        char key[64];
        snprintf(key, sizeof key, "init.%s", pnames[i]);
        const fixture_tensor *t = fixture_get(f, key);
        m->p[i] = mspt_param_new(m->ps, pnames[i], t->ndim, t->shape, 0);
        memcpy(m->p[i]->data, t->data, t->numel * sizeof(float));
    }
    m->ngroups = ngroups;
    if (ngroups == 1) {
        m->groups[0].params = m->p;
        m->groups[0].count = NP;
    } else {
        m->groups[0].params = m->p;
        m->groups[0].count = 2;
        m->groups[1].params = m->p + 2;
        m->groups[1].count = 2;
    }
}

static void set_grads(model *m, const fixture *f, int step)
{
    for (int i = 0; i < NP; i++) {
        char key[64];
        snprintf(key, sizeof key, "grad.%s", pnames[i]);
        const fixture_tensor *g = fixture_get(f, key);
        size_t n = m->p[i]->numel;
        memcpy(m->p[i]->grad, g->data + (size_t)step * n, n * sizeof(float));
    }
}

static void *create(const char *name, const char *yaml, model *m)
{
    const mspt_component *c = component(name);
    const mspt_optimizer_vt *vt = c->vtable;
    mspt_config cfg;
    mspt_node *tree = tp_config(c, "optimizer", yaml, &cfg);
    mspt_error err = {0};
    void *self = NULL;
    if (vt->create(&cfg, m->groups, m->ngroups, &self, &err))
        tap_bail(err.msg);
    mspt_node_free(tree);
    return self;
}

static const fixture_tensor *find(const fixture *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

/* The cases of gen_fixtures_optim.py, same options. */
typedef struct opt_case {
    const char *component, *name, *yaml;
    size_t ngroups;
} opt_case;

static const opt_case cases[] = {
    {"sgd", "momentum", "{momentum: 0.9}", 1},
    {"sgd", "nesterov", "{momentum: 0.8, nesterov: true}", 2},
    {"sgd", "dampening", "{momentum: 0.9, dampening: 0.3}", 1},
    {"sgd", "plain", "{momentum: 0}", 2},
    {"adam", "default", "{}", 1},
    {"adam", "amsgrad", "{betas: [0.8, 0.99], eps: 1e-6, amsgrad: true}", 2},
    {"adam", "nowd", "{}", 1},
    {"adamw", "default", "{}", 1},
    {"adamw", "amsgrad", "{betas: [0.8, 0.99], eps: 1e-6, amsgrad: true}", 2},
    {"adamw", "nowd", "{}", 1},
    {"lamb", "default", "{}", 1},
    {"lamb", "debias", "{debias: true, betas: [0.85, 0.98], eps: 1e-8}", 2},
    {"lamb", "clamp", "{clamp_value: 2.5}", 1},
    {"lamb", "adam", "{adam: true}", 1},
};

/* Errors are relative to the tensor's scale, max |got − want| / max |want|:
 * moments and momenta are sums that cancel towards 0 in places, where an
 * elementwise relative error would only measure float32 rounding of the
 * larger terms (torch's vectorised add also fuses a·x + y into one FMA,
 * so agreement is to a few ulps, not bits). */
#define TOL 1e-6

static double scaled_err(const float *got, const float *want, size_t n)
{
    double diff = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= diff))
            diff = d;
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    }
    return diff / scale;
}

static fixture *load(const char *component_name)
{
    char file[64];
    snprintf(file, sizeof file, "optim_%s.txt", component_name);
    return fixture_load(file);
}

static void check_case(const opt_case *oc)
{
    fixture *f = load(oc->component);
    const mspt_optimizer_vt *vt = component(oc->component)->vtable;
    model m;
    model_init(&m, f, oc->ngroups);
    char key[96];
    snprintf(key, sizeof key, "%s.lr", oc->name);
    const fixture_tensor *lr = fixture_get(f, key);
    snprintf(key, sizeof key, "%s.wd", oc->name);
    const fixture_tensor *wd = fixture_get(f, key);
    void *self = create(oc->component, oc->yaml, &m);
    double worst = 0;
    for (int s = 0; s < STEPS; s++) {
        for (size_t g = 0; g < m.ngroups; g++) {
            m.groups[g].lr = lr->data[(size_t)s * m.ngroups + g];
            m.groups[g].weight_decay = wd->data[g];
        }
        set_grads(&m, f, s);
        vt->step(self);
        for (int i = 0; i < NP; i++) {
            snprintf(key, sizeof key, "%s.%s", oc->name, pnames[i]);
            const fixture_tensor *want = fixture_get(f, key);
            size_t n = m.p[i]->numel;
            double e = scaled_err(m.p[i]->data, want->data + (size_t)s * n,
                                  n);
            if (e > worst)
                worst = e;
        }
    }
    ok(worst <= TOL, "%s %s: %d-step trajectory matches torch (max rel err "
       "%.2g)", oc->component, oc->name, STEPS, worst);

    /* Final state buffers, by name, against torch's optimizer state. */
    mspt_state_buffer bufs[16];
    size_t n = vt->state(self, bufs, 16);
    int nwant = 0, found = 1;
    snprintf(key, sizeof key, "%s.state.", oc->name);
    for (int i = 0; i < f->n; i++)
        nwant += !strncmp(f->t[i].name, key, strlen(key));
    worst = 0;
    for (size_t b = 0; b < n && b < 16; b++) {
        char name[320];
        snprintf(name, sizeof name, "%.63s.state.%.159s", oc->name, bufs[b].name);
        const fixture_tensor *want = find(f, name);
        if (!want || want->numel != bufs[b].numel) {
            found = 0;
            continue;
        }
        double e = scaled_err(bufs[b].data, want->data, want->numel);
        if (e > TOL)
            diag("%s: rel err %.2g (e.g. got %.9g want %.9g)", bufs[b].name,
                 e, bufs[b].data[0], want->data[0]);
        if (e > worst)
            worst = e;
    }
    ok(found && (int)n == nwant && worst <= TOL,
       "%s %s: %zu state buffers match torch's by name (max rel err %.2g)",
       oc->component, oc->name, n, worst);
    vt->destroy(self);
    mspt_params_free(m.ps);
    fixture_free(f);
}

/* state(): "<param>.<buffer>" names and sizes, count without filling. */
static void check_state_names(void)
{
    mspt_params *ps = mspt_params_new();
    int s1[2] = {5, 3}, s2[1] = {7};
    mspt_tensor *p[2] = {
        mspt_param_new(ps, "blocks.0.attn.qkv.weight", 2, s1, 0),
        mspt_param_new(ps, "norm.bias", 1, s2, 0)};
    mspt_param_group g = {p, 2, 1e-3f, 0.01f};
    const mspt_component *c = component("adamw");
    const mspt_optimizer_vt *vt = c->vtable;
    mspt_config cfg;
    mspt_node *tree = tp_config(c, "optimizer", "{amsgrad: true}", &cfg);
    mspt_error err = {0};
    void *self = NULL;
    vt->create(&cfg, &g, 1, &self, &err);
    mspt_node_free(tree);
    ok(self && vt->state(self, NULL, 0) == 6,
       "adamw amsgrad: 3 buffers per parameter counted without filling");
    mspt_state_buffer out[4];
    memset(out, 0, sizeof out);
    strcpy(out[3].name, "untouched");
    size_t n = vt->state(self, out, 3);
    ok(n == 6 && !strcmp(out[3].name, "untouched"),
       "state() fills no more than cap and returns the total");
    mspt_state_buffer all[6];
    vt->state(self, all, 6);
    const char *want[6] = {
        "blocks.0.attn.qkv.weight.exp_avg",
        "blocks.0.attn.qkv.weight.exp_avg_sq",
        "blocks.0.attn.qkv.weight.max_exp_avg_sq", "norm.bias.exp_avg",
        "norm.bias.exp_avg_sq", "norm.bias.max_exp_avg_sq"};
    int good = 1;
    for (int i = 0; i < 6; i++)
        good &= !strcmp(all[i].name, want[i]) && all[i].data &&
                all[i].numel == (i < 3 ? 15u : 7u);
    ok(good, "state names are <param>.<buffer> with the parameter's numel");
    int distinct = all[0].data != all[1].data && all[1].data != all[3].data;
    ok(distinct, "every state buffer has its own memory");
    vt->destroy(self);

    tree = tp_config(component("sgd"), "optimizer", "{momentum: 0}", &cfg);
    const mspt_optimizer_vt *sgd = component("sgd")->vtable;
    sgd->create(&cfg, &g, 1, &self, &err);
    mspt_node_free(tree);
    ok(sgd->state(self, out, 4) == 0, "sgd without momentum has no state");
    sgd->destroy(self);
    tree = tp_config(component("lamb"), "optimizer", "{}", &cfg);
    const mspt_optimizer_vt *lamb = component("lamb")->vtable;
    lamb->create(&cfg, &g, 1, &self, &err);
    mspt_node_free(tree);
    n = lamb->state(self, out, 4);
    ok(n == 4 && !strcmp(out[1].name, "blocks.0.attn.qkv.weight.exp_avg_sq") &&
           !strcmp(out[2].name, "norm.bias.exp_avg"),
       "lamb: exp_avg and exp_avg_sq per parameter");
    lamb->destroy(self);
    mspt_params_free(ps);
}

/* Resume: after 5 steps, a fresh optimizer on copies of the parameters,
 * given the saved buffers and step count, continues bit-identically; one
 * not given the step count does not (so set_steps matters). */
static void check_resume(const char *name, const char *yaml)
{
    fixture *f = load(name);
    const mspt_optimizer_vt *vt = component(name)->vtable;
    model a, b, c;
    model_init(&a, f, 2);
    a.groups[0].lr = 0.01f;
    a.groups[1].lr = 0.02f;
    a.groups[0].weight_decay = 0.01f;
    a.groups[1].weight_decay = 0.1f;
    void *oa = create(name, yaml, &a);
    for (int s = 0; s < 5; s++) {
        set_grads(&a, f, s);
        vt->step(oa);
    }
    model_init(&b, f, 2);
    model_init(&c, f, 2);
    for (size_t g = 0; g < 2; g++) {
        b.groups[g].lr = c.groups[g].lr = a.groups[g].lr;
        b.groups[g].weight_decay = c.groups[g].weight_decay =
            a.groups[g].weight_decay;
    }
    for (int i = 0; i < NP; i++) {
        memcpy(b.p[i]->data, a.p[i]->data, a.p[i]->numel * sizeof(float));
        memcpy(c.p[i]->data, a.p[i]->data, a.p[i]->numel * sizeof(float));
    }
    void *ob = create(name, yaml, &b), *oc = create(name, yaml, &c);
    mspt_state_buffer sa[12], sb[12], sc[12];
    size_t n = vt->state(oa, sa, 12);
    int names_match = vt->state(ob, sb, 12) == n && vt->state(oc, sc, 12) == n;
    for (size_t i = 0; i < n && names_match; i++) {
        names_match &= !strcmp(sa[i].name, sb[i].name);
        memcpy(sb[i].data, sa[i].data, sa[i].numel * sizeof(float));
        memcpy(sc[i].data, sa[i].data, sa[i].numel * sizeof(float));
    }
    vt->set_steps(ob, vt->get_steps(oa));
    ok(vt->get_steps(oa) == 5 && vt->get_steps(ob) == 5 &&
           vt->get_steps(oc) == 0,
       "%s: get_steps counts steps, set_steps restores them", name);
    for (int s = 5; s < STEPS; s++) {
        set_grads(&a, f, s);
        set_grads(&b, f, s);
        set_grads(&c, f, s);
        vt->step(oa);
        vt->step(ob);
        vt->step(oc);
    }
    int same = names_match, differs = 0;
    for (int i = 0; i < NP; i++) {
        size_t bytes = a.p[i]->numel * sizeof(float);
        same &= !memcmp(a.p[i]->data, b.p[i]->data, bytes);
        differs |= memcmp(a.p[i]->data, c.p[i]->data, bytes) != 0;
    }
    for (size_t i = 0; i < n; i++)
        same &= !memcmp(sa[i].data, sb[i].data, sa[i].numel * sizeof(float));
    ok(same, "%s %s: resumed from state() + set_steps continues "
       "bit-identically (%zu buffers)", name, yaml, n);
    ok(differs, "%s %s: without set_steps the continuation differs", name,
       yaml);
    vt->destroy(oa);
    vt->destroy(ob);
    vt->destroy(oc);
    mspt_params_free(a.ps);
    mspt_params_free(b.ps);
    mspt_params_free(c.ps);
    fixture_free(f);
}

/* A parameter whose grad is NULL is left alone, as torch skips grad None;
 * the group's current lr is what step() uses. */
static void check_skip_and_lr(void)
{
    fixture *f = load("adamw");
    const mspt_optimizer_vt *vt = component("adamw")->vtable;
    model m;
    model_init(&m, f, 1);
    m.groups[0].lr = 0.01f;
    void *self = create("adamw", "{}", &m);
    set_grads(&m, f, 0);
    float *grad_d = m.p[3]->grad, before = m.p[0]->data[0];
    float d0[6];
    memcpy(d0, m.p[3]->data, sizeof d0);
    m.p[3]->grad = NULL;
    m.p[3]->data[0] = 1.0f;
    d0[0] = 1.0f;
    vt->step(self);
    ok(!memcmp(d0, m.p[3]->data, sizeof d0) && m.p[0]->data[0] != before,
       "a parameter without grad is skipped, the others move");
    m.p[3]->grad = grad_d;
    float p0[35];
    memcpy(p0, m.p[0]->data, sizeof p0);
    m.groups[0].lr = 0.0f;
    m.groups[0].weight_decay = 0.0f;
    vt->step(self);
    ok(!memcmp(p0, m.p[0]->data, sizeof p0),
       "lr set to 0 in the group between steps: parameters stay put");
    vt->destroy(self);
    mspt_params_free(m.ps);
    fixture_free(f);
}

/* Same bits on 1 and 2 threads for a tensor above the parallel threshold
 * (lamb's norms are chunked, not split per thread). */
static void check_threads(const char *name)
{
    const mspt_optimizer_vt *vt = component(name)->vtable;
    int shape[2] = {333, 301}; /* 100233 elements */
    float *out[2];
    for (int run = 0; run < 2; run++) {
        mspt_set_threads(run + 1);
        mspt_params *ps = mspt_params_new();
        mspt_tensor *p = mspt_param_new(ps, "w", 2, shape, 0);
        mspt_rng *rng = mspt_rng_new(7);
        mspt_init_normal(p, rng, 0, 1);
        mspt_param_group g = {&p, 1, 0.01f, 0.05f};
        const mspt_component *c = component(name);
        mspt_config cfg;
        mspt_node *tree = tp_config(c, "optimizer", "{}", &cfg);
        mspt_error err = {0};
        void *self = NULL;
        vt->create(&cfg, &g, 1, &self, &err);
        mspt_node_free(tree);
        for (int s = 0; s < 3; s++) {
            for (size_t i = 0; i < p->numel; i++)
                p->grad[i] = (float)mspt_rng_normal(rng);
            vt->step(self);
        }
        out[run] = malloc(p->numel * sizeof(float));
        memcpy(out[run], p->data, p->numel * sizeof(float));
        vt->destroy(self);
        mspt_rng_free(rng);
        mspt_params_free(ps);
    }
    ok(!memcmp(out[0], out[1], 333 * 301 * sizeof(float)),
       "%s: 1 and 2 threads give the same bits on 100233 elements", name);
    free(out[0]);
    free(out[1]);
}

static void expect_error(const char *name, const char *yaml, model *m,
                         size_t ngroups, const char *want)
{
    const mspt_component *c = component(name);
    const mspt_optimizer_vt *vt = c->vtable;
    mspt_config cfg;
    mspt_error err = {0};
    void *self = NULL;
    mspt_node *tree = tp_config_err(c, "optimizer", yaml, &cfg, &err);
    int rc = tree ? vt->create(&cfg, m->groups, ngroups, &self, &err)
                  : (int)err.status;
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
    fixture *f = load("sgd");
    model m;
    model_init(&m, f, 2);
    expect_error("adam", "{betas: [0.9, 0.99, 0.5]}", &m, 2,
                 "optimizer.betas: expected 2 numbers");
    expect_error("adamw", "{betas: [1.0, 0.9]}", &m, 2,
                 "optimizer.betas[1]: must be in [0, 1)");
    expect_error("lamb", "{betas: [0.9, -0.1]}", &m, 2,
                 "optimizer.betas[2]: must be in [0, 1)");
    expect_error("adam", "{betas: 0.9}", &m, 2,
                 "optimizer.betas: expected a list of numbers");
    expect_error("adamw", "{lr: -1}", &m, 2,
                 "optimizer.lr: learning rate must be >= 0");
    expect_error("sgd", "{lr: -0.1}", &m, 2, "optimizer.lr:");
    expect_error("lamb", "{lr: 0}", &m, 2,
                 "optimizer.lr: learning rate must be > 0");
    expect_error("sgd", "{weight_decay: -0.1}", &m, 2,
                 "optimizer.weight_decay: must be >= 0");
    expect_error("sgd", "{momentum: -0.5}", &m, 2,
                 "optimizer.momentum: must be >= 0");
    expect_error("sgd", "{nesterov: true, momentum: 0}", &m, 2,
                 "optimizer.nesterov: Nesterov momentum requires");
    expect_error("sgd", "{nesterov: true, dampening: 0.1}", &m, 2,
                 "optimizer.nesterov:");
    expect_error("adam", "{eps: -1e-8}", &m, 2, "optimizer.eps: must be >= 0");
    expect_error("lamb", "{clamp_value: -1}", &m, 2,
                 "optimizer.clamp_value: must be >= 0");
    expect_error("adamw", "{beta: [0.9, 0.99]}", &m, 2,
                 "optimizer.beta: unknown key (did you mean 'betas'?)");
    expect_error("adam", "{}", &m, 0, "optimizer: got an empty parameter list");
    m.groups[1].params = m.p; /* a and b in both groups */
    expect_error("sgd", "{}", &m, 2,
                 "optimizer: parameter 'a' appears more than once");
    mspt_params_free(m.ps);
    fixture_free(f);
}

/* Every schema declares lr (default 1e-3) and weight_decay, which the
 * trainer reads; adam and adamw default to 0.01 decay, sgd and lamb to 0. */
static void check_contract(void)
{
    const char *names[4] = {"sgd", "adam", "adamw", "lamb"};
    const char *wd[4] = {"0", "0.01", "0.01", "0"};
    for (int i = 0; i < 4; i++) {
        const mspt_component *c = component(names[i]);
        int lr_ok = 0, wd_ok = 0;
        for (const mspt_param *p = c->params; p->name; p++) {
            lr_ok |= !strcmp(p->name, "lr") && p->type == MSPT_PARAM_FLOAT &&
                     p->def && !strcmp(p->def, "1e-3");
            wd_ok |= !strcmp(p->name, "weight_decay") &&
                     p->type == MSPT_PARAM_FLOAT && p->def &&
                     !strcmp(p->def, wd[i]);
        }
        ok(lr_ok && wd_ok && c->kind == MSPT_KIND_OPTIMIZER && c->summary,
           "%s: schema declares lr 1e-3 and weight_decay %s", names[i],
           wd[i]);
    }
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_case(&cases[i]);
    check_state_names();
    check_resume("sgd", "{momentum: 0.9, nesterov: true}");
    check_resume("adam", "{amsgrad: true}");
    check_resume("adamw", "{amsgrad: true}");
    check_resume("lamb", "{debias: true}");
    check_skip_and_lr();
    check_threads("lamb");
    check_threads("adamw");
    check_threads("sgd");
    check_errors();
    check_contract();
    return tap_done();
}
