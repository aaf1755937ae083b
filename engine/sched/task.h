/*
 * sched/task: what engine-internal kinds (lua) may ask of a task beyond the
 * host table. Loop thread only; results are borrowed for the task's life.
 */
#ifndef SL_SCHED_TASK_H
#define SL_SCHED_TASK_H

#include <stdint.h>

#include "loader/workflow.h"
#include "sluice/plugin.h"
#include "value/value.h"

typedef struct sl_vm sl_vm_t;
typedef struct sl_services sl_services_t;

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
/** The services the run was given (sl_run_opts_t.services), or NULL. */
sl_services_t *sl__task_services(sl_task_t *task);
/**
 * What the task's code may see, as one map for a worker process: vars, workflow (name),
 * run {id, started}, item, index, and steps {ID: output} for each step it depends on.
 * Returns 0 and *out (the caller's), or SL_ENOMEM.
 */
int sl__task_scope(sl_task_t *task, sl_value_t **out);
/** "step" or "step[index]", for messages. */
const char *sl__task_where(sl_task_t *task);

#endif
