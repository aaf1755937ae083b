/*
 * slurm: the executor's queue, batching and submission (slurm.h). Jobs queued within a
 * short window are grouped by step; each group becomes array elements of tasks (sized
 * from the step's measured task time, at least as many elements as the cluster can run
 * at once), split into arrays of at most MaxArraySize elements. An array's input files
 * and script are written in the threadpool, then one sbatch call submits it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slurm/internal.h"
#include "util/fsio.h"

/* ---- reporting ---------------------------------------------------------------------- */

void sl__slurm_report_fail(sl_slurm_t *s, sl_slurm_job_t *job, int code, const char *message)
{
    job->elem = NULL;
    job->next = job->prev = NULL;
    s->cbs.fail(job, code, message, 0);
}

/* Every job of `e` still unreported fails with `message` (canceled ones with ECANCELED). */
void sl__slurm_elem_fail(sl_slurm_elem_t *e, int code, const char *message)
{
    sl_slurm_t *s = e->sub->s;
    for (uint32_t i = 0; i < e->count; i++) {
        sl_slurm_job_t *job = e->slots[i];
        e->slots[i] = NULL;
        if (job && job->canceled)
            sl__slurm_report_fail(s, job, SL_ECANCELED, "canceled");
        else if (job)
            sl__slurm_report_fail(s, job, code, message);
    }
    sl__slurm_elem_end(e);
}

const char *sl__slurm_sub_dir(const sl_slurm_sub_t *sub)
{
    return sub->dir ? sub->dir : sub->s->dir;
}

static void sub_free(sl_slurm_sub_t *sub)
{
    for (uint32_t i = 0; i < sub->count; i++) {
        sl__free(sub->elems[i].input);
        sl__free(sub->elems[i].slots);
    }
    sl__free(sub->elems);
    sl__free(sub->dir);
    sl__slurm_argv_free(sub->argv);
    sl__free(sub->script);
    sl__free(sub);
}

/* An element whose jobs are all reported; its array goes with its last element. */
void sl__slurm_elem_end(sl_slurm_elem_t *e)
{
    if (e->state == ELEM_ENDED)
        return;
    sl_slurm_sub_t *sub = e->sub;
    sl_slurm_t *s = sub->s;
    if (e->state == ELEM_QUEUED || e->state == ELEM_COLLECTING)
        s->outstanding--;
    e->state = ELEM_ENDED;
    if (--sub->live > 0)
        return;
    for (sl_slurm_sub_t **p = &s->subs; *p; p = &(*p)->next)
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    for (size_t i = 0; sub->adopted && i < s->adopt_count; i++)
        if (s->adopt[i].elem && s->adopt[i].elem->sub == sub)
            s->adopt[i].elem = NULL; /* its task, asked for later, goes out as a new job */
    sub_free(sub);
}

/* ---- the queue ---------------------------------------------------------------------- */

static void queue_unlink(sl_slurm_t *s, sl_slurm_job_t *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        s->queue_head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        s->queue_tail = job->prev;
    job->next = job->prev = NULL;
    s->queued--;
}

static void on_flush_timer(uv_timer_t *t)
{
    sl_slurm_t *s = t->data;
    uint64_t waited_ms = (sl__clock_now_ns() - s->flush_started_ns) / 1000000;
    if (s->queued > s->queued_at_arm && waited_ms < SLURM_FLUSH_MAX_MS) {
        s->queued_at_arm = s->queued; /* still coming: wait for the rest */
        uv_timer_start(&s->flush_timer, on_flush_timer, SLURM_FLUSH_MS, 0);
        return;
    }
    sl__slurm_flush(s);
}

static bool adopt_claim(sl_slurm_t *s, sl_slurm_job_t *job);

static void queue_job(sl_slurm_t *s, sl_slurm_job_t *job)
{
    job->elem = NULL;
    job->canceled = false;
    job->next = NULL;
    job->prev = s->queue_tail;
    if (s->queue_tail)
        s->queue_tail->next = job;
    else
        s->queue_head = job;
    s->queue_tail = job;
    if (s->queued++ == 0 && !uv_is_active((uv_handle_t *)&s->flush_timer)) {
        s->flush_started_ns = sl__clock_now_ns();
        s->queued_at_arm = 1;
        uv_timer_start(&s->flush_timer, on_flush_timer, SLURM_FLUSH_MS, 0);
    }
}

