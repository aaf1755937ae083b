/* cli/common: helpers shared by the commands. */
#ifndef SL_CLI_COMMON_H
#define SL_CLI_COMMON_H

#include <stdbool.h>
#include <string.h>

#include "loader/workflow.h"
#include "plugin/registry.h"
#include "store/store.h"
#include "util/util.h"

/** The plugins compiled into the binary (the lua kind), for every registry it makes: the
 *  engine's (sl__cli_registry) and a worker's (`sluice __worker`). */
#define SL_CLI_BUILTIN_COUNT 1
extern const sl_plugin_entry_fn sl__cli_builtins[SL_CLI_BUILTIN_COUNT];

/** Opens the state store (none with SLUICE_STATE=none: *out NULL), printing a failure;
 *  returns an exit code. */
int sl__cli_state_open(sl_store_mode_t mode, sl_store_t **out);
/**
 * For `run --resume REF`: finds the run, refuses a changed workflow unless `force`, and
 * gives `wf` the resumed run's vars. Prints the problem; returns an exit code.
 */
int sl__cli_resume_prepare(sl_store_t *store, const char *ref, bool force, sl_workflow_t *wf,
                           sl_store_run_row_t *row);

/** Loads and validates a workflow, printing every problem; returns an exit code. */
int sl__cli_load(const char *path, const sl_registry_t *reg, sl_workflow_t **out);
/** True when argv holds --help or -h (before a "--"). */
bool sl__cli_wants_help(int argc, char **argv);

#endif
