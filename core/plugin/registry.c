/* Plugin registry, see registry.h. */
#include "plugin/registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/suggest.h"

typedef struct module {
    char *path; /* canonical */
    void *handle;
    int rank;
} module;

typedef struct entry {
    mspt_entry pub;
    int rank;
} entry;

/* A module of a search directory that did not load: the run goes on
 * without it, but a lookup of a component it would have provided fails,
 * naming it.  "Would have provided": the file's stem (femba.so, libfemba.so:
 * femba of any kind) and every "kinds.name" its init tried to register. */
typedef struct skipped {
    char *path; /* canonical */
    char *why;
    char stem[64];
    char tried[1024]; /* ",encoders.toy,losses.toy_l1," */
} skipped;

struct mspt_registry {
    module *mods;
    size_t nmods, capmods;
    entry *ents;
    size_t nents, capents;
    skipped *skips;
    size_t nskips, capskips;
};

/* While a module's init runs: where its registrations go. */
struct mspt_plugin {
    mspt_registry *reg;
    const char *path;
    int rank;
    size_t first_entry;
    int failed;
    mspt_error *err;
    char *tried; /* what it tries to register, or NULL */
    size_t tried_cap;
};

static const char *kind_singular[MSPT_KIND_COUNT] = {
    "encoder", "loss", "optimizer", "scheduler", "dataset"};
static const char *kind_plural[MSPT_KIND_COUNT] = {
    "encoders", "losses", "optimizers", "schedulers", "datasets"};

const char *mspt_kind_name(mspt_kind kind)
{
    return (unsigned)kind < MSPT_KIND_COUNT ? kind_singular[kind] : "?";
}

const char *mspt_kind_plural(mspt_kind kind)
{
    return (unsigned)kind < MSPT_KIND_COUNT ? kind_plural[kind] : "?";
}

int mspt_kind_from_plural(const char *word)
{
    for (int k = 0; k < MSPT_KIND_COUNT; k++)
        if (!strcmp(word, kind_plural[k]) || !strcmp(word, kind_singular[k]))
            return k;
    return -1;
}

mspt_registry *mspt_registry_new(void) { return calloc(1, sizeof(mspt_registry)); }

void mspt_registry_free(mspt_registry *reg)
{
    if (!reg)
        return;
    /* Modules stay mapped until exit: components may still be referenced by
     * objects the caller has not destroyed yet, and unloading buys nothing. */
    for (size_t i = 0; i < reg->nmods; i++)
        free(reg->mods[i].path);
    for (size_t i = 0; i < reg->nskips; i++) {
        free(reg->skips[i].path);
        free(reg->skips[i].why);
    }
    free(reg->mods);
    free(reg->ents);
    free(reg->skips);
    free(reg);
}

static int valid_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static entry *find_entry(const mspt_registry *reg, mspt_kind kind,
                         const char *name)
{
    for (size_t i = 0; i < reg->nents; i++)
        if (reg->ents[i].pub.c->kind == kind &&
            !strcmp(reg->ents[i].pub.c->name, name))
            return &reg->ents[i];
    return NULL;
}

/* A dataset built for ABI 1 has the 4-pointer prefix of today's vtable:
 * the host gives it a copy of its descriptor pointing at a zero-filled full
 * vtable (live_channels NULL).  Like the modules, which stay mapped until
 * exit, the copies live as long as the process (kept on a list). */
typedef struct abi1_copy {
    struct abi1_copy *next;
    mspt_component c;
    mspt_dataset_vt vt;
} abi1_copy;

static abi1_copy *abi1_copies;

static const mspt_component *abi1_dataset(const mspt_component *c)
{
    typedef struct {
        int (*create)(const mspt_config *, void **, mspt_error *);
        void (*shape)(void *, size_t *, int *, int *);
        int (*read)(void *, size_t, float *, mspt_error *);
        void (*destroy)(void *);
    } dataset_vt_1;
    abi1_copy *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    memcpy(&k->vt, c->vtable, sizeof(dataset_vt_1));
    k->c = *c;
    k->c.vtable = &k->vt;
    k->next = abi1_copies;
    abi1_copies = k;
    return &k->c;
}

/* Remember "kinds.name" of a component a module tries to register, even
 * one refused (the descriptor's first fields, abi_version, kind and name,
 * keep their place in every ABI). */