void sl__slurm_submit(sl_slurm_t *s, sl_slurm_job_t *job)
{
    if (!adopt_claim(s, job))
        queue_job(s, job);
}

void sl__slurm_elem_requeue(sl_slurm_elem_t *e)
{
    sl_slurm_t *s = e->sub->s;
    for (uint32_t i = 0; i < e->count; i++) {
        sl_slurm_job_t *job = e->slots[i];
        e->slots[i] = NULL;
        if (job && job->canceled)
            sl__slurm_report_fail(s, job, SL_ECANCELED, "canceled");
        else if (job)
            queue_job(s, job);
    }
    sl__slurm_elem_end(e);
}

bool sl__slurm_unqueue(sl_slurm_t *s, sl_slurm_job_t *job)
{
    if (job->elem != NULL)
        return false;
    queue_unlink(s, job);
    return true;
}

/* ---- the cluster's limits (once) ---------------------------------------------------- */

static uint32_t config_value(const char *text, const char *key, uint32_t fallback)
{
    const char *p = text ? strstr(text, key) : NULL;
    if (p == NULL)
        return fallback;
    p += strlen(key);
    while (*p == ' ' || *p == '=')
        p++;
    char *end;
    unsigned long v = strtoul(p, &end, 10);
    return end > p && v > 0 && v < UINT32_MAX ? (uint32_t)v : fallback;
}

static void on_sinfo(sl_slurm_t *s, void *ud, int64_t status, char *out, size_t len,
                     const char *err)
{
    /* "A/I/O/T": allocated, idle, other, total CPUs */
    const char *total = out && status == 0 ? strrchr(out, '/') : NULL;
    unsigned long cpus = total ? strtoul(total + 1, NULL, 10) : 0;
    s->cpus = cpus > 0 && cpus < 1000000 ? (uint32_t)cpus : 8;
    s->config_known = true;
    sl__slurm_flush(s);
}

static void on_scontrol(sl_slurm_t *s, void *ud, int64_t status, char *out, size_t len,
                        const char *err)
{
    if (status != 0)
        SL_LOG(SL_LOG_WARN, NULL, NULL,
               "slurm: 'scontrol show config' failed (%s): assuming "
               "MaxArraySize=1001, MaxJobCount=10000",
               err[0] ? err : "no output");
    s->max_array = config_value(status == 0 ? out : NULL, "MaxArraySize", 1001);
    s->max_jobs = config_value(status == 0 ? out : NULL, "MaxJobCount", 10000);
    char *argv[] = {"sinfo", "-h", "-o", "%C", NULL};
    if (s->closing || sl__slurm_cmd(s, argv, on_sinfo, NULL) < 0)
        on_sinfo(s, NULL, -1, NULL, 0, "");
}

/* ---- elements ----------------------------------------------------------------------- */

static size_t job_head_size(const sl_slurm_job_t *job)
{
    return 8 + 1 + strlen(job->kind) + 2 + (job->plugin ? strlen(job->plugin) : 0) + 4;
}

/* The element's BATCH frame (pool/proto.h), sequence numbers 1..count. */
static int elem_encode(sl_slurm_elem_t *e)
{
    size_t len = SL_POOL_HEADER_SIZE + 4;
    for (uint32_t k = 0; k < e->count; k++) {
        const sl_slurm_job_t *j = e->slots[k];
        size_t wire = 0;
        int rc = sl__value_wire_size(j->args, &wire);
        if (rc < 0)
            return rc;
        len += job_head_size(j) + wire;
    }
    if (len > SL_POOL_FRAME_MAX || (e->input = sl__malloc(len)) == NULL)
        return len > SL_POOL_FRAME_MAX ? SL_ELIMIT : SL_ENOMEM;
    uint8_t *p = e->input;
    sl__pool_put_u32(p, (uint32_t)(len - SL_POOL_HEADER_SIZE));
    p[4] = SL_POOL_MSG_BATCH;
    sl__pool_put_u32(p + SL_POOL_HEADER_SIZE, e->count);
    size_t pos = SL_POOL_HEADER_SIZE + 4;
    uint64_t seq = 1;
    for (uint32_t k = 0; k < e->count; k++) {
        const sl_slurm_job_t *j = e->slots[k];
        size_t kind_len = strlen(j->kind), plugin = j->plugin ? strlen(j->plugin) : 0;
        sl__pool_put_u64(p + pos, seq++);
        pos += 8;
        p[pos++] = (uint8_t)kind_len;
        memcpy(p + pos, j->kind, kind_len);
        pos += kind_len;
        p[pos++] = (uint8_t)plugin;
        p[pos++] = (uint8_t)(plugin >> 8);
        if (plugin)
            memcpy(p + pos, j->plugin, plugin);
        pos += plugin;
        sl__pool_put_u32(p + pos, j->attempt);
        pos += 4;
        pos += sl__value_wire_encode(j->args, p + pos);
    }
    e->input_len = pos;
    return 0;
}

