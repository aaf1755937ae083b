/*
 * Attempts: dispatch to a kind, completion, timeouts and retries. A task is
 * one attempt at one item; it lives until the kind has completed it and its
 * timer (if any) is closed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "expr/expr.h"
#include "sched/internal.h"

#define SPARE_TASKS_MAX 1024

static void link_task(sl_run_t *run, sl_task_t *t)
{
    t->prev = NULL;
    t->next = run->live;
    if (run->live)
        run->live->prev = t;
    run->live = t;
}

static void unlink_task(sl_run_t *run, sl_task_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        run->live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static sl_task_t *new_task(sl_run_t *run, step_rt_t *step, size_t item, uint32_t attempt)
{
    sl_task_t *t = run->spare;
    if (t) {
        run->spare = t->next;
        run->spare_count--;
    } else {
        t = sl__malloc(sizeof(*t));
        if (t == NULL)
            return NULL;
    }
    t->run = run;
    t->step = step;
    t->item = item;
    t->attempt = attempt;
    t->state = TASK_STARTING;
    t->timer_inited = false;
    t->timeout_held = false;
    t->timeout_used = false;
    t->completed = false;
    t->in_executor = false;
    t->looked_up = false;
    t->retry_after_ms = 0;
    t->owned_args = NULL;
    t->args = NULL;
    t->data = NULL;
    t->memo = NULL;
    t->item_started_ms = 0;
    t->subject = NULL;
    t->where[0] = '\0';
    link_task(run, t);
    return t;
}

/* What the observer learns of the item when this attempt is its last. */
static item_end_t end_of(const sl_task_t *t)
{
    return (item_end_t){t->attempt, t->item_started_ms, false, t->memo};
}

static void on_timer_closed(uv_handle_t *handle)
{
    sl__free(handle->data);
}

/* Forgets a task whose kind is done with it. */
static void release_task(sl_task_t *t)
{
    sl_run_t *run = t->run;
    unlink_task(run, t);
    sl_value_free(t->owned_args);
    t->owned_args = NULL;
    sl__free(t->subject);
    t->subject = NULL;
    t->state = TASK_FREE;
    if (t->timer_inited) {
        t->timer.data = t;
        uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    } else if (run->spare_count < SPARE_TASKS_MAX) {
        t->next = run->spare;
        run->spare = t;
        run->spare_count++;
    } else {
        sl__free(t);
    }
    sl__sched_schedule_pump(run);
}

static int start_timer(sl_task_t *t, uint64_t ms, uv_timer_cb cb)
{
    if (!t->timer_inited) {
        int rc = uv_timer_init(t->run->loop, &t->timer);
        if (rc < 0)
            return SL_ESYS;
        t->timer_inited = true;
    }
    t->timer.data = t;
    return uv_timer_start(&t->timer, cb, ms, 0) < 0 ? SL_ESYS : 0;
}

static void stop_timer(sl_task_t *t)
{
    if (t->timer_inited)
        uv_timer_stop(&t->timer);
}

/* Full-jitter-free "equal jitter" exponential backoff: half fixed, half random. */
static uint64_t backoff_ms(sl_run_t *run, const sl_retry_t *retry, uint32_t failed_attempt)
{
    double delay = (double)retry->backoff_ms;
    for (uint32_t i = 1; i < failed_attempt && delay < (double)retry->max_backoff_ms; i++)
        delay *= 2;
    if (delay > (double)retry->max_backoff_ms)
        delay = (double)retry->max_backoff_ms;
    run->rng ^= run->rng << 13;
    run->rng ^= run->rng >> 7;
    run->rng ^= run->rng << 17;
    double unit = (double)(run->rng >> 11) / (double)(1ull << 53);
    return (uint64_t)(delay / 2 + unit * delay / 2);
}

static void dispatch_attempt(sl_run_t *run, step_rt_t *step, size_t item, uint32_t attempt,
                             const item_end_t *before);