static void note_attempt(mspt_plugin *p, const mspt_component *c)
{
    if (!p->tried || !c || (unsigned)c->kind >= MSPT_KIND_COUNT || !valid_name(c->name))
        return;
    size_t n = strlen(p->tried);
    snprintf(p->tried + n, p->tried_cap - n, "%s%s.%s,", n ? "" : ",",
             kind_plural[c->kind], c->name);
}

int mspt_plugin_register(mspt_plugin *p, const mspt_component *c)
{
    note_attempt(p, c);
    if (p->failed)
        return 1;
    p->failed = 1; /* until proven otherwise */
    if (!c)
        return mspt_error_set(p->err, MSPT_ERR_CONFIG,
                              "%s: registered a NULL component", p->path);
    if (c->abi_version < MSPT_ABI_OLDEST || c->abi_version > MSPT_ABI_VERSION)
        return mspt_error_set(p->err, MSPT_ERR_CONFIG,
                              "%s: built for mspt plugin ABI %d, but this mspt "
                              "has ABI %d (loads %d-%d); rebuild the plugin "
                              "against the installed headers", p->path,
                              c->abi_version, MSPT_ABI_VERSION, MSPT_ABI_OLDEST,
                              MSPT_ABI_VERSION);
    if (c->abi_version == 1 && c->kind == MSPT_KIND_DATASET && c->vtable &&
        !(c = abi1_dataset(c)))
        return mspt_error_set(p->err, MSPT_ERR_RUNTIME, "out of memory");
    if ((unsigned)c->kind >= MSPT_KIND_COUNT)
        return mspt_error_set(p->err, MSPT_ERR_CONFIG,
                              "%s: component '%s' has unknown kind %d", p->path,
                              c->name ? c->name : "?", (int)c->kind);
    if (!valid_name(c->name))
        return mspt_error_set(p->err, MSPT_ERR_CONFIG,
                              "%s: component name '%s' must be lower-case "
                              "letters, digits and _", p->path,
                              c->name ? c->name : "(null)");
    if (!c->vtable || !c->params || !c->summary)
        return mspt_error_set(p->err, MSPT_ERR_CONFIG,
                              "%s: component %s.%s lacks a vtable, schema or "
                              "summary", p->path, kind_plural[c->kind], c->name);
    entry *old = find_entry(p->reg, c->kind, c->name);
    if (old && old->rank == p->rank)
        return mspt_error_set(p->err, MSPT_ERR_CONFIG,
                              "duplicate component %s.%s: registered by %s and "
                              "by %s", kind_plural[c->kind], c->name,
                              old->pub.module, p->path);
    p->failed = 0;
    if (old) { /* an earlier search directory wins */
        if (!old->pub.shadowed)
            old->pub.shadowed = p->path;
        return 0;
    }
    mspt_registry *reg = p->reg;
    if (reg->nents == reg->capents) {
        size_t cap = reg->capents ? 2 * reg->capents : 32;
        entry *e = realloc(reg->ents, cap * sizeof *e);
        if (!e)
            return mspt_error_set(p->err, MSPT_ERR_RUNTIME, "out of memory");
        reg->ents = e;
        reg->capents = cap;
    }
    entry *e = &reg->ents[reg->nents++];
    e->pub.c = c;
    e->pub.module = p->path;
    e->pub.shadowed = NULL;
    e->rank = p->rank;
    return 0;
}

/* Load one module; `tried` (may be NULL) collects what its init tries to
 * register. */
static int load_module(mspt_registry *reg, const char *path, int rank,
                       char *tried, size_t tried_cap, mspt_error *err)
{
    char canon[PATH_MAX];
    if (!realpath(path, canon))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "plugin %s: %s", path,
                              strerror(errno));
    for (size_t i = 0; i < reg->nmods; i++)
        if (!strcmp(reg->mods[i].path, canon))
            return 0; /* already loaded through another search entry */
    void *h = dlopen(canon, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "plugin %s: cannot load: %s",
                              path, dlerror());
    mspt_plugin_init_fn init;
    *(void **)&init = dlsym(h, MSPT_PLUGIN_ENTRY);
    if (!init) {
        dlclose(h);
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "plugin %s: not an mspt plugin (no %s function)",
                              path, MSPT_PLUGIN_ENTRY);
    }
    if (reg->nmods == reg->capmods) {
        size_t cap = reg->capmods ? 2 * reg->capmods : 16;
        module *m = realloc(reg->mods, cap * sizeof *m);
        if (!m) {
            dlclose(h);
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
        }
        reg->mods = m;
        reg->capmods = cap;
    }
    module *m = &reg->mods[reg->nmods];
    m->path = strdup(canon);
    m->handle = h;
    m->rank = rank;
    mspt_plugin p = {reg, m->path, rank, reg->nents, 0, err, tried, tried_cap};
    int rc = init(&p);
    if (rc != 0 || p.failed) {
        if (!p.failed)
            mspt_error_set(err, MSPT_ERR_CONFIG,
                           "plugin %s: %s returned %d", path, MSPT_PLUGIN_ENTRY,
                           rc);
        reg->nents = p.first_entry; /* drop what it registered */
        for (size_t i = 0; i < reg->nents; i++)
            if (reg->ents[i].pub.shadowed == m->path)
                reg->ents[i].pub.shadowed = NULL;
        free(m->path);
        dlclose(h);
        return MSPT_ERR_CONFIG;
    }
    reg->nmods++;
    return 0;
}

