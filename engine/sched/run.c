/*
 * A run: step activation, the ready queue and its pump, item bookkeeping,
 * streaming between foreach steps, and the end of the run.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "expr/expr.h"
#include "sched/internal.h"

#define PUMP_BUDGET 4096 /* dispatches per loop turn, so timers and signals still run */

static void step_end(sl_run_t *run, step_rt_t *step);
static void check_finished(sl_run_t *run);

/* ---- the ready queue ------------------------------------------------------ */

/*
 * A CPU step keeps no more tasks in flight than fill the executor's window (the pool's
 * batches): a task's arguments
 * are then made just before they are sent, still in cache, and task records are reused
 * rather than 10,000 made (primes.yaml's sieve step: 29 → 24 ms). Each task that ends
 * brings the step back to the pump.
 */
static bool cpu_window_full(const step_rt_t *step)
{
    const sl_executor_t *cpu = step->run->cpu;
    if (cpu == NULL || step->def->kind == NULL || step->def->kind->exec != SL_EXEC_CPU ||
        step->def->executor == SL_EXECUTOR_SLURM) /* tasks wait on the cluster, in files */
        return false;
    size_t window = cpu->window(cpu);
    return window && step->stats.inflight >= window;
}

static bool step_has_work(const step_rt_t *step)
{
    if (!step->active || step->stats.status != SL_STEP_RUNNING)
        return false;
    /* A Slurm step's concurrency throttles its array elements (%K), not its tasks. */
    uint32_t limit = step->def->executor == SL_EXECUTOR_SLURM ? 0 : step->def->concurrency;
    if ((limit && step->stats.inflight >= limit) || cpu_window_full(step))
        return false;
    if (step->def->stream_from != SL_NO_STEP)
        return step->stream_len > 0;
    return step->next < step->stats.total;
}

static void enqueue(sl_run_t *run, step_rt_t *step)
{
    if (step->queued || !step_has_work(step))
        return;
    step->queued = true;
    step->queue_next = NULL;
    if (run->ready_tail)
        run->ready_tail->queue_next = step;
    else
        run->ready_head = step;
    run->ready_tail = step;
    sl__sched_schedule_pump(run);
}

static step_rt_t *dequeue(sl_run_t *run)
{
    step_rt_t *step = run->ready_head;
    run->ready_head = step->queue_next;
    if (run->ready_head == NULL)
        run->ready_tail = NULL;
    step->queued = false;
    return step;
}

static size_t next_item(step_rt_t *step)
{
    if (step->def->stream_from == SL_NO_STEP)
        return step->next++;
    size_t item = step->stream_queue[step->stream_head];
    step->stream_head = (step->stream_head + 1) % step->stream_cap;
    step->stream_len--;
    return item;
}

static void on_pump(uv_idle_t *idle)
{
    sl_run_t *run = idle->data;
    int budget = PUMP_BUDGET;
    while (budget > 0 && run->ready_head && !run->stopping &&
           run->inflight < run->inflight_max) {
        step_rt_t *step = run->ready_head;
        if (!step_has_work(step)) {
            dequeue(run);
            continue;
        }
        size_t item = next_item(step);
        step->stats.inflight++;
        run->inflight++;
        sl__sched_dispatch(run, step, item, 1);
        budget--;
    }
    if (budget > 0 || run->stopping || run->ready_head == NULL)
        uv_idle_stop(&run->pump);
    check_finished(run);
}

void sl__sched_schedule_pump(sl_run_t *run)
{
    if (!run->pump_closed && !uv_is_active((uv_handle_t *)&run->pump))
        uv_idle_start(&run->pump, on_pump);
}

/* ---- items ---------------------------------------------------------------- */

const sl_value_t *sl__sched_item_value(const sl_run_t *run, const step_rt_t *step, size_t item)
{
    if (!step->is_foreach)
        return NULL;
    if (step->def->stream_from != SL_NO_STEP)
        return sl_value_at(&run->steps[step->def->stream_from].output, item);
    return sl_value_at(&step->items, item);
}