static void on_retry_timer(uv_timer_t *timer)
{
    sl_task_t *t = timer->data;
    sl_run_t *run = t->run;
    step_rt_t *step = t->step;
    size_t item = t->item;
    uint32_t attempt = t->attempt;
    item_end_t before = end_of(t);
    before.attempts = attempt - 1;
    release_task(t);
    if (run->stopping) {
        sl__sched_item_failed(step, item, SL_ECANCELED, "not retried: the run is stopping",
                              &before);
        return;
    }
    dispatch_attempt(run, step, item, attempt, &before);
}

/*
 * An attempt failed: retry after a backoff, or fail the item. `retry_after_ms` is the
 * kind's hint (sl_host_t.task_retry_after): > 0 replaces the backoff, < 0 forbids a retry.
 * `end` describes the failed attempt; a retry carries its memo and start time on.
 */
static void attempt_failed(sl_run_t *run, step_rt_t *step, size_t item, const item_end_t *end,
                           int code, const char *message, int64_t retry_after_ms)
{
    const sl_retry_t *retry = &step->def->retry;
    uint32_t attempt = end->attempts;
    /* A path outside the allowed folders stays outside: never retried. */
    if (attempt >= retry->attempts || run->stopping || retry_after_ms < 0 || code == SL_EPATH) {
        sl__sched_item_failed(step, item, code, message, end);
        return;
    }
    uint64_t delay = backoff_ms(run, retry, attempt);
    if (retry_after_ms > 0)
        delay = (uint64_t)(retry_after_ms < retry->max_backoff_ms ? retry_after_ms
                                                                   : retry->max_backoff_ms);
    sl_task_t *wait = new_task(run, step, item, attempt + 1);
    if (wait == NULL || start_timer(wait, delay, on_retry_timer) < 0) {
        if (wait)
            release_task(wait);
        sl__sched_item_failed(step, item, SL_ENOMEM, "cannot schedule a retry: out of memory",
                              end);
        return;
    }
    wait->state = TASK_WAITING;
    wait->memo = end->memo;
    wait->item_started_ms = end->started_ms;
    step->stats.retries++;
    const char *where = sl__task_where(wait);
    char wait_text[32];
    if (delay < 1000)
        snprintf(wait_text, sizeof(wait_text), "%" PRIu64 "ms", delay);
    else
        snprintf(wait_text, sizeof(wait_text), "%.1fs", (double)delay / 1000);
    SL_LOG(SL_LOG_WARN, run->run_id, where,
           "attempt %" PRIu32 "/%" PRIu32 " failed: %s; retrying in %s", attempt,
           retry->attempts, message, wait_text);
}

static void on_timeout(uv_timer_t *timer)
{
    sl_task_t *t = timer->data;
    sl_run_t *run = t->run;
    step_rt_t *step = t->step;
    size_t item = t->item;
    item_end_t end = end_of(t);
    /* "GET URL: timed out after 2s (attempt 1)" when the attempt was a request */
    char message[1024];
    if (t->subject)
        snprintf(message, sizeof(message), "%s: timed out after %.3gs (attempt %" PRIu32 ")",
                 t->subject, (double)step->def->timeout_ms / 1000, t->attempt);
    else
        snprintf(message, sizeof(message), "timed out after %.3gs",
                 (double)step->def->timeout_ms / 1000);
    t->state = TASK_ZOMBIE;
    /* cancel() may complete (and so free) the task at once: touch nothing after. */
    if (step->def->kind->cancel)
        step->def->kind->cancel(t);
    attempt_failed(run, step, item, &end, SL_ETIMEDOUT, message, 0);
}