int mspt_registry_load_file(mspt_registry *reg, const char *path, int rank,
                            mspt_error *err)
{
    return load_module(reg, path, rank, NULL, 0, err);
}

static const skipped *find_skipped(const mspt_registry *reg, const char *canon)
{
    for (size_t i = 0; i < reg->nskips; i++)
        if (!strcmp(reg->skips[i].path, canon))
            return &reg->skips[i];
    return NULL;
}

/* A module found by a directory search: one that does not load (not a
 * plugin, another ABI, a duplicate name) is skipped with one warning, so
 * that a stray file does not stop runs that do not use it. */
static int load_or_skip(mspt_registry *reg, const char *path, int rank,
                        mspt_error *err)
{
    char canon[PATH_MAX];
    if (realpath(path, canon) && find_skipped(reg, canon))
        return 0; /* warned already */
    skipped s = {0};
    mspt_error why = {0};
    int rc = load_module(reg, path, rank, s.tried, sizeof s.tried, &why);
    if (!rc || why.status != MSPT_ERR_CONFIG || !realpath(path, canon)) {
        if (rc)
            *err = why;
        return rc;
    }
    const char *base = strrchr(canon, '/');
    base = base ? base + 1 : canon;
    if (!strncmp(base, "lib", 3))
        base += 3;
    snprintf(s.stem, sizeof s.stem, "%.*s", (int)(strcspn(base, ".")), base);
    if (reg->nskips == reg->capskips) {
        size_t cap = reg->capskips ? 2 * reg->capskips : 4;
        skipped *k = realloc(reg->skips, cap * sizeof *k);
        if (!k)
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
        reg->skips = k;
        reg->capskips = cap;
    }
    s.path = strdup(canon);
    s.why = strdup(why.msg);
    if (!s.path || !s.why) {
        free(s.path);
        free(s.why);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    }
    reg->skips[reg->nskips++] = s;
    return 0;
}

size_t mspt_registry_skipped(const mspt_registry *reg, size_t i,
                             const char **why)
{
    if (why)
        *why = i < reg->nskips ? reg->skips[i].why : NULL;
    return reg->nskips;
}

void mspt_registry_warn_skipped(const mspt_registry *reg)
{
    for (size_t i = 0; i < reg->nskips; i++)
        fprintf(stderr, "mspt: warning: plugin search path: %s; skipped\n",
                reg->skips[i].why);
}