/* How many tasks go in one element of a group of `n` like `job`. */
static size_t per_element(const sl_slurm_t *s, const sl_slurm_job_t *job, size_t n)
{
    uint64_t task_ns = job->task_ns ? *job->task_ns : 0;
    size_t parallel = job->throttle ? job->throttle : (size_t)s->cpus * 2;
    size_t elements = n < parallel ? n : parallel; /* enough to keep the cluster busy */
    if (task_ns > 0) {
        uint64_t fit = SLURM_ELEMENT_TARGET_NS / task_ns; /* tasks in a useful element */
        size_t by_time = fit == 0 ? n : (size_t)((n + fit - 1) / fit);
        if (by_time > elements)
            elements = by_time;
    }
    size_t cap = s->max_jobs / 2 > 1 ? s->max_jobs / 2 : 1; /* room for other users' jobs */
    if (elements > cap)
        elements = cap;
    if (elements == 0)
        elements = 1;
    return (n + elements - 1) / elements;
}

/* ---- submission --------------------------------------------------------------------- */

typedef struct write_work {
    uv_work_t req;
    sl_slurm_sub_t *sub;
    char error[4200];
} write_work_t;

/* `text` single-quoted for sh. */
static void shell_quote(sl_buf_t *b, const char *text)
{
    sl__buf_addc(b, '\'');
    for (const char *p = text; *p; p++) {
        if (*p == '\'')
            sl__buf_add(b, "'\\''", 4);
        else
            sl__buf_addc(b, *p);
    }
    sl__buf_addc(b, '\'');
}

static char *make_script(const sl_slurm_t *s, const sl_slurm_sub_t *sub)
{
    sl_buf_t b;
    sl__buf_init(&b, 1u << 20);
    sl__buf_addf(&b,
                 "#!/bin/sh\n# sluice: elements %u..%u of %s (docs/slurm.md)\n"
                 "i=$((%u + SLURM_ARRAY_TASK_ID))\nd=",
                 sub->base, sub->base + sub->count - 1, s->name, sub->base);
    shell_quote(&b, s->dir);
    sl__buf_addc(&b, '\n');
    shell_quote(&b, s->exe);
    sl__buf_addf(&b, " __worker --batch-in \"$d/e$i.in\" --batch-out \"$d/e$i.out\"\n"
                     "rc=$?\necho \"sluice: worker exited with status $rc\" >&2\nexit $rc\n");
    size_t len;
    return sl__buf_take(&b, &len);
}

static void write_fsio_error(write_work_t *w, const char *path, sl_fsio_result_t r)
{
    snprintf(w->error, sizeof(w->error), "cannot write %s: %s", path,
             r.stage == SL_FSIO_IO || r.stage == SL_FSIO_MKDIR ? strerror(r.error)
                                                               : "not a file path");
}

/* Threadpool: makes the work directory's folders (the engine's own path, named by the
 * workflow's limits.slurm, not by data) and a root set holding it, so that the confined
 * atomic write of util/fsio may write there even when it lies outside the working
 * directory. */
static int open_workdir(const sl_slurm_t *s, sl_confine_t **roots, write_work_t *w)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s", s->dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(w->error, sizeof(w->error), "work directory path too long: %s", s->dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            snprintf(w->error, sizeof(w->error), "cannot make %s: %s", path, strerror(errno));
            return -1;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    const char *allow[] = {s->workdir};
    char err[512];
    if (sl__confine_new(allow, 1, roots, err, sizeof(err)) < 0) {
        snprintf(w->error, sizeof(w->error), "%s", err);
        return -1;
    }
    return 0;
}