/* Evaluates per-item `if` and `with`; returns false when the item ended here. */
static bool prepare_args(sl_run_t *run, step_rt_t *step, size_t item, sl_task_t *t)
{
    const sl_step_t *def = step->def;
    const sl_value_t *value = sl__sched_item_value(run, step, item);
    int64_t index = step->is_foreach ? (int64_t)item + 1 : 0;
    char *err = NULL;
    if (def->if_cond && (sl__tmpl_flags(def->if_cond) & SL_TMPL_USES_ITEM)) {
        sl_value_t *cond = NULL;
        int rc = sl__expr_eval(run->vm, def->if_cond, value, index, &cond, &err);
        bool truthy = rc == 0 && sl_value_truthy(cond);
        sl_value_free(cond);
        if (rc < 0 || !truthy) {
            item_end_t end = end_of(t);
            end.attempts = 0;
            release_task(t);
            if (rc < 0)
                sl__sched_item_failed(step, item, rc, err ? err : sl_strerror(rc), &end);
            else
                sl__sched_item_skipped(step, item, &end);
            sl__free(err);
            return false;
        }
    }
    if (step->args_constant) {
        t->args = &step->args;
        return true;
    }
    int rc = sl__expr_eval(run->vm, def->with, value, index, &t->owned_args, &err);
    if (rc < 0) {
        item_end_t end = end_of(t);
        release_task(t);
        sl__sched_item_failed(step, item, rc, err ? err : sl_strerror(rc), &end);
        sl__free(err);
        return false;
    }
    t->args = t->owned_args;
    return true;
}

/* ---- CPU kinds: the run's executor --------------------------------------------------
 * The executor runs the task elsewhere (a worker process) and reports from the loop; its
 * timeouts count from when the task starts there, so no timer of ours runs meanwhile. */

static void submit_cpu(sl_run_t *run, step_rt_t *step, sl_task_t *t)
{
    const sl_step_t *def = step->def;
    sl_cpu_task_t cpu = {
        .kind = def->kind->name,
        .plugin = def->plugin,
        .args = t->args,
        .attempt = t->attempt,
        .timeout_ms = def->timeout_ms > 0 ? def->timeout_ms : 0,
        .task_ns = &step->cpu_task_ns,
    };
    t->state = TASK_RUNNING;
    int rc = run->cpu->submit(run->cpu, t, &cpu, &t->exec_handle);
    if (rc < 0) {
        item_end_t end = end_of(t);
        size_t item = t->item;
        release_task(t);
        attempt_failed(run, step, item, &end, rc, "cannot hand the task to its executor: "
                       "out of memory", 0);
        return;
    }
    t->in_executor = true;
}

/* Starts the kind on a task whose arguments are ready. */
static void start_kind(sl_run_t *run, step_rt_t *step, sl_task_t *t)
{
    const sl_step_t *def = step->def;
    size_t item = t->item;
    if (def->kind->exec == SL_EXEC_CPU && run->cpu) {
        submit_cpu(run, step, t);
        return;
    }
    t->state = TASK_STARTING;
    if (def->timeout_ms > 0 && def->kind->exec == SL_EXEC_IO &&
        start_timer(t, (uint64_t)def->timeout_ms, on_timeout) < 0) {
        item_end_t end = end_of(t);
        release_task(t);
        sl__sched_item_failed(step, item, SL_ESYS, "cannot start the timeout timer", &end);
        return;
    }
    int rc = def->kind->start(t, t->args);
    if (rc < 0) {
        /* Refused to start: the kind will not complete it (sluice/plugin.h). */
        item_end_t end = end_of(t);
        stop_timer(t);
        release_task(t);
        char message[128];
        snprintf(message, sizeof(message), "kind '%s' could not start: %s", def->uses,
                 sl_strerror(rc));
        attempt_failed(run, step, item, &end, rc, message, 0);
        return;
    }
    if (!t->completed && t->state == TASK_STARTING)
        t->state = TASK_RUNNING;
}

/* Resume: the memo holds the item's output from the run this one resumes. */
static bool recalled(sl_run_t *run, step_rt_t *step, size_t item)
{
    sl_value_t *output = NULL;
    if (!run->memo || !run->memo->recall ||
        !run->memo->recall(run->memo->ud, step->index, item, &output))
        return false;
    item_end_t end = {0, 0, true, NULL};
    sl__sched_item_ok(step, item, output ? output : sl_value_nil(), &end);
    return true;
}