static int stream_push(step_rt_t *sink, size_t item)
{
    if (sink->stream_len == sink->stream_cap) {
        size_t cap = sink->stream_cap ? sink->stream_cap * 2 : 64;
        size_t *queue = sl__malloc(cap * sizeof(*queue));
        if (queue == NULL)
            return SL_ENOMEM;
        for (size_t i = 0; i < sink->stream_len; i++)
            queue[i] = sink->stream_queue[(sink->stream_head + i) % sink->stream_cap];
        sl__free(sink->stream_queue);
        sink->stream_queue = queue;
        sink->stream_head = 0;
        sink->stream_cap = cap;
    }
    sink->stream_queue[(sink->stream_head + sink->stream_len) % sink->stream_cap] = item;
    sink->stream_len++;
    return 0;
}

static void stream_item(sl_run_t *run, step_rt_t *source, size_t item)
{
    if (source->item_ended)
        source->item_ended[item / 8] |= (uint8_t)(1u << (item % 8));
    for (size_t s = 0; s < source->sink_count; s++) {
        step_rt_t *sink = &run->steps[source->sinks[s]];
        if (!sink->active || sink->stats.status != SL_STEP_RUNNING)
            continue;
        if (stream_push(sink, item) < 0) {
            sink->stats.inflight++; /* it never reached the queue: account it as dispatched */
            run->inflight++;
            sl__sched_item_failed(sink, item, SL_ENOMEM, "out of memory", NULL);
            continue;
        }
        enqueue(run, sink);
    }
}

/* An item finished (ok, failed or skipped): free its slot, stream it on, end the step. */
static void item_ended(step_rt_t *step, size_t item)
{
    sl_run_t *run = step->run;
    step->stats.inflight--;
    run->inflight--;
    step->ended_items++;
    if (step->sink_count)
        stream_item(run, step, item);
    if (step->stats.total_known && step->ended_items == step->stats.total &&
        step->stats.ended_ns == 0)
        step_end(run, step); /* failed and canceled steps end too: their wall time counts */
    else
        enqueue(run, step);
    sl__sched_schedule_pump(run);
}

/* Stores an item's output in its slot. No copy shares a running step's output list (it
 * comes into scope when the step ends; streaming sinks read items where they lie), so the
 * unshare finds one owner and copies nothing: it is there so that a change to that rule
 * costs a copy rather than a write into someone else's value. 0, or SL_ENOMEM with
 * `output` freed. */
static int set_output(step_rt_t *step, size_t item, sl_value_t *output)
{
    if (step->is_foreach && sl__value_unshare(&step->output) < 0) {
        sl_value_free(output);
        return SL_ENOMEM;
    }
    sl_value_t *slot = step->is_foreach ? &step->output.as.list->items[item] : &step->output;
    sl_value_clear(slot);
    sl_value_move_into(slot, output);
    return 0;
}

int64_t sl__sched_now_ms(const sl_run_t *run)
{
    return run->origin_ms + (int64_t)(uv_now(run->loop) - run->origin_loop_ms);
}

/* Tells the observer how an item ended, then lets the memo forget what it kept for it. */
static void report_item(step_rt_t *step, size_t item, sl_item_status_t status,
                        const char *error, const item_end_t *end)
{
    sl_run_t *run = step->run;
    void *memo = end ? end->memo : NULL;
    if (run->observer && run->observer->item_ended) {
        sl_item_report_t r = {
            .step = step->index, .item = item, .status = status,
            .attempts = end ? end->attempts : 0, .cached = end && end->cached,
            .started_ms = end ? end->started_ms : 0, .ended_ms = sl__sched_now_ms(run),
            .error = error, .memo = memo,
        };
        if (status == SL_ITEM_OK)
            r.output = step->is_foreach ? &step->output.as.list->items[item] : &step->output;
        run->observer->item_ended(run->observer->ud, &r);
    }
    if (memo && run->memo && run->memo->forget)
        run->memo->forget(run->memo->ud, memo);
}

