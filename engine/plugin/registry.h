/*
 * plugin/registry: the step kinds this process knows, from the plugins
 * compiled into the binary (added by its creator: the lua kind), the built-in
 * plugins folder and each folder of SLUICE_PLUGIN_PATH, in that order (a later
 * kind of the same name is ignored with a warning). Plugins are shared objects
 * loaded with dlopen; one exporting the wrong ABI version, or no entry symbol,
 * is refused. The loader only looks kinds and their schemas up here.
 * Loop thread only.
 */
#ifndef SL_PLUGIN_REGISTRY_H
#define SL_PLUGIN_REGISTRY_H

#include <stdio.h>

#include "sluice/plugin.h"
#include "util/confine.h"
#include "util/util.h"

typedef struct sl_registry sl_registry_t;

/** One known kind, with where it came from. */
typedef struct sl_kind_info {
    const sl_kind_t *kind;
    const sl_plugin_t *plugin;
    const char *path; /* shared object, or "(built-in)" */
} sl_kind_info_t;

/**
 * An empty registry; the plugins it loads are handed `host` (borrowed, outlives them):
 * the engine's table, or a worker's. Returns SL_ENOMEM.
 */
int sl__registry_new(const sl_host_t *host, sl_registry_t **out);
void sl__registry_free(sl_registry_t *reg);
/**
 * Adds a plugin compiled into the binary (the lua kind), called as a loaded plugin's
 * entry would be. Returns SL_EINVAL (refused, in `diag`) or SL_ENOMEM.
 */
int sl__registry_add_builtin(sl_registry_t *reg, sl_plugin_entry_fn entry, sl_diag_t *diag);

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

/**
 * Fills `host` with the ABI's engine-independent functions (values, JSON, memory, error
 * text, the file functions and argument helpers of ABI 1.2; plugin/abi.c) and its head;
 * the task and HTTP functions are left NULL for the caller, which binds them to a
 * scheduler (host/) or a worker (pool/worker.c).
 */
void sl__plugin_host_init(sl_host_t *host);

/**
 * The host table's file_read and file_write (sluice/plugin.h) with the data path resolved
 * beneath `roots` (borrowed; NULL: the working directory): a path that leaves them fails
 * with SL_EPATH and sl__confine_outside_message's text. Threadpool threads, as the table's.
 */
/** How the table's file functions find a task's roots (the engine's host sets it once,
 *  before any task runs; without it they use the working directory). */
void sl__plugin_file_roots(const sl_confine_t *(*fn)(sl_task_t *task));
int sl__plugin_file_read(const sl_confine_t *roots, const char *path, int64_t max_bytes,
                         char **data, size_t *len, char *err, size_t err_size);
int sl__plugin_file_write(const sl_confine_t *roots, const char *path, const char *data,
                          size_t len, uint32_t flags, sl_cancel_flag_t *canceled, char *err,
                          size_t err_size);

#endif
