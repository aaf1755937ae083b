/*
 * plugin/registry: the step kinds this process knows, from the built-in
 * kinds compiled into the engine (lua), the built-in plugins folder and each
 * folder of SLUICE_PLUGIN_PATH, in that order (a later kind of the same name
 * is ignored with a warning). Plugins are shared objects loaded with dlopen;
 * one exporting the wrong ABI version, or no entry symbol, is refused.
 *
 * Also owns the host table (sluice/plugin.h) handed to every plugin.
 * Loop thread only.
 */
#ifndef SL_PLUGIN_REGISTRY_H
#define SL_PLUGIN_REGISTRY_H

#include <stdio.h>

#include "sluice/plugin.h"
#include "util/util.h"

typedef struct sl_registry sl_registry_t;

/** One known kind, with where it came from. */
typedef struct sl_kind_info {
    const sl_kind_t *kind;
    const sl_plugin_t *plugin;
    const char *path; /* shared object, or "(built-in)" */
} sl_kind_info_t;

/** A registry holding the kinds compiled into the engine. */
int sl__registry_new(sl_registry_t **out);
void sl__registry_free(sl_registry_t *reg);

/**
 * Loads the built-in plugins folder, then SLUICE_PLUGIN_PATH. Problems with
 * single plugins (bad ABI, missing symbol, dlopen failure) go to `diag`
 * (file = the plugin's path) and loading goes on; returns SL_ENOMEM only.
 */
int sl__registry_load_default(sl_registry_t *reg, sl_diag_t *diag);
/** Loads every *.so in `dir` (a missing folder is not an error). */
int sl__registry_load_dir(sl_registry_t *reg, const char *dir, sl_diag_t *diag);
/** Loads one shared object. Returns SL_EABI, SL_ENOTFOUND, SL_EINVAL on refusal. */
int sl__registry_load_file(sl_registry_t *reg, const char *path, sl_diag_t *diag);

/** The shared object that provides `info`'s kind; NULL for a kind built into the engine. */
const char *sl__registry_file(const sl_kind_info_t *info);

/** The kind named `name`, or NULL. */
const sl_kind_info_t *sl__registry_find(const sl_registry_t *reg, const char *name);
/** Kinds sorted by name. */
size_t sl__registry_count(const sl_registry_t *reg);
const sl_kind_info_t *sl__registry_at(const sl_registry_t *reg, size_t i);
/** Names within edit distance 2 of `name` (best first) for did-you-mean; NULL if none. */
const char *sl__registry_suggest(const sl_registry_t *reg, const char *name);

/** The host table handed to plugins. */
const sl_host_t *sl__host(void);
/**
 * Makes sl__host() return `table` (NULL: the engine's own) for plugins loaded from now
 * on: a worker process copies the engine's table and replaces its task functions.
 * `table` is borrowed for the life of the process. Call before loading plugins.
 */
void sl__host_use(const sl_host_t *table);

/** Folder of the running binary ("build"), borrowed; NULL if unknown. */
const char *sl__exe_dir(void);

#endif