/* Threadpool: the array's input files and script, each written atomically. */
static void write_files(uv_work_t *req)
{
    write_work_t *w = req->data;
    sl_slurm_sub_t *sub = w->sub;
    const sl_slurm_t *s = sub->s;
    sl_confine_t *roots;
    if (open_workdir(s, &roots, w) < 0)
        return;
    char path[4096];
    for (uint32_t i = 0; i < sub->count; i++) {
        sl_slurm_elem_t *e = &sub->elems[i];
        snprintf(path, sizeof(path), "%s/e%u.in", s->dir, e->index);
        sl_fsio_result_t r =
            sl__fsio_write(roots, path, (const char *)e->input, e->input_len, false, NULL);
        if (r.stage != SL_FSIO_OK) {
            write_fsio_error(w, path, r);
            sl__confine_free(roots);
            return;
        }
    }
    snprintf(path, sizeof(path), "%s/s%u.sh", s->dir, sub->base);
    sl_fsio_result_t r =
        sl__fsio_write(roots, path, sub->script, strlen(sub->script), false, NULL);
    if (r.stage != SL_FSIO_OK)
        write_fsio_error(w, path, r);
    sl__confine_free(roots);
}

static void sub_fail(sl_slurm_sub_t *sub, const char *message)
{
    for (uint32_t i = 0, n = sub->count; i < n; i++) {
        if (sub->elems[i].state == ELEM_ENDED)
            continue;
        bool last = sub->live == 1; /* then its end frees the sub */
        sl__slurm_elem_fail(&sub->elems[i], SL_EFAILED, message);
        if (last)
            break;
    }
}

/* Slurm's words without "sbatch: error: " prefixes, on one line. */
static void tidy_error(char *out, size_t size, const char *err)
{
    size_t n = 0;
    out[0] = '\0';
    while (*err && n + 1 < size) {
        if (strncmp(err, "sbatch: error: ", 15) == 0)
            err += 15;
        char c = *err++;
        if (c == '\n') {
            if (*err == '\0')
                break;
            c = ';';
            if (n + 2 < size)
                out[n++] = c;
            c = ' ';
        }
        out[n++] = c;
    }
    out[n] = '\0';
}

static void on_sbatch(sl_slurm_t *s, void *ud, int64_t status, char *out, size_t len,
                      const char *err)
{
    sl_slurm_sub_t *sub = ud;
    uint64_t id = out && status == 0 ? strtoull(out, NULL, 10) : 0;
    if (s->closing) {
        if (id)
            sl__slurm_cancel_add(s, id, -1);
        sl__slurm_scancel_flush(s);
        sub_fail(sub, "canceled");
        return;
    }
    if (id == 0) {
        char tidy[1024], message[1200];
        tidy_error(tidy, sizeof(tidy), err[0] ? err : "no job id in its output");
        snprintf(message, sizeof(message), "step '%s': sbatch refused the array job (%s): %s",
                 sub->group_name, status < 0 ? "not run" : "no job id", tidy);
        sub_fail(sub, message);
        return;
    }
    sub->job_id = id;
    sub->poll_after = s->polls_started;
    for (uint32_t i = 0; i < sub->count; i++)
        if (sub->elems[i].state == ELEM_SUBMITTING) {
            sub->elems[i].state = ELEM_QUEUED;
            s->outstanding++;
            if (sub->elems[i].wanted == 0 || s->closing)
                sl__slurm_cancel_soon(s);
        }
    SL_LOG(SL_LOG_DEBUG, NULL, NULL, "slurm: job %llu: elements %u..%u", (unsigned long long)id,
           sub->base, sub->base + sub->count - 1);
    sl__slurm_report_submitted(s, sub);
    sl__slurm_poll_arm(s);
}

