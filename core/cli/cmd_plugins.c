/* mspt plugins [KIND [NAME | MODULE.so[:NAME]]] | MODULE.so: what is
 * installed, or what one module file provides, as gst-inspect shows it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#include "cli/cli.h"
#include "config/schema.h"
#include "config/suggest.h"
#include "plugin/registry.h"

static void list_kind(const mspt_registry *reg, mspt_kind kind)
{
    printf("%s:\n", mspt_kind_plural(kind));
    int any = 0;
    for (size_t i = 0; i < mspt_registry_count(reg); i++) {
        const mspt_entry *e = mspt_registry_at(reg, i);
        if (e->c->kind != kind)
            continue;
        printf("  %-16s %s\n", e->c->name, e->c->summary);
        any = 1;
    }
    if (!any)
        printf("  (none)\n");
}

static void show(const mspt_entry *e)
{
    const mspt_component *c = e->c;
    printf("%s.%s\n  %s\n\n", mspt_kind_plural(c->kind), c->name, c->summary);
    printf("Module:  %s\n", e->module);
    if (e->shadowed)
        printf("Shadows: %s\n", e->shadowed);
    printf("\nParameters:\n");
    size_t width = 4;
    for (const mspt_param *p = c->params; p->name; p++)
        if (strlen(p->name) > width)
            width = strlen(p->name);
    for (const mspt_param *p = c->params; p->name; p++) {
        const char *def = !p->def ? "(required)"
                          : !strcmp(p->def, MSPT_NO_DEFAULT) ? "(unset)"
                                                             : p->def;
        printf("  %-*s  %-16s  default %s\n", (int)width, p->name,
               mspt_param_type_name(p->type), def);
        if (p->help && *p->help)
            printf("  %-*s  %s\n", (int)width, "", p->help);
    }
    if (!c->params->name)
        printf("  (none)\n");
}

static const char help[] =
    "Usage: mspt plugins [KIND [NAME]]\n"
    "       mspt plugins [KIND] MODULE.so[:NAME]\n"
    "\n"
    "Lists the components of every kind (encoders, losses, optimizers,\n"
    "schedulers, datasets) found on the plugin search path, or of one KIND;\n"
    "with NAME, shows that component's parameters, types, defaults and help.\n"
    "A module file given by path (it holds a '/' or ends in .so) is loaded\n"
    "alone and its components (of KIND, or the one NAME) are shown.\n";

/* Every component of the module at `arg` (path.so or path.so:name), of
 * `kind` (or all kinds when < 0), in full. */
static int show_module(int kind, const char *arg)
{
    char file[PATH_MAX], canon[PATH_MAX];
    const char *name = mspt_target_split(arg, file, sizeof file);
    mspt_error err = {0};
    mspt_registry *reg = mspt_registry_new();
    if (mspt_registry_load_file(reg, file, 0, &err) || !realpath(file, canon)) {
        mspt_registry_free(reg);
        return mspt_cli_fail(&err);
    }
    int shown = 0;
    for (size_t i = 0; i < mspt_registry_count(reg); i++) {
        const mspt_entry *e = mspt_registry_at(reg, i);
        if ((kind >= 0 && (int)e->c->kind != kind) || (name && strcmp(e->c->name, name)) ||
            strcmp(e->module, canon))
            continue;
        if (shown++)
            printf("\n");
        show(e);
    }
    if (!shown) {
        char what[128] = "";
        for (size_t i = 0, off = 0; i < mspt_registry_count(reg) && off < sizeof what; i++) {
            const mspt_entry *e = mspt_registry_at(reg, i);
            off += (size_t)snprintf(what + off, sizeof what - off, "%s%s.%s",
                                    off ? ", " : "", mspt_kind_plural(e->c->kind),
                                    e->c->name);
        }
        mspt_error_set(&err, MSPT_ERR_CONFIG, "%s registers no %s%s%s; it registers: %s",
                       file, kind >= 0 ? mspt_kind_name(kind) : "component",
                       name ? " named " : "", name ? name : "", *what ? what : "nothing");
    }
    mspt_registry_free(reg);
    return shown ? 0 : mspt_cli_fail(&err);
}

int mspt_cmd_plugins(int argc, char **argv)
{
    if (mspt_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    if (argc > 2)
        return mspt_cli_usage("plugins takes at most KIND and NAME");
    if (argc == 1 && mspt_target_is_path(argv[0]))
        return show_module(-1, argv[0]);
    int kind = -1;
    if (argc >= 1) {
        kind = mspt_kind_from_plural(argv[0]);
        if (kind < 0) {
            mspt_suggest s;
            mspt_suggest_init(&s, argv[0]);
            for (int k = 0; k < MSPT_KIND_COUNT; k++)
                mspt_suggest_offer(&s, mspt_kind_plural(k));
            const char *best = mspt_suggest_best(&s);
            return mspt_cli_usage("unknown kind '%s'%s%s%s; kinds: encoders, "
                                  "losses, optimizers, schedulers, datasets",
                                  argv[0], best ? " (did you mean '" : "",
                                  best ? best : "", best ? "'?)" : "");
        }
    }
    if (argc == 2 && mspt_target_is_path(argv[1]))
        return show_module(kind, argv[1]);
    mspt_error err = {0};
    mspt_registry *reg = mspt_registry_new();
    if (mspt_registry_load_default(reg, NULL, 0, &err)) {
        mspt_registry_free(reg);
        return mspt_cli_fail(&err);
    }
    mspt_registry_warn_skipped(reg);
    int rc = 0;
    if (argc == 2) {
        if (!mspt_registry_find(reg, kind, argv[1], &err)) {
            rc = mspt_cli_fail(&err);
        } else {
            for (size_t i = 0; i < mspt_registry_count(reg); i++) {
                const mspt_entry *e = mspt_registry_at(reg, i);
                if ((int)e->c->kind == kind && !strcmp(e->c->name, argv[1]))
                    show(e);
            }
        }
    } else {
        for (int k = 0; k < MSPT_KIND_COUNT; k++)
            if (kind < 0 || kind == k) {
                list_kind(reg, k);
                if (kind < 0 && k + 1 < MSPT_KIND_COUNT)
                    printf("\n");
            }
    }
    mspt_registry_free(reg);
    return rc;
}