static void dispatch_attempt(sl_run_t *run, step_rt_t *step, size_t item, uint32_t attempt,
                             const item_end_t *before)
{
    sl_task_t *t = new_task(run, step, item, attempt);
    if (t == NULL) {
        sl__sched_item_failed(step, item, SL_ENOMEM, "out of memory", before);
        return;
    }
    t->memo = before ? before->memo : NULL;
    t->item_started_ms = before ? before->started_ms : sl__sched_now_ms(run);
    t->looked_up = before && before->memo; /* a retry of a looked-up item finishes through it */
    if (!prepare_args(run, step, item, t))
        return;
    const sl_run_memo_t *memo = run->memo;
    if (attempt == 1 && step->def->cache.on && memo && memo->lookup) {
        t->state = TASK_LOOKUP;
        t->looked_up = true;
        if (memo->lookup(memo->ud, t, t->args) == 0)
            return; /* sl__sched_task_lookup_done continues */
        t->looked_up = t->memo != NULL;
    }
    start_kind(run, step, t);
}

void sl__sched_dispatch(sl_run_t *run, step_rt_t *step, size_t item, uint32_t attempt)
{
    if (attempt == 1 && recalled(run, step, item))
        return;
    dispatch_attempt(run, step, item, attempt, NULL);
}

void sl__sched_task_lookup_done(sl_task_t *t, sl_lookup_t answer, sl_value_t *value)
{
    sl_run_t *run = t->run;
    step_rt_t *step = t->step;
    size_t item = t->item;
    if (t->state != TASK_LOOKUP) { /* a bug of the memo's: the task is not waiting */
        sl_value_free(value);
        return;
    }
    if (run->stopping || answer == SL_LOOKUP_HIT) {
        item_end_t end = end_of(t);
        end.attempts = 0;
        end.cached = answer == SL_LOOKUP_HIT;
        release_task(t);
        if (answer == SL_LOOKUP_HIT && !run->stopping) {
            sl__sched_item_ok(step, item, value ? value : sl_value_nil(), &end);
            return;
        }
        sl_value_free(value);
        sl__sched_item_failed(step, item, SL_ECANCELED, "not started: the run is stopping",
                              &end);
        return;
    }
    if (answer == SL_LOOKUP_RUN_WITH && value) {
        sl_value_free(t->owned_args);
        t->owned_args = value;
        t->args = value;
    } else {
        sl_value_free(value);
    }
    start_kind(run, step, t);
}

void sl__sched_task_done(sl_task_t *t, sl_value_t *output)
{
    if (t->completed) {
        sl_value_free(output);
        return; /* completed twice: the kind's bug; the first one counts */
    }
    t->completed = true;
    if (t->state == TASK_ZOMBIE) {
        sl_value_free(output);
        release_task(t);
        return;
    }
    stop_timer(t);
    sl_run_t *run = t->run;
    step_rt_t *step = t->step;
    size_t item = t->item;
    if (!output)
        output = sl_value_nil();
    bool cached = false;
    if (t->looked_up && run->memo && run->memo->finish && output)
        output = run->memo->finish(run->memo->ud, t, output, &cached);
    item_end_t end = end_of(t);
    end.cached = cached;
    release_task(t);
    if (output == NULL) {
        sl__sched_item_failed(step, item, SL_ENOMEM, "out of memory", &end);
        return;
    }
    sl__sched_item_ok(step, item, output, &end);
}

void sl__sched_task_fail(sl_task_t *t, int code, const char *message)
{
    if (t->completed)
        return;
    t->completed = true;
    if (t->state == TASK_ZOMBIE) {
        release_task(t);
        return;
    }
    stop_timer(t);
    sl_run_t *run = t->run;
    step_rt_t *step = t->step;
    size_t item = t->item;
    int64_t retry_after_ms = t->retry_after_ms;
    item_end_t end = end_of(t);
    char *copy = sl__strdup(message ? message : sl_strerror(code));
    release_task(t);
    attempt_failed(run, step, item, &end, code < 0 ? code : SL_EFAILED,
                   copy ? copy : "out of memory", retry_after_ms);
    sl__free(copy);
}

/*
 * Handling a task frees at most that task (a kind's cancel completes only the task it
 * is given), and a stopping run starts no task, so the saved `next` stays valid.
 */
