/* Plugin registry: loading, lookup, and each refusal with its message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "plugin/registry.h"
#include "tap.h"

static char build[2048];

static const char *module(const char *rel)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/plugins/%s", build, rel);
    return path;
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

int main(void)
{
    const char *b = getenv("MSPT_BUILDDIR");
    snprintf(build, sizeof build, "%s", b ? b : ".");
    mspt_error err = {0};

    mspt_registry *reg = mspt_registry_new();
    ok(mspt_registry_load_file(reg, module("toy/.libs/toy.so"), 0, &err) == 0,
       "toy module loads");
    ok(mspt_registry_count(reg) == 5, "it registers one component per kind");
    const mspt_component *c = mspt_registry_find(reg, MSPT_KIND_ENCODER, "toy", &err);
    ok(c && c->kind == MSPT_KIND_ENCODER && c->abi_version == MSPT_ABI_VERSION,
       "find by kind and name");
    ok(mspt_registry_find(reg, MSPT_KIND_LOSS, "toy", &err) == NULL &&
           contains(err.msg, "unknown loss 'toy'") && contains(err.msg, "available: toy_l1"),
       "the kind matters; message lists what exists (%s)", err.msg);
    ok(mspt_registry_find(reg, MSPT_KIND_OPTIMIZER, "toy_sdg", &err) == NULL &&
           contains(err.msg, "did you mean 'toy_sgd'?") && err.status == MSPT_ERR_CONFIG,
       "misspelled name gets a did-you-mean (%s)", err.msg);
    ok(mspt_registry_load_file(reg, module("toy/.libs/toy.so"), 1, &err) == 0 &&
           mspt_registry_count(reg) == 5,
       "loading the same file twice is a no-op");

    const mspt_component *found[4];
    ok(mspt_registry_from_module(reg, module("toy/.libs/toy.so"), MSPT_KIND_DATASET,
                                 found, 4) == 1 && !strcmp(found[0]->name, "toy_ramp"),
       "components by module");

    /* a copy of the module in another directory: later rank is shadowed,
     * same rank is a duplicate */
    char dir[] = "/tmp/mspt-test-registry-XXXXXX";
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    char copy[256], cmd[8400];
    snprintf(copy, sizeof copy, "%s/toy_copy.so", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", module("toy/.libs/toy.so"), copy);
    if (system(cmd) != 0)
        tap_bail("cp failed");
    ok(mspt_registry_load_file(reg, copy, 1, &err) == 0 &&
           mspt_registry_count(reg) == 5 &&
           mspt_registry_at(reg, 0)->shadowed != NULL,
       "a later search directory is shadowed, not an error");
    mspt_registry *reg2 = mspt_registry_new();
    mspt_registry_load_file(reg2, module("toy/.libs/toy.so"), 0, &err);
    ok(mspt_registry_load_file(reg2, copy, 0, &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "duplicate component encoders.toy") &&
           contains(err.msg, "toy_copy.so"),
       "same rank: duplicate component names both files (%s)", err.msg);
    ok(mspt_registry_count(reg2) == 5, "a refused module leaves nothing behind");
    mspt_registry_free(reg2);

    reg2 = mspt_registry_new();
    ok(mspt_registry_load_file(reg2, module("dup/.libs/toy.so"), 0, &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "duplicate component encoders.toy") &&
           mspt_registry_count(reg2) == 0,
       "a module registering a name twice is refused (%s)", err.msg);
    ok(mspt_registry_load_file(reg2, module("bad_abi/.libs/toy.so"), 0, &err) ==
               MSPT_ERR_CONFIG &&
           contains(err.msg, "bad_abi/.libs/toy.so") && contains(err.msg, "ABI 99") &&
           contains(err.msg, "has ABI 2 (loads 1-2)"),
       "ABI mismatch names the file and both versions (%s)", err.msg);
    ok(mspt_registry_load_file(reg2, module(".libs/not_a_plugin.so"), 0, &err) ==
               MSPT_ERR_CONFIG &&
           contains(err.msg, "not an mspt plugin") && contains(err.msg, "not_a_plugin.so"),
       "a shared object without the entry point is refused (%s)", err.msg);
    ok(mspt_registry_load_file(reg2, "/nonexistent/x.so", 0, &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "/nonexistent/x.so"),
       "missing file named");
    snprintf(copy, sizeof copy, "%s/garbage.so", dir);
    FILE *fp = fopen(copy, "w");
    fputs("not an ELF file", fp);
    fclose(fp);
    ok(mspt_registry_load_file(reg2, copy, 0, &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "cannot load") && contains(err.msg, "garbage.so"),
       "a file that is not a shared object is refused (%s)", err.msg);
    ok(mspt_registry_load_dir(reg2, "/nonexistent-dir", 0, &err) == 0,
       "a missing search directory is not an error");
    ok(mspt_registry_count(reg2) == 0, "nothing registered by refused modules");
    mspt_registry_free(reg2);

    /* a search directory with stray modules: each is skipped (once), the
     * others load, and only a lookup of what a skipped one would have
     * provided fails, naming it */
    char stray[300];
    snprintf(stray, sizeof stray, "%s/stray", dir);
    static const char *const strays[][2] = {{".libs/not_a_plugin.so", "libjunk.so"},
                                            {"bad_abi/.libs/toy.so", "old.so"},
                                            {"toy/.libs/toy.so", "toy.so"}};
    snprintf(cmd, sizeof cmd, "mkdir '%s' && cp '%s' '%s/garbage.so'", stray, copy, stray);
    for (size_t i = 0; i < 3 && system(cmd) == 0; i++)
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/%s'", module(strays[i][0]), stray,
                 strays[i][1]);
    if (system(cmd) != 0)
        tap_bail("cp failed");
    reg2 = mspt_registry_new();
    const char *why = NULL;
    ok(mspt_registry_load_dir(reg2, stray, 0, &err) == 0 &&
           mspt_registry_skipped(reg2, 0, NULL) == 3,
       "stray modules in a search directory are skipped, not an error (%s)", err.msg);
    ok(mspt_registry_load_dir(reg2, stray, 1, &err) == 0 &&
           mspt_registry_skipped(reg2, 0, NULL) == 3,
       "each is skipped once");
    mspt_registry_skipped(reg2, 0, &why);
    ok(why && contains(why, "garbage.so") && contains(why, "cannot load"),
       "the reason names the file and why (%s)", why ? why : "");
    mspt_registry_skipped(reg2, 1, &why);
    ok(why && contains(why, "libjunk.so") && contains(why, "not an mspt plugin"),
       "a shared object that is no plugin (%s)", why ? why : "");
    mspt_registry_skipped(reg2, 2, &why);
    ok(why && contains(why, "old.so") && contains(why, "ABI 99"),
       "a module of another ABI (%s)", why ? why : "");
    ok(mspt_registry_count(reg2) == 5 &&
           mspt_registry_find(reg2, MSPT_KIND_ENCODER, "toy", &err) == NULL &&
           contains(err.msg, "old.so") && contains(err.msg, "ABI 99") &&
           contains(err.msg, "would provide it was skipped"),
       "a component the skipped module registers is not taken from another (%s)", err.msg);
    ok(mspt_registry_find(reg2, MSPT_KIND_ENCODER, "junk", &err) == NULL &&
           contains(err.msg, "libjunk.so") && contains(err.msg, "not an mspt plugin"),
       "nor one its file is named after (%s)", err.msg);
    mspt_registry_free(reg2);
    snprintf(cmd, sizeof cmd, "rm '%s/old.so'", stray);
    if (system(cmd) != 0)
        tap_bail("rm failed");
    reg2 = mspt_registry_new();
    ok(mspt_registry_load_dir(reg2, stray, 0, &err) == 0 &&
           mspt_registry_find(reg2, MSPT_KIND_DATASET, "toy_ramp", &err) != NULL,
       "what the other modules provide is found (%s)", err.msg);
    ok(mspt_registry_load_file(reg2, module(".libs/not_a_plugin.so"), 0, &err) ==
           MSPT_ERR_CONFIG,
       "a module named by path still fails");
    mspt_registry_free(reg2);

    ok(!strcmp(mspt_kind_plural(MSPT_KIND_LOSS), "losses") &&
           mspt_kind_from_plural("schedulers") == MSPT_KIND_SCHEDULER &&
           mspt_kind_from_plural("encoder") == MSPT_KIND_ENCODER &&
           mspt_kind_from_plural("encoderz") == -1,
       "kind names");
    ok(!mspt_running_uninstalled(), "a test program is not the uninstalled mspt");

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    mspt_registry_free(reg);
    return tap_done();
}