static int sub_argv(sl_slurm_t *s, sl_slurm_sub_t *sub, const sl_slurm_job_t *job)
{
    size_t extra = job->sbatch ? sl_value_len(job->sbatch) : 0;
    char **argv = sl__calloc(extra + 8, sizeof(char *));
    if (argv == NULL)
        return SL_ENOMEM;
    size_t n = 0;
    argv[n++] = sl__strdup("sbatch");
    argv[n++] = sl__strdup("--parsable");
    argv[n++] = sl__asprintf("--job-name=%s", s->name);
    if (sub->throttle)
        argv[n++] = sl__asprintf("--array=0-%u%%%u", sub->count - 1, sub->throttle);
    else
        argv[n++] = sl__asprintf("--array=0-%u", sub->count - 1);
    argv[n++] = sl__asprintf("--output=%s/s%u_%%a.log", s->dir, sub->base);
    for (size_t i = 0; i < extra; i++)
        argv[n++] = sl__strdup(sl_value_str(sl_value_at(job->sbatch, i), NULL));
    argv[n++] = sl__asprintf("%s/s%u.sh", s->dir, sub->base);
    sub->argv = argv;
    for (size_t i = 0; i < n; i++)
        if (argv[i] == NULL)
            return SL_ENOMEM;
    return 0;
}

static void after_write(uv_work_t *req, int status)
{
    write_work_t *w = req->data;
    sl_slurm_sub_t *sub = w->sub;
    sl_slurm_t *s = sub->s;
    s->works--;
    for (uint32_t i = 0; i < sub->count; i++) {
        sl__free(sub->elems[i].input);
        sub->elems[i].input = NULL;
        if (sub->elems[i].state == ELEM_WRITING)
            sub->elems[i].state = ELEM_SUBMITTING;
    }
    if (s->closing || w->error[0]) {
        sub_fail(sub, s->closing ? "canceled" : w->error);
    } else if (sl__slurm_cmd(s, sub->argv, on_sbatch, sub) < 0) {
        sub_fail(sub, sl_strerror(SL_ENOMEM));
    } else {
        s->stats.sbatch++;
    }
    sl__free(w);
}

/* Takes `n` queued jobs from `first` on (the same group) into one array of elements. */
static int sub_make(sl_slurm_t *s, sl_slurm_job_t **jobs, size_t n, size_t per)
{
    sl_slurm_sub_t *sub = sl__calloc(1, sizeof(*sub));
    uint32_t count = (uint32_t)((n + per - 1) / per);
    if (sub == NULL || (sub->elems = sl__calloc(count, sizeof(sl_slurm_elem_t))) == NULL) {
        sl__free(sub);
        return SL_ENOMEM;
    }
    sub->s = s;
    sub->count = sub->live = count;
    sub->base = s->next_elem;
    sub->throttle = jobs[0]->throttle;
    sub->group_name = jobs[0]->group_name;
    sub->group = jobs[0]->group;
    s->next_elem += count;
    for (uint32_t i = 0; i < count; i++) {
        sl_slurm_elem_t *e = &sub->elems[i];
        e->sub = sub;
        e->index = sub->base + i;
        e->array_index = i;
        size_t from = i * per, to = (i + 1) * per < n ? (i + 1) * per : n;
        if ((e->slots = sl__calloc(to - from, sizeof(*e->slots))) == NULL) {
            sub->count = i; /* the rest fail below, unlinked */
            for (size_t k = from; k < n; k++)
                sl__slurm_report_fail(s, jobs[k], SL_ENOMEM, sl_strerror(SL_ENOMEM));
            break;
        }
        for (size_t k = from; k < to; k++) {
            jobs[k]->elem = e;
            jobs[k]->next = jobs[k]->prev = NULL;
            e->slots[e->count++] = jobs[k];
        }
        e->wanted = e->count;
    }
    count = sub->count;
    if (count == 0) {
        sub_free(sub);
        return 0;
    }
    sub->live = count;
    sub->next = s->subs;
    s->subs = sub;
    s->stats.elements += count;
    s->stats.tasks += n;
    int rc = sub_argv(s, sub, jobs[0]);
    if (rc == 0 && (sub->script = make_script(s, sub)) == NULL)
        rc = SL_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < count; i++)
        rc = elem_encode(&sub->elems[i]);
    write_work_t *w = rc == 0 ? sl__calloc(1, sizeof(*w)) : NULL;
    if (w == NULL) {
        sub_fail(sub, sl_strerror(rc < 0 ? rc : SL_ENOMEM));
        return 0;
    }
    w->req.data = w;
    w->sub = sub;
    s->works++;
    uv_queue_work(s->loop, &w->req, write_files, after_write);
    return 0;
}

