/* The kind registry: built-in kinds, then plugins found with dlopen. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/registry.h"

typedef struct loaded_plugin {
    void *handle; /* dlopen handle; NULL for built-ins */
    char *path;
    const sl_plugin_t *plugin;
} loaded_plugin_t;

struct sl_registry {
    loaded_plugin_t *plugins;
    size_t plugin_count;
    size_t plugin_cap;
    const sl_host_t *host; /* what plugins are handed */
    sl_kind_info_t *kinds; /* sorted by name */
    size_t kind_count;
    size_t kind_cap;
};

static const char BUILTIN_PATH[] = "(built-in)";

static const sl_kind_t *kind_at(const sl_plugin_t *p, size_t i)
{
    return (const sl_kind_t *)(const void *)((const char *)p->kinds + i * p->kind_size);
}

static bool valid_kind_name(const char *name)
{
    if (name == NULL || *name == '\0' || strlen(name) > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!(*c == '.' || *c == '_' || *c == '-' || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

static int compare_kinds(const void *a, const void *b)
{
    return strcmp(((const sl_kind_info_t *)a)->kind->name, ((const sl_kind_info_t *)b)->kind->name);
}

/* Checks the descriptor; problems are reported against `path`. */
static int check_descriptor(const sl_plugin_t *p, const char *path, sl_diag_t *diag)
{
    sl_mark_t none = {0, 0};
    if (p->abi_major != SL_ABI_MAJOR) {
        sl__diag_add(diag, path,
                     none, "plugin refused: built for ABI %u.%u, this sluice supports ABI %d.x "
                     "(up to %d.%d)", p->abi_major, p->abi_minor, SL_ABI_MAJOR, SL_ABI_MAJOR,
                     SL_ABI_MINOR);
        return SL_EABI;
    }
    if (p->struct_size < offsetof(sl_plugin_t, kinds) + sizeof(p->kinds) ||
        p->kind_size < offsetof(sl_kind_t, start) + sizeof(void *) || p->name == NULL) {
        sl__diag_add(diag, path, none, "plugin refused: malformed descriptor");
        return SL_EABI;
    }
    for (size_t i = 0; i < p->kind_count; i++) {
        const sl_kind_t *k = kind_at(p, i);
        if (!valid_kind_name(k->name) || k->start == NULL ||
            (k->exec != SL_EXEC_IO && k->exec != SL_EXEC_CPU)) {
            sl__diag_add(diag, path, none, "plugin refused: kind %zu ('%s') is malformed", i,
                         valid_kind_name(k->name) ? k->name : "?");
            return SL_EINVAL;
        }
    }
    return 0;
}

static int add_kind(sl_registry_t *reg, const sl_kind_t *kind, const loaded_plugin_t *lp,
                    sl_diag_t *diag)
{
    for (size_t i = 0; i < reg->kind_count; i++) {
        if (strcmp(reg->kinds[i].kind->name, kind->name) == 0) {
            sl__diag_add(diag, lp->path, (sl_mark_t){0, 0},
                         "kind '%s' is already provided by %s; this one is ignored", kind->name,
                         reg->kinds[i].path);
            return 0;
        }
    }
    if (sl__array_grow(&reg->kinds, &reg->kind_cap, reg->kind_count, sizeof(*reg->kinds),
                       16) < 0)
        return SL_ENOMEM;
    reg->kinds[reg->kind_count++] = (sl_kind_info_t){kind, lp->plugin, lp->path};
    return 0;
}

static int add_plugin(sl_registry_t *reg, void *handle, const char *path, const sl_plugin_t *p,
                      sl_diag_t *diag)
{
    if (sl__array_grow(&reg->plugins, &reg->plugin_cap, reg->plugin_count,
                       sizeof(*reg->plugins), 8) < 0)
        return SL_ENOMEM;
    loaded_plugin_t *lp = &reg->plugins[reg->plugin_count];
    lp->path = sl__strdup(path);
    if (lp->path == NULL)
        return SL_ENOMEM;
    lp->handle = handle;
    lp->plugin = p;
    reg->plugin_count++;
    for (size_t i = 0; i < p->kind_count; i++) {
        int rc = add_kind(reg, kind_at(p, i), lp, diag);
        if (rc < 0)
            return rc;
    }
    qsort(reg->kinds, reg->kind_count, sizeof(*reg->kinds), compare_kinds);
    return 0;
}

int sl__registry_new(const sl_host_t *host, sl_registry_t **out)
{
    sl_registry_t *reg = sl__calloc(1, sizeof(*reg));
    if (reg == NULL)
        return SL_ENOMEM;
    reg->host = host;
    *out = reg;
    return 0;
}

int sl__registry_add_builtin(sl_registry_t *reg, sl_plugin_entry_fn entry, sl_diag_t *diag)
{
    const sl_plugin_t *p = entry(reg->host);
    if (p == NULL) {
        sl__diag_add(diag, BUILTIN_PATH, (sl_mark_t){0, 0}, "a built-in plugin refused to load");
        return SL_EINVAL;
    }
    int rc = check_descriptor(p, BUILTIN_PATH, diag);
    return rc < 0 ? rc : add_plugin(reg, NULL, BUILTIN_PATH, p, diag);
}

void sl__registry_free(sl_registry_t *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->plugin_count; i++) {
        sl__free(reg->plugins[i].path);
        /* Handles stay open: a plugin may have started threads or registered
         * atexit work; the process owns them until exit (as Lua and Python do). */
    }
    sl__free(reg->plugins);
    sl__free(reg->kinds);
    sl__free(reg);
}

int sl__registry_load_file(sl_registry_t *reg, const char *path, sl_diag_t *diag)
{
    sl_mark_t none = {0, 0};
    for (size_t i = 0; i < reg->plugin_count; i++)
        if (strcmp(reg->plugins[i].path, path) == 0)
            return 0;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        sl__diag_add(diag, path, none, "cannot load plugin: %s", dlerror());
        return SL_EINVAL;
    }
    sl_plugin_entry_fn entry;
    *(void **)&entry = dlsym(handle, SL_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        sl__diag_add(diag, path, none,
                     "plugin refused: no entry symbol '%s' (not a sluice plugin, or built for "
                     "another ABI)", SL_PLUGIN_ENTRY_SYMBOL);
        dlclose(handle);
        return SL_ENOTFOUND;
    }
    const sl_plugin_t *p = entry(reg->host);
    if (p == NULL) {
        sl__diag_add(diag, path, none, "plugin refused: its entry returned no descriptor");
        dlclose(handle);
        return SL_EINVAL;
    }
    int rc = check_descriptor(p, path, diag);
    if (rc < 0) {
        dlclose(handle);
        return rc;
    }
    rc = add_plugin(reg, handle, path, p, diag);
    return rc == SL_ENOMEM ? rc : 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sl__registry_load_dir(sl_registry_t *reg, const char *dir, sl_diag_t *diag)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    char *names[256];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < SL_COUNTOF(names)) {
        size_t len = strlen(e->d_name);
        if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0)
            names[count++] = sl__asprintf("%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof(*names), compare_names); /* deterministic order */
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        if (names[i] == NULL)
            rc = SL_ENOMEM;
        else if (rc == 0 && sl__registry_load_file(reg, names[i], diag) == SL_ENOMEM)
            rc = SL_ENOMEM;
        sl__free(names[i]);
    }
    return rc;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int sl__registry_load_default(sl_registry_t *reg, sl_diag_t *diag)
{
    const char *exe = sl__exe_dir();
    if (exe) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/plugins", exe);
        if (!is_dir(path))
            snprintf(path, sizeof(path), "%s/../%s", exe, SLUICE_INSTALL_PLUGIN_DIR);
        if (sl__registry_load_dir(reg, path, diag) == SL_ENOMEM)
            return SL_ENOMEM;
    }
    const char *extra = getenv("SLUICE_PLUGIN_PATH");
    if (extra == NULL)
        return 0;
    char *copy = sl__strdup(extra);
    if (copy == NULL)
        return SL_ENOMEM;
    int rc = 0;
    for (char *start = copy, *end; rc == 0 && start; start = end ? end + 1 : NULL) {
        end = strchr(start, ':');
        if (end)
            *end = '\0';
        if (*start)
            rc = sl__registry_load_dir(reg, start, diag) == SL_ENOMEM ? SL_ENOMEM : 0;
    }
    sl__free(copy);
    return rc;
}

const char *sl__registry_file(const sl_kind_info_t *info)
{
    return strcmp(info->path, BUILTIN_PATH) == 0 ? NULL : info->path;
}

const sl_kind_info_t *sl__registry_find(const sl_registry_t *reg, const char *name)
{
    size_t lo = 0, hi = reg->kind_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->kinds[mid].kind->name, name);
        if (c == 0)
            return &reg->kinds[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t sl__registry_count(const sl_registry_t *reg)
{
    return reg->kind_count;
}

const sl_kind_info_t *sl__registry_at(const sl_registry_t *reg, size_t i)
{
    return i < reg->kind_count ? &reg->kinds[i] : NULL;
}

const char *sl__registry_suggest(const sl_registry_t *reg, const char *name)
{
    const char *best = NULL;
    size_t best_distance = 3;
    for (size_t i = 0; i < reg->kind_count; i++) {
        if (reg->kinds[i].kind->flags & SL_KIND_INTERNAL)
            continue; /* never suggested */
        size_t d = sl__edit_distance(name, reg->kinds[i].kind->name, 2);
        if (d < best_distance) {
            best_distance = d;
            best = reg->kinds[i].kind->name;
        }
    }
    return best;
}