void sl__sched_item_ok(step_rt_t *step, size_t item, sl_value_t *output, const item_end_t *end)
{
    if (set_output(step, item, output) < 0) {
        sl__sched_item_failed(step, item, SL_ENOMEM, "out of memory", end);
        return;
    }
    step->stats.ok++;
    step->stats.cached += end && end->cached;
    report_item(step, item, SL_ITEM_OK, NULL, end);
    item_ended(step, item);
}

void sl__sched_item_skipped(step_rt_t *step, size_t item, const item_end_t *end)
{
    step->stats.skipped++;
    report_item(step, item, SL_ITEM_SKIPPED, NULL, end);
    item_ended(step, item);
}

static void fail_run(sl_run_t *run, const char *where, const char *message)
{
    if (run->error == NULL)
        run->error = sl__asprintf("%s: %s", where, message);
    run->failed = true;
    if (!run->stopping) {
        run->stopping = true;
        sl__sched_cancel_all(run, false);
    }
}

void sl__sched_item_failed(step_rt_t *step, size_t item, int code, const char *message,
                           const item_end_t *end)
{
    sl_run_t *run = step->run;
    char where[80];
    if (step->is_foreach)
        snprintf(where, sizeof(where), "%s[%zu]", step->def->id, item + 1);
    else
        snprintf(where, sizeof(where), "%s", step->def->id);
    step->stats.failed++;
    bool canceled = code == SL_ECANCELED && run->stopping;
    if (!canceled)
        SL_LOG(SL_LOG_ERROR, run->run_id, where, "%s", message);
    report_item(step, item, canceled ? SL_ITEM_CANCELED : SL_ITEM_FAILED, message, end);
    if (canceled) {
        step->stats.status = SL_STEP_CANCELED;
    } else if (step->def->on_error == SL_ON_ERROR_FAIL) {
        step->stats.status = SL_STEP_FAILED;
        fail_run(run, where, message);
    }
    item_ended(step, item);
}

/* ---- steps ---------------------------------------------------------------- */

/*
 * Activation goes through a queue: a step that ends at once (skipped, empty foreach)
 * ends its dependants' wait inside step_end, and activating them there would recurse
 * as deep as the chain is long. The queue has room for every step, each enters once.
 */
static void activate_later(sl_run_t *run, step_rt_t *step)
{
    run->activation_queue[run->activation_tail++] = step->index;
}

static void drain_activations(sl_run_t *run)
{
    if (run->activating)
        return; /* the outer drain will get to them */
    run->activating = true;
    while (run->activation_head < run->activation_tail)
        sl__sched_activate(run, &run->steps[run->activation_queue[run->activation_head++]]);
    run->activating = false;
}

static void step_end(sl_run_t *run, step_rt_t *step)
{
    if (step->stats.status == SL_STEP_RUNNING)
        step->stats.status = SL_STEP_DONE;
    step->stats.ended_ns = sl__clock_now_ns();
    run->steps_ended++;
    if (run->observer && run->observer->step_ended)
        run->observer->step_ended(run->observer->ud, step->index, &step->stats);
    for (size_t i = 0; i < step->dependent_count; i++) {
        step_rt_t *dep = &run->steps[step->dependents[i]];
        if (--dep->waiting_deps == 0)
            activate_later(run, dep);
    }
    drain_activations(run);
    sl__sched_schedule_pump(run);
}

/* Known item count: allocates the output slots and the stream bitmap. */
static int set_total(step_rt_t *step, size_t total)
{
    step->stats.total = total;
    step->stats.total_known = true;
    step->expanded = true;
    if (!step->is_foreach)
        return 0;
    sl_value_clear(&step->output);
    sl_value_t *list = sl_value_list();
    if (list == NULL || (total && sl_value_reserve(list, total) < 0)) {
        sl_value_free(list);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < total; i++)
        sl_value_init_nil(&list->as.list->items[i]);
    list->as.list->len = total;
    sl_value_move_into(&step->output, list);
    if (step->sink_count && total) {
        step->item_ended = sl__calloc((total + 7) / 8, 1);
        if (step->item_ended == NULL)
            return SL_ENOMEM;
    }
    return 0;
}