/* Takes the queued jobs of the first job's group off the queue, in order, into `out`. */
static size_t take_group(sl_slurm_t *s, sl_slurm_job_t **out)
{
    uint32_t group = s->queue_head->group;
    size_t n = 0;
    for (sl_slurm_job_t *j = s->queue_head, *next; j; j = next) {
        next = j->next;
        if (j->group == group) {
            queue_unlink(s, j);
            out[n++] = j;
        }
    }
    return n;
}

void sl__slurm_flush(sl_slurm_t *s)
{
    if (s->queued == 0 || s->closing)
        return;
    if (!s->config_known) {
        if (!s->config_asked) {
            s->config_asked = true;
            char *argv[] = {"scontrol", "show", "config", NULL};
            if (sl__slurm_cmd(s, argv, on_scontrol, NULL) < 0)
                on_scontrol(s, NULL, -1, NULL, 0, "out of memory");
        }
        return; /* again once the limits are known */
    }
    sl_slurm_job_t **jobs = sl__malloc(s->queued * sizeof(*jobs));
    if (jobs == NULL)
        return; /* the next submit tries again */
    while (s->queued > 0) {
        size_t n = take_group(s, jobs);
        size_t per = per_element(s, jobs[0], n);
        size_t array_tasks = (size_t)s->max_array * per;
        for (size_t off = 0; off < n; off += array_tasks) {
            size_t m = n - off < array_tasks ? n - off : array_tasks;
            if (sub_make(s, jobs + off, m, per) < 0)
                for (size_t k = off; k < off + m; k++)
                    sl__slurm_report_fail(s, jobs[k], SL_ENOMEM, sl_strerror(SL_ENOMEM));
        }
    }
    sl__free(jobs);
}

/* ---- life --------------------------------------------------------------------------- */

int sl__slurm_new(uv_loop_t *loop, const sl_slurm_opts_t *opts, const sl_slurm_cbs_t *cbs,
                  sl_slurm_t **out)
{
    sl_slurm_t *s = sl__calloc(1, sizeof(*s));
    if (s == NULL)
        return SL_ENOMEM;
    s->loop = loop;
    s->cbs = *cbs;
    s->poll_ms = s->poll_now_ms = opts->poll_ms > 0 ? opts->poll_ms : 1000;
    s->close_wait_ms = opts->close_wait_ms > 0 ? opts->close_wait_ms : SLURM_CLOSE_WAIT_MS;
    /* One folder and one job name per executor: the process and the time tell runs apart. */
    char token[64];
    snprintf(token, sizeof(token), "%lld-%ld", (long long)(sl__clock_now_ns() / 1000000),
             (long)getpid());
    s->exe = sl__strdup(opts->exe);
    s->workdir = sl__strdup(opts->workdir);
    s->dir = sl__asprintf("%s/%s", opts->workdir, token);
    s->name = sl__asprintf("sluice-%s", token);
    if (s->exe == NULL || s->workdir == NULL || s->dir == NULL || s->name == NULL) {
        sl__free(s->exe);
        sl__free(s->workdir);
        sl__free(s->dir);
        sl__free(s->name);
        sl__free(s);
        return SL_ENOMEM;
    }
    sl__index_init(&s->adopt_index);
    uv_timer_t *timers[] = {&s->flush_timer, &s->poll_timer, &s->cancel_timer, &s->close_timer};
    for (size_t i = 0; i < SL_COUNTOF(timers); i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = s;
        s->handles_open++;
    }
    *out = s;
    return 0;
}

void sl__slurm_handle_closed(uv_handle_t *h)
{
    ((sl_slurm_t *)h->data)->handles_open--;
}