void sl__sched_cancel_all(sl_run_t *run, bool cancel_running)
{
    sl_task_t *t = run->live;
    while (t) {
        sl_task_t *next = t->next;
        step_rt_t *step = t->step;
        size_t item = t->item;
        item_end_t end = end_of(t);
        if (t->state == TASK_WAITING) {
            stop_timer(t);
            end.attempts--;
            release_task(t);
            sl__sched_item_failed(step, item, SL_ECANCELED, "not retried: the run is stopping",
                                  &end);
        } else if (t->state == TASK_LOOKUP) {
            run->memo->lookup_cancel(run->memo->ud, t);
            end.attempts = 0;
            release_task(t);
            sl__sched_item_failed(step, item, SL_ECANCELED, "not started: the run is stopping",
                                  &end);
        } else if (t->state == TASK_RUNNING && t->in_executor &&
                   run->cpu->unqueue(run->cpu, t->exec_handle)) {
            /* still queued: it has not started, and now will not */
            end.attempts = 0;
            release_task(t);
            sl__sched_item_failed(step, item, SL_ECANCELED, "not started: the run is stopping",
                                  &end);
        } else if (cancel_running && t->state == TASK_RUNNING) {
            stop_timer(t);
            t->state = TASK_ZOMBIE;
            if (t->in_executor)
                run->cpu->cancel(run->cpu, t->exec_handle); /* it fails it later */
            else if (step->def->kind->cancel)
                step->def->kind->cancel(t);
            sl__sched_item_failed(step, item, SL_ECANCELED, "canceled", &end);
        }
        t = next;
    }
}

void sl__sched_free_tasks(sl_run_t *run)
{
    while (run->spare) {
        sl_task_t *t = run->spare;
        run->spare = t->next;
        sl__free(t);
    }
    run->spare_count = 0;
}

/* ---- host table and task.h accessors ------------------------------------ */

struct uv_loop_s *sl__sched_task_loop(sl_task_t *task)
{
    return task->run->loop;
}

void sl__sched_task_set_data(sl_task_t *task, void *data)
{
    task->data = data;
}

void *sl__sched_task_data(sl_task_t *task)
{
    return task->data;
}

int sl__sched_task_attempt(sl_task_t *task)
{
    return (int)task->attempt;
}

void sl__sched_task_set_memo(sl_task_t *task, void *memo)
{
    task->memo = memo;
}

void *sl__sched_task_memo(sl_task_t *task)
{
    return task->memo;
}

const sl_value_t *sl__sched_task_args(const sl_task_t *task)
{
    return task->args;
}

size_t sl__sched_task_step(const sl_task_t *task)
{
    return task->step->index;
}

size_t sl__sched_task_item(const sl_task_t *task)
{
    return task->item;
}

int64_t sl__sched_task_timeout_hold(sl_task_t *task)
{
    const sl_step_t *def = task->step->def;
    if (task->state != TASK_STARTING || task->timeout_used || def->timeout_ms <= 0 ||
        def->kind->exec != SL_EXEC_IO || !task->timer_inited)
        return 0;
    task->timeout_used = true;
    task->timeout_held = true;
    uv_timer_stop(&task->timer);
    return def->timeout_ms;
}

void sl__sched_task_timeout_resume(sl_task_t *task)
{
    if (!task->timeout_held || task->completed ||
        (task->state != TASK_STARTING && task->state != TASK_RUNNING))
        return;
    task->timeout_held = false;
    if (start_timer(task, (uint64_t)task->step->def->timeout_ms, on_timeout) < 0)
        SL_LOG(SL_LOG_WARN, task->run->run_id, sl__task_where(task),
               "cannot start the timeout timer: the attempt has no timeout");
}

void sl__sched_task_set_subject(sl_task_t *task, const char *subject)
{
    if (task->subject == NULL && subject && *subject)
        task->subject = sl__strdup(subject); /* out of memory: the plain message */
}