/* A step that could not start its items (bad `if`, `with` or `foreach`). */
static void activation_failed(sl_run_t *run, step_rt_t *step, const char *message)
{
    step->stats.failed = 1;
    step->stats.total = 1;
    step->stats.total_known = true;
    SL_LOG(SL_LOG_ERROR, run->run_id, step->def->id, "%s", message);
    if (step->def->on_error == SL_ON_ERROR_FAIL) {
        step->stats.status = SL_STEP_FAILED;
        fail_run(run, step->def->id, message);
    }
    sl_value_clear(&step->output);
    step_end(run, step);
}

/* Tells a source's streaming sinks how many items will come. */
static void announce_total(sl_run_t *run, step_rt_t *source)
{
    size_t total = source->is_foreach ? sl_value_len(&source->output) : 0;
    for (size_t s = 0; s < source->sink_count; s++) {
        step_rt_t *sink = &run->steps[source->sinks[s]];
        if (!sink->active || sink->stats.total_known || sink->stats.status != SL_STEP_RUNNING)
            continue;
        if (set_total(sink, total) < 0) {
            activation_failed(run, sink, "out of memory");
            continue;
        }
        if (total == 0)
            step_end(run, sink);
    }
}

/* Sorted {key, value} entries of a map, as foreach over a map yields them. */
static int map_items(const sl_value_t *map, sl_value_t *out)
{
    size_t n = sl_value_len(map);
    const char **keys = sl__malloc((n ? n : 1) * sizeof(*keys));
    size_t *order = sl__malloc((n ? n : 1) * sizeof(*order));
    sl_value_t *list = sl_value_list();
    int rc = keys && order && list ? sl_value_reserve(list, n) : SL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sl_value_entry(map, i, &keys[i]);
        size_t j = i;
        while (j > 0 && strcmp(keys[order[j - 1]], keys[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *key;
        const sl_value_t *value = sl_value_entry(map, order[i], &key);
        sl_value_t *entry = sl_value_map();
        rc = entry ? sl_value_set(entry, "key", sl_value_cstring(key)) : SL_ENOMEM;
        if (rc == 0)
            rc = sl_value_set(entry, "value", sl_value_copy(value));
        rc = rc == 0 ? sl_value_push(list, entry) : (sl_value_free(entry), rc);
    }
    sl__free(keys);
    sl__free(order);
    if (rc < 0) {
        sl_value_free(list);
        return rc;
    }
    sl_value_move_into(out, list);
    return 0;
}

static int expand_foreach(sl_run_t *run, step_rt_t *step, char **err)
{
    sl_value_t *items = NULL;
    int rc = sl__expr_eval(run->vm, step->def->foreach, NULL, 0, &items, err);
    if (rc < 0)
        return rc;
    sl_type_t type = sl_value_type(items);
    if (type == SL_TYPE_MAP) {
        rc = map_items(items, &step->items);
        sl_value_free(items);
    } else if (type == SL_TYPE_LIST || type == SL_TYPE_NIL) {
        if (type == SL_TYPE_NIL) {
            sl_value_free(items);
            items = sl_value_list();
        }
        if (items == NULL)
            return SL_ENOMEM;
        sl_value_move_into(&step->items, items);
    } else {
        *err = sl__asprintf("foreach expects a list or a map, got %s",
                            sl_value_type_name(type));
        sl_value_free(items);
        return SL_ETYPE;
    }
    return rc < 0 ? rc : set_total(step, sl_value_len(&step->items));
}

/* Evaluates the step's whole-step `if`; returns 1 to run, 0 to skip, <0 on error. */
static int eval_if(sl_run_t *run, step_rt_t *step, char **err)
{
    const sl_tmpl_t *cond = step->def->if_cond;
    if (cond == NULL || (sl__tmpl_flags(cond) & SL_TMPL_USES_ITEM))
        return 1;
    sl_value_t *value = NULL;
    int rc = sl__expr_eval(run->vm, cond, NULL, 0, &value, err);
    if (rc == 0)
        rc = sl_value_truthy(value) ? 1 : 0;
    sl_value_free(value);
    return rc;
}

static int prepare_step(sl_run_t *run, step_rt_t *step, char **err)
{
    const sl_step_t *def = step->def;
    if (!(sl__tmpl_flags(def->with) & SL_TMPL_USES_ITEM)) {
        sl_value_t *args = NULL;
        int rc = sl__expr_eval(run->vm, def->with, NULL, 0, &args, err);
        if (rc < 0)
            return rc;
        sl_value_move_into(&step->args, args);
        step->args_constant = true;
    }
    if (def->stream_from != SL_NO_STEP) {
        step_rt_t *source = &run->steps[def->stream_from];
        if (!source->expanded)
            return 0;
        int rc = set_total(step, source->is_foreach ? sl_value_len(&source->output) : 0);
        for (size_t i = 0; rc == 0 && i < step->stats.total; i++)
            if (source->item_ended && (source->item_ended[i / 8] & (1u << (i % 8))))
                rc = stream_push(step, i);
        return rc;
    }
    if (def->foreach)
        return expand_foreach(run, step, err);
    return set_total(step, 1);
}

void sl__sched_activate(sl_run_t *run, step_rt_t *step)
{
    if (run->stopping || step->active)
        return; /* stopping: stays waiting, reported as not run */
    step->active = true;
    step->stats.status = SL_STEP_RUNNING;
    step->stats.started_ns = sl__clock_now_ns();
    char *err = NULL;
    int rc = eval_if(run, step, &err);
    if (rc == 0) {
        step->stats.status = SL_STEP_SKIPPED;
        step->stats.skipped = 1;
        step->stats.total = 1;
        step->stats.total_known = true;
        step->expanded = true;
        announce_total(run, step);
        step_end(run, step);
        return;
    }
    if (rc > 0)
        rc = prepare_step(run, step, &err);
    if (rc < 0) {
        activation_failed(run, step, err ? err : sl_strerror(rc));
        sl__free(err);
        announce_total(run, step);
        return;
    }
    announce_total(run, step);
    if (step->stats.total_known && step->stats.total == 0)
        step_end(run, step);
    else
        enqueue(run, step);
}

/* ---- the run -------------------------------------------------------------- */

static void finish(sl_run_t *run)
{
    run->finished = true;
    uv_idle_stop(&run->pump);
    uv_timer_stop(&run->grace);
    for (size_t i = 0; i < run->wf->step_count; i++) {
        step_rt_t *step = &run->steps[i];
        if (step->stats.status == SL_STEP_WAITING || step->stats.status == SL_STEP_RUNNING)
            step->stats.status = SL_STEP_CANCELED;
    }
    if (run->done_cb)
        run->done_cb(run, run->done_ud);
}

static size_t zombie_count(const sl_run_t *run)
{
    size_t n = 0;
    for (const sl_task_t *t = run->live; t; t = t->next)
        n += t->state == TASK_ZOMBIE;
    return n;
}

size_t sl__run_stragglers(const sl_run_t *run)
{
    return zombie_count(run);
}

static void on_grace_over(uv_timer_t *timer)
{
    sl_run_t *run = timer->data;
    run->grace_over = true;
    SL_LOG(SL_LOG_WARN, run->run_id, NULL, "%zu canceled tasks did not stop; giving up on them",
           zombie_count(run));
    check_finished(run);
}

static void check_finished(sl_run_t *run)
{
    if (run->finished || !run->started || run->inflight > 0)
        return;
    bool all_ended = run->steps_ended == run->wf->step_count;
    if (!all_ended && !run->stopping) {
        if (run->ready_head || uv_is_active((uv_handle_t *)&run->pump))
            return;
        /* Nothing runs, nothing is ready, and steps remain: a scheduler bug. */
        fail_run(run, "scheduler", "stalled with steps left (internal error)");
    }
    if (!run->grace_over && zombie_count(run) > 0) {
        if (!uv_is_active((uv_handle_t *)&run->grace))
            uv_timer_start(&run->grace, on_grace_over, 5000, 0);
        return;
    }
    finish(run);
}

static int step_output(void *ud, const char *id, const sl_value_t **out)
{
    sl_run_t *run = ud;
    size_t index = sl__workflow_find(run->wf, id);
    if (index == SL_NO_STEP || run->steps[index].stats.ended_ns == 0)
        return 0;
    *out = &run->steps[index].output;
    return 1;
}

static const char *step_name(void *ud, size_t i)
{
    const sl_run_t *run = ud;
    return i < run->wf->step_count ? run->wf->steps[i].id : NULL;
}

/* Reverse edges: who waits for whom, and who streams from whom. Two passes (count,
 * then fill) so each list is one exact allocation, however many dependants a step has. */
static int link_steps(sl_run_t *run)
{
    const sl_workflow_t *wf = run->wf;
    size_t n = wf->step_count;
    for (size_t i = 0; i < n; i++) {
        const sl_step_t *def = &wf->steps[i];
        for (size_t d = 0; d < def->dep_count; d++) {
            step_rt_t *dep = &run->steps[def->deps[d]];
            if (def->deps[d] == def->stream_from) {
                dep->sink_count++;
            } else {
                dep->dependent_count++;
                run->steps[i].waiting_deps++;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        step_rt_t *step = &run->steps[i];
        if (step->dependent_count &&
            !(step->dependents = sl__malloc(step->dependent_count * sizeof(size_t))))
            return SL_ENOMEM;
        if (step->sink_count && !(step->sinks = sl__malloc(step->sink_count * sizeof(size_t))))
            return SL_ENOMEM;
        step->dependent_count = step->sink_count = 0; /* refilled below */
    }
    for (size_t i = 0; i < n; i++) {
        const sl_step_t *def = &wf->steps[i];
        for (size_t d = 0; d < def->dep_count; d++) {
            step_rt_t *dep = &run->steps[def->deps[d]];
            if (def->deps[d] == def->stream_from)
                dep->sinks[dep->sink_count++] = i;
            else
                dep->dependents[dep->dependent_count++] = i;
        }
    }
    return 0;
}

int sl__run_new(uv_loop_t *loop, const sl_workflow_t *wf, const sl_run_opts_t *opts,
                sl_run_t **out)
{
    sl_run_t *run = sl__calloc(1, sizeof(*run));
    if (run == NULL)
        return SL_ENOMEM;
    run->loop = loop;
    run->wf = wf;
    run->inflight_max = opts->inflight_max ? opts->inflight_max : SL_RUN_INFLIGHT_MAX;
    run->started_unix = opts->started_unix ? opts->started_unix : (int64_t)time(NULL);
    run->run_id = opts->run_id ? sl__strdup(opts->run_id)
                               : sl__asprintf("%" PRId64, run->started_unix);
    run->rng = sl__clock_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    run->cpu = opts->cpu;
    run->services = opts->services;
    run->observer = opts->observer;
    run->memo = opts->memo;
    uv_update_time(run->loop);
    run->origin_loop_ms = uv_now(run->loop);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    run->origin_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    run->steps = sl__calloc(wf->step_count ? wf->step_count : 1, sizeof(*run->steps));
    run->activation_queue = sl__malloc((wf->step_count ? wf->step_count : 1) * sizeof(size_t));
    int rc = run->run_id && run->steps && run->activation_queue ? 0 : SL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < wf->step_count; i++) {
        step_rt_t *step = &run->steps[i];
        step->run = run;
        step->def = &wf->steps[i];
        step->index = i;
        step->is_foreach = step->def->foreach != NULL || step->def->stream_from != SL_NO_STEP;
    }
    if (rc == 0)
        rc = link_steps(run);
    sl_vm_scope_t scope = {
        .vars = wf->vars, .workflow_name = wf->name, .run_id = run->run_id,
        .run_started = run->started_unix, .step_output = step_output,
        .step_name = step_name, .ud = run,
    };
    if (rc == 0)
        rc = sl__vm_new(&scope, NULL, &run->vm);
    if (rc == 0) {
        uv_idle_init(loop, &run->pump);
        uv_timer_init(loop, &run->grace);
        run->pump.data = run->grace.data = run;
        run->handles_open = 2;
    }
    if (rc < 0) {
        sl__run_free(run);
        return rc;
    }
    *out = run;
    return 0;
}

int sl__run_start(sl_run_t *run, sl_run_done_cb done, void *ud)
{
    if (run->started)
        return SL_EINVAL;
    run->started = true;
    run->done_cb = done;
    run->done_ud = ud;
    run->activating = true; /* roots first, in file order; then whatever they unblock */
    for (size_t i = 0; i < run->wf->step_count; i++)
        if (run->steps[i].waiting_deps == 0)
            activate_later(run, &run->steps[i]);
    run->activating = false;
    drain_activations(run);
    sl__sched_schedule_pump(run); /* the done callback comes from the loop, never from here */
    return 0;
}

void sl__run_stop(sl_run_t *run, bool cancel)
{
    if (run->finished)
        return;
    run->stopping = true;
    run->canceling = run->canceling || cancel;
    sl__sched_cancel_all(run, cancel);
    sl__sched_schedule_pump(run);
}

static void on_handle_closed(uv_handle_t *handle)
{
    sl_run_t *run = handle->data;
    run->handles_open--;
}

void sl__run_close(sl_run_t *run)
{
    if (run->handles_open && !run->pump_closed) {
        uv_close((uv_handle_t *)&run->pump, on_handle_closed);
        uv_close((uv_handle_t *)&run->grace, on_handle_closed);
        run->pump_closed = true;
        /* Let close callbacks (ours and released tasks' timers) run. */
        for (int i = 0; i < 100 && (run->handles_open || uv_loop_alive(run->loop)); i++)
            uv_run(run->loop, UV_RUN_NOWAIT);
    }
}

void sl__run_free(sl_run_t *run)
{
    if (run == NULL)
        return;
    sl__run_close(run);
    if (zombie_count(run) > 0)
        return; /* a kind may still complete them: keep the run alive until exit */
    sl__sched_free_tasks(run);
    for (size_t i = 0; run->steps && i < run->wf->step_count; i++) {
        step_rt_t *step = &run->steps[i];
        sl_value_clear(&step->args);
        sl_value_clear(&step->items);
        sl_value_clear(&step->output);
        sl__free(step->dependents);
        sl__free(step->sinks);
        sl__free(step->stream_queue);
        sl__free(step->item_ended);
    }
    sl__vm_free(run->vm);
    sl__free(run->activation_queue);
    sl__free(run->steps);
    sl__free(run->error);
    sl__free(run->run_id);
    sl__free(run);
}

bool sl__run_succeeded(const sl_run_t *run)
{
    return run->finished && !run->failed && !run->stopping;
}

bool sl__run_stopped(const sl_run_t *run)
{
    return run->stopping && !run->failed;
}

const sl_step_stats_t *sl__run_step_stats(const sl_run_t *run, size_t step)
{
    return &run->steps[step].stats;
}

const char *sl__run_error(const sl_run_t *run)
{
    return run->error;
}

const sl_value_t *sl__run_output(const sl_run_t *run, size_t step)
{
    return run->steps[step].stats.ended_ns ? &run->steps[step].output : NULL;
}

const char *sl__run_id(const sl_run_t *run)
{
    return run->run_id;
}
