/*
 * sched/task: what engine-internal kinds (lua) may ask of a task beyond the
 * host table. Loop thread only; results are borrowed for the task's life.
 */
#ifndef SL_SCHED_TASK_H
#define SL_SCHED_TASK_H

#include <stdint.h>

#include "io/http.h"
#include "loader/workflow.h"
#include "lua/vm.h"
#include "pool/pool.h"
#include "sluice/plugin.h"
#include "value/value.h"

/** The run's VM. */
sl_vm_t *sl__task_vm(sl_task_t *task);
/** The foreach item (NULL when the step has no foreach) and its 1-based index (0 then). */
const sl_value_t *sl__task_item(sl_task_t *task);
int64_t sl__task_index(sl_task_t *task);
/** The step's id, and the workflow file's folder (for `script` paths). */
const char *sl__task_step_id(sl_task_t *task);
const char *sl__task_workflow_dir(sl_task_t *task);
/** The workflow the task's run runs. */
const sl_workflow_t *sl__task_workflow(sl_task_t *task);
/**
 * The run's HTTP client, made on first use with the workflow's limits: 0, or SL_ENOMEM or
 * SL_ENOTFOUND (libcurl cannot be loaded) with the reason in `err`.
 */
int sl__task_http(sl_task_t *task, sl_http_client_t **out, char *err, size_t err_size);
/**
 * The run's worker pool (started on first use), for engine code that runs a CPU kind on
 * a task's behalf (Lua's sluice.html.select); NULL when the run has no worker binary.
 */
sl_pool_t *sl__task_pool(sl_task_t *task);
/**
 * What the task's code may see, as one map for a worker process: vars, workflow (name),
 * run {id, started}, item, index, and steps {ID: output} for each step it depends on.
 * Returns 0 and *out (the caller's), or SL_ENOMEM.
 */
int sl__task_scope(sl_task_t *task, sl_value_t **out);
/** "step" or "step[index]", for messages. */
const char *sl__task_where(sl_task_t *task);

#endif