uint64_t sl__sched_task_deadline_ns(const sl_task_t *task)
{
    const sl_step_t *def = task->step->def;
    if (def->timeout_ms <= 0 || !task->timer_inited || task->timeout_held ||
        !uv_is_active((const uv_handle_t *)&task->timer) ||
        (task->state != TASK_STARTING && task->state != TASK_RUNNING))
        return 0;
    uint64_t due_ms = uv_now(task->run->loop) + uv_timer_get_due_in(&task->timer);
    return due_ms * 1000000u;
}

int64_t sl__sched_task_timeout_ms(const sl_task_t *task)
{
    return task->step->def->timeout_ms > 0 ? task->step->def->timeout_ms : 0;
}

void sl__sched_task_retry_after(sl_task_t *task, int64_t delay_ms)
{
    task->retry_after_ms = delay_ms;
}

int sl__task_scope(sl_task_t *task, sl_value_t **out)
{
    sl_run_t *run = task->run;
    const sl_step_t *def = task->step->def;
    sl_value_t *scope = sl_value_map(), *info = sl_value_map(), *steps = sl_value_map();
    int rc = scope && info && steps ? 0 : SL_ENOMEM;
    if (rc == 0)
        rc = sl_value_set(info, "id", sl_value_cstring(run->run_id));
    if (rc == 0)
        rc = sl_value_set(info, "started", sl_value_int(run->started_unix));
    for (size_t i = 0; rc == 0 && i < def->dep_count; i++) {
        const step_rt_t *dep = &run->steps[def->deps[i]];
        if (dep->stats.ended_ns)
            rc = sl_value_set(steps, dep->def->id, sl_value_copy(&dep->output));
    }
    const sl_value_t *item = sl__task_item(task);
    int64_t index = sl__task_index(task);
    if (rc == 0)
        rc = sl_value_set(scope, "vars", sl_value_copy(run->wf->vars));
    if (rc == 0)
        rc = sl_value_set(scope, "workflow", sl_value_cstring(run->wf->name));
    if (rc == 0) {
        rc = sl_value_set(scope, "run", info);
        info = NULL;
    }
    if (rc == 0 && item)
        rc = sl_value_set(scope, "item", sl_value_copy(item));
    if (rc == 0 && index > 0)
        rc = sl_value_set(scope, "index", sl_value_int(index));
    if (rc == 0) {
        rc = sl_value_set(scope, "steps", steps);
        steps = NULL;
    }
    sl_value_free(info);
    sl_value_free(steps);
    if (rc < 0) {
        sl_value_free(scope);
        return rc;
    }
    *out = scope;
    return 0;
}

sl_services_t *sl__task_services(sl_task_t *task)
{
    return task->run->services;
}

void sl__sched_task_vlog(sl_task_t *task, int level, const char *fmt, va_list ap)
{
    if (level < sl__log_level)
        return;
    sl__log_vwrite(level, task ? task->run->run_id : NULL, task ? sl__task_where(task) : NULL,
                   fmt, ap);
}

sl_vm_t *sl__task_vm(sl_task_t *task)
{
    return task->run->vm;
}

const sl_value_t *sl__task_item(sl_task_t *task)
{
    return task->step->is_foreach ? sl__sched_item_value(task->run, task->step, task->item)
                                  : NULL;
}

int64_t sl__task_index(sl_task_t *task)
{
    return task->step->is_foreach ? (int64_t)task->item + 1 : 0;
}

const char *sl__task_step_id(sl_task_t *task)
{
    return task->step->def->id;
}

const char *sl__task_workflow_dir(sl_task_t *task)
{
    return task->run->wf->dir;
}

const sl_workflow_t *sl__task_workflow(sl_task_t *task)
{
    return task->run->wf;
}

const char *sl__task_where(sl_task_t *task)
{
    if (task->where[0] == '\0') {
        if (task->step->is_foreach)
            snprintf(task->where, sizeof(task->where), "%s[%zu]", task->step->def->id,
                     task->item + 1);
        else
            snprintf(task->where, sizeof(task->where), "%s", task->step->def->id);
    }
    return task->where;
}