/* Would a skipped module have provided kind.name? */
static const skipped *skipped_provider(const mspt_registry *reg, mspt_kind kind,
                                       const char *name)
{
    char want[160];
    snprintf(want, sizeof want, ",%s.%s,", kind_plural[kind], name);
    for (size_t i = 0; i < reg->nskips; i++)
        if (!strcmp(reg->skips[i].stem, name) || strstr(reg->skips[i].tried, want))
            return &reg->skips[i];
    return NULL;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load the *.so files of one directory, in name order. */
static int load_flat(mspt_registry *reg, const char *dir, int rank,
                     mspt_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!has_suffix(de->d_name, ".so"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n) /* qsort takes no NULL array, even empty */
        qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!rc)
            rc = load_or_skip(reg, path, rank, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

int mspt_registry_load_dir(mspt_registry *reg, const char *dir, int rank,
                           mspt_error *err)
{
    int rc = load_flat(reg, dir, rank, err);
    for (int k = 0; k < MSPT_KIND_COUNT && !rc; k++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", dir, kind_plural[k]);
        rc = load_flat(reg, sub, rank, err);
        if (!rc) {
            snprintf(sub, sizeof sub, "%s/%s/.libs", dir, kind_plural[k]);
            rc = load_flat(reg, sub, rank, err);
        }
    }
    return rc;
}

int mspt_running_uninstalled(void)
{
    char exe[PATH_MAX], build[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !realpath(MSPT_BUILDDIR, build))
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    char libs[PATH_MAX];
    if (snprintf(libs, sizeof libs, "%s/.libs", build) >= (int)sizeof libs)
        return 0;
    return !strcmp(exe, build) || !strcmp(exe, libs);
}

int mspt_registry_load_default(mspt_registry *reg, const char *const *extra,
                               size_t nextra, mspt_error *err)
{
    int rank = 0, rc;
    for (size_t i = 0; i < nextra; i++) {
        struct stat st;
        if (stat(extra[i], &st) != 0)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "plugin_path: %s: %s", extra[i],
                                  strerror(errno));
        rc = S_ISDIR(st.st_mode)
                 ? mspt_registry_load_dir(reg, extra[i], rank++, err)
                 : mspt_registry_load_file(reg, extra[i], rank++, err);
        if (rc)
            return rc;
    }
    const char *env = getenv("MSPT_PLUGIN_PATH");
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir;
             dir = strtok_r(NULL, ":", &save)) {
            rc = mspt_registry_load_dir(reg, dir, rank++, err);
            if (rc) {
                free(copy);
                return rc;
            }
        }
        free(copy);
    }
    if (mspt_running_uninstalled()) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/plugins", MSPT_BUILDDIR);
        return mspt_registry_load_dir(reg, dir, rank, err);
    }
    return mspt_registry_load_dir(reg, MSPT_PLUGINDIR, rank, err);
}

size_t mspt_registry_count(const mspt_registry *reg) { return reg->nents; }

const mspt_entry *mspt_registry_at(const mspt_registry *reg, size_t i)
{
    return i < reg->nents ? &reg->ents[i].pub : NULL;
}

const mspt_component *mspt_registry_find(const mspt_registry *reg,
                                         mspt_kind kind, const char *name,
                                         mspt_error *err)
{
    const skipped *k = skipped_provider(reg, kind, name);
    if (k) { /* never silently another module's component of that name */
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s '%s': the module %s that "
                       "would provide it was skipped: %s", kind_singular[kind],
                       name, k->path, k->why);
        return NULL;
    }
    entry *e = find_entry(reg, kind, name);
    if (e)
        return e->pub.c;
    mspt_suggest s;
    mspt_suggest_init(&s, name);
    char avail[512] = "";
    size_t off = 0;
    for (size_t i = 0; i < reg->nents; i++) {
        const mspt_component *c = reg->ents[i].pub.c;
        if (c->kind != kind)
            continue;
        mspt_suggest_offer(&s, c->name);
        if (off < sizeof avail)
            off += (size_t)snprintf(avail + off, sizeof avail - off, "%s%s",
                                    off ? ", " : "", c->name);
    }
    const char *best = mspt_suggest_best(&s);
    char hint[160] = "";
    if (best)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
    mspt_error_set(err, MSPT_ERR_CONFIG, "unknown %s '%s'%s; available: %s",
                   kind_singular[kind], name, hint, *avail ? avail : "none");
    return NULL;
}

size_t mspt_registry_from_module(const mspt_registry *reg, const char *path,
                                 mspt_kind kind, const mspt_component **out,
                                 size_t cap)
{
    char canon[PATH_MAX];
    if (!realpath(path, canon))
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < reg->nents; i++)
        if (reg->ents[i].pub.c->kind == kind &&
            !strcmp(reg->ents[i].pub.module, canon)) {
            if (n < cap)
                out[n] = reg->ents[i].pub.c;
            n++;
        }
    return n;
}

int mspt_target_is_path(const char *t)
{
    size_t n = strlen(t);
    return strchr(t, '/') || (n > 3 && !strcmp(t + n - 3, ".so")) || strstr(t, ".so:");
}

const char *mspt_target_split(const char *target, char *file, size_t cap)
{
    snprintf(file, cap, "%s", target);
    char *colon = strstr(file, ".so:");
    if (!colon)
        return NULL;
    colon[3] = '\0';
    return target + (colon - file) + 4;
}