void sl__slurm_close(sl_slurm_t *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    while (s->queue_head) {
        sl_slurm_job_t *job = s->queue_head;
        queue_unlink(s, job);
        sl__slurm_report_fail(s, job, SL_ECANCELED, "canceled");
    }
    for (sl_slurm_sub_t *sub = s->subs, *next; sub; sub = next) {
        next = sub->next;
        for (uint32_t i = 0, n = sub->count; i < n; i++) {
            sl_slurm_elem_t *e = &sub->elems[i];
            if (e->state == ELEM_ENDED)
                continue;
            bool last = sub->live == 1 && (e->state == ELEM_QUEUED || e->state == ELEM_ADOPTED);
            if (e->state == ELEM_QUEUED || e->state == ELEM_ADOPTED) {
                sl__slurm_cancel_add(s, sub->job_id, e->array_index);
                sl__slurm_elem_fail(e, SL_ECANCELED, "canceled");
                if (last)
                    break;
                continue;
            }
            /* Written, in sbatch or being read: its callback ends it; its jobs end now. */
            for (uint32_t k = 0; k < e->count; k++)
                if (e->slots[k]) {
                    sl_slurm_job_t *j = e->slots[k];
                    e->slots[k] = NULL;
                    sl__slurm_report_fail(s, j, SL_ECANCELED, "canceled");
                }
        }
    }
    sl__slurm_scancel_flush(s);
    uv_timer_t *timers[] = {&s->flush_timer, &s->poll_timer, &s->cancel_timer};
    for (size_t i = 0; i < SL_COUNTOF(timers); i++)
        uv_close((uv_handle_t *)timers[i], sl__slurm_handle_closed);
    sl__slurm_cmds_close(s); /* the commands going (scancel) get SLURM_CLOSE_WAIT_MS */
}

bool sl__slurm_closed(const sl_slurm_t *s)
{
    return s->closing && s->handles_open == 0 && s->children == 0 && s->works == 0;
}

void sl__slurm_free(sl_slurm_t *s)
{
    if (s == NULL)
        return;
    while (s->subs) {
        sl_slurm_sub_t *sub = s->subs;
        s->subs = sub->next;
        sub_free(sub);
    }
    for (size_t i = 0; i < s->cancel_count; i++)
        sl__free(s->cancel_ids[i]);
    sl__free(s->cancel_ids);
    for (size_t i = 0; i < s->adopt_count; i++)
        sl__free(s->adopt[i].key);
    sl__free(s->adopt);
    sl__index_close(&s->adopt_index);
    sl__free(s->names);
    sl__free(s->exe);
    sl__free(s->workdir);
    sl__free(s->dir);
    sl__free(s->name);
    sl__free(s);
}

void sl__slurm_stats(const sl_slurm_t *s, sl_slurm_stats_t *out)
{
    *out = s->stats;
}

bool sl__slurm_on_path(const char *name)
{
    const char *path = getenv("PATH");
    char full[4096];
    while (path && *path) {
        size_t len = strcspn(path, ":");
        if (len > 0 && len + strlen(name) + 2 < sizeof(full)) {
            memcpy(full, path, len);
            snprintf(full + len, sizeof(full) - len, "/%s", name);
            struct stat st;
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
                return true;
        }
        path += len;
        if (*path == ':')
            path++;
    }
    return false;
}

/* ---- the state store and resume ----------------------------------------------------- */

void sl__slurm_on_submitted(sl_slurm_t *s, sl_submitted_fn fn, void *ud)
{
    s->submitted = fn;
    s->submitted_ud = ud;
}

/* [[item, item, ...], ...]: the tasks of each element of `sub`, for the store. */
static sl_value_t *sub_tasks(const sl_slurm_sub_t *sub)
{
    sl_value_t *all = sl__value_new_list(sub->count);
    for (uint32_t i = 0; all && i < sub->count; i++) {
        const sl_slurm_elem_t *e = &sub->elems[i];
        sl_value_t *pairs = sl__value_new_list(e->count);
        for (uint32_t k = 0; pairs && k < e->count; k++) {
            const sl_slurm_job_t *j = e->slots[k];
            if (sl_value_push(pairs, sl_value_int(j ? (int64_t)j->item : -1)) < 0) {
                sl_value_free(pairs);
                pairs = NULL;
            }
        }
        if (pairs == NULL || sl_value_push(all, pairs) < 0) {
            sl_value_free(all);
            return NULL;
        }
    }
    return all;
}

void sl__slurm_report_submitted(sl_slurm_t *s, const sl_slurm_sub_t *sub)
{
    if (s->submitted == NULL)
        return;
    sl_value_t *tasks = sub_tasks(sub);
    if (tasks == NULL)
        return; /* not recorded: a resume submits these again */
    sl_slurm_submission_t info = {
        sub->job_id, s->name, sl__slurm_sub_dir(sub), sub->group, sub->base, sub->count, tasks};
    s->submitted(s->submitted_ud, &info);
    sl_value_free(tasks);
}

static int adopt_slot(sl_slurm_t *s, sl_slurm_elem_t *e, uint32_t slot, int64_t group, int64_t item)
{
    if (group < 0 || item < 0)
        return 0;
    char *key = sl__asprintf("%lld:%lld", (long long)group, (long long)item);
    if (key == NULL ||
        sl__array_grow(&s->adopt, &s->adopt_cap, s->adopt_count, sizeof(*s->adopt), 64) < 0) {
        sl__free(key);
        return SL_ENOMEM;
    }
    int rc = sl__index_put(&s->adopt_index, key, s->adopt_count, 1, NULL);
    if (rc < 0) {
        sl__free(key);
        return rc;
    }
    s->adopt[s->adopt_count++] = (struct sl_slurm_adopt){e, slot, key};
    return 0;
}

/* Adds `name` to the job names squeue is asked about. */
static int adopt_name(sl_slurm_t *s, const char *name)
{
    if (strcmp(name, s->name) == 0)
        return 0;
    if (s->names) {
        size_t len = strlen(name);
        for (const char *p = strstr(s->names, name); p; p = strstr(p + 1, name))
            if ((p == s->names || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
                return 0;
    }
    char *names = s->names ? sl__asprintf("%s,%s", s->names, name) : sl__strdup(name);
    if (names == NULL)
        return SL_ENOMEM;
    sl__free(s->names);
    s->names = names;
    return 0;
}

int sl__slurm_adopt(sl_slurm_t *s, const sl_slurm_submission_t *info)
{
    if (info->count == 0 || info->job_id == 0 || sl_value_len(info->tasks) != info->count)
        return SL_EINVAL;
    sl_slurm_sub_t *sub = sl__calloc(1, sizeof(*sub));
    if (sub == NULL || (sub->elems = sl__calloc(info->count, sizeof(*sub->elems))) == NULL ||
        (sub->dir = sl__strdup(info->dir)) == NULL || adopt_name(s, info->name) < 0) {
        if (sub)
            sl__free(sub->elems);
        sl__free(sub);
        return SL_ENOMEM;
    }
    sub->s = s;
    sub->job_id = info->job_id;
    sub->base = info->first;
    sub->count = sub->live = info->count;
    sub->adopted = true;
    sub->group = info->group;
    sub->next = s->subs;
    s->subs = sub;
    int rc = 0;
    for (uint32_t i = 0; i < info->count && rc == 0; i++) {
        sl_slurm_elem_t *e = &sub->elems[i];
        const sl_value_t *pairs = sl_value_at(info->tasks, i);
        e->sub = sub;
        e->index = info->first + i;
        e->array_index = i;
        e->state = ELEM_ADOPTED;
        e->count = (uint32_t)sl_value_len(pairs);
        if ((e->slots = sl__calloc(e->count ? e->count : 1, sizeof(*e->slots))) == NULL)
            rc = SL_ENOMEM;
        for (uint32_t k = 0; rc == 0 && k < e->count; k++)
            rc = adopt_slot(s, e, k, info->group, sl_value_int_of(sl_value_at(pairs, k)));
    }
    return rc;
}

/* A job an adopted element has a slot for takes it: true when claimed. */
static bool adopt_claim(sl_slurm_t *s, sl_slurm_job_t *job)
{
    if (s->adopt_count == 0)
        return false;
    char key[48];
    snprintf(key, sizeof(key), "%lld:%lld", (long long)job->group, (long long)job->item);
    size_t at = sl__index_get(&s->adopt_index, key);
    if (at == SL_INDEX_NONE || s->adopt[at].elem == NULL)
        return false;
    sl_slurm_elem_t *e = s->adopt[at].elem;
    uint32_t slot = s->adopt[at].slot;
    s->adopt[at].elem = NULL; /* once: a retry goes out as a new job */
    if (e->state != ELEM_ADOPTED && e->state != ELEM_QUEUED)
        return false;
    e->slots[slot] = job;
    job->elem = e;
    job->canceled = false;
    job->next = job->prev = NULL;
    e->wanted++;
    if (e->state == ELEM_ADOPTED) {
        e->state = ELEM_QUEUED; /* followed from now on: collected once it left the queue */
        s->outstanding++;
        sl__slurm_poll_arm(s);
    }
    return true;
}
