/* slurm internals shared by slurm.c (queue, batching, submission), track.c (polling,
 * collecting results, cancel) and cmd.c (cluster commands as child processes). */
#ifndef SL_SLURM_INTERNAL_H
#define SL_SLURM_INTERNAL_H

#include "pool/proto.h"
#include "slurm/slurm.h"
#include "util/index.h"

#define SLURM_FLUSH_MS 50                      /* jobs queued within this batch together, */
#define SLURM_FLUSH_MAX_MS 500                 /* while they keep coming, at most this long */
#define SLURM_ELEMENT_TARGET_NS 20000000000ull /* aim for 20 s of work per element */
#define SLURM_CMD_OUT_MAX (64u << 20)          /* bytes of a command's stdout kept */
#define SLURM_CMD_ERR_MAX (16u << 10)          /* of its stderr */
#define SLURM_CMD_TIMEOUT_MS 120000            /* a cluster command that takes longer is killed */
#define SLURM_POLL_BACKOFF 16     /* the poll interval grows to this many times the first */
#define SLURM_SQUEUE_FAILS_MAX 10 /* squeue failing this many times in a row fails the jobs */
#define SLURM_MISSING_POLLS 3     /* polls a finished element's output may lag (NFS) */
#define SLURM_LOG_TAIL 2048       /* bytes of an element's log quoted in its error */
#define SLURM_OUTPUT_MAX ((int64_t)SL_POOL_FRAME_MAX) /* an element's output file */
#define SLURM_CLOSE_WAIT_MS 15000 /* the default of sl_slurm_opts_t.close_wait_ms */

typedef enum {
    ELEM_WRITING = 0, /* its input file is being written */
    ELEM_SUBMITTING,  /* in an sbatch call */
    ELEM_QUEUED,      /* on the cluster (pending or running) */
    ELEM_COLLECTING,  /* its output file is being read */
    ELEM_ENDED,       /* its jobs are reported */
    ELEM_ADOPTED      /* a resumed run's, none of its tasks asked for yet: not followed */
} elem_state_t;

typedef struct sl_slurm_sub sl_slurm_sub_t;

struct sl_slurm_elem {
    sl_slurm_sub_t *sub;
    uint32_t index;         /* in the run's folder: e<index>.in, .out */
    uint32_t array_index;   /* SLURM_ARRAY_TASK_ID */
    sl_slurm_job_t **slots; /* its tasks in batch order; NULL: not wanted (reported, or
                             * an adopted element's task this run has not asked for) */
    uint32_t count, wanted;
    elem_state_t state;
    uint32_t seen_gen;    /* the last poll that listed it */
    uint32_t missing;     /* polls since it left the queue without its output */
    char slurm_state[24]; /* last state squeue gave */
    char reason[64];
    uint8_t *input; /* its BATCH frame while it is written */
    size_t input_len;
};

struct sl_slurm_sub {
    sl_slurm_t *s;
    uint64_t job_id;      /* 0 until sbatch answered */
    uint32_t base;        /* element index of array index 0 */
    uint32_t count, live; /* elements; those not ended */
    sl_slurm_elem_t *elems;
    uint32_t throttle, group;
    const char *group_name; /* the step's id (borrowed from the workflow) */
    uint32_t poll_after;    /* polls started before sbatch answered: they cannot list it */
    char **argv;            /* the sbatch command */
    char *script;
    char *dir;    /* an adopted array's folder (a resumed run's); NULL: s->dir */
    bool adopted; /* submitted by the run being resumed */
    sl_slurm_sub_t *next;
};

/* A cluster command's end: status (-1 if it could not start), its stdout and stderr. */
typedef void (*sl_slurm_cmd_fn)(sl_slurm_t *s, void *ud, int64_t status, char *out, size_t out_len,
                                const char *err);

struct sl_slurm {
    uv_loop_t *loop;
    sl_slurm_cbs_t cbs;
    char *exe, *workdir, *dir; /* dir: this executor's folder under workdir */
    char *name;                /* the job name of all its arrays */
    int64_t poll_ms, poll_now_ms;
    int64_t close_wait_ms;
    uv_timer_t flush_timer, poll_timer, cancel_timer, close_timer;
    int handles_open, children, works;
    struct cmd *cmds; /* the commands going (cmd.c) */
    uint64_t flush_started_ns;
    size_t queued_at_arm;
    sl_slurm_job_t *queue_head, *queue_tail;
    size_t queued;
    bool config_known, config_asked;
    uint32_t max_array, max_jobs, cpus;
    uint32_t next_elem;
    sl_slurm_sub_t *subs;
    bool polling, poll_armed, closing, close_scancel_done;
    uint32_t poll_gen, polls_started, squeue_fails;
    uint64_t outstanding; /* elements on the cluster */
    char **cancel_ids;    /* "JOB_IDX" elements to scancel with the next call */
    size_t cancel_count, cancel_cap;
    sl_slurm_stats_t stats;
    /* Resume: the tasks of adopted arrays, "GROUP:ITEM" -> adopt[i], and the job names
     * squeue is asked about besides ours ("a,b,c"). */
    sl_index_t adopt_index;
    struct sl_slurm_adopt {
        sl_slurm_elem_t *elem;
        uint32_t slot;
        char *key;
    } * adopt;
    size_t adopt_count, adopt_cap;
    char *names;
    sl_submitted_fn submitted;
    void *submitted_ud;
};

/* cmd.c */
int sl__slurm_cmd(sl_slurm_t *s, char *const *argv, sl_slurm_cmd_fn done, void *ud);
void sl__slurm_argv_free(char **argv);

/* slurm.c */
const char *sl__slurm_sub_dir(const sl_slurm_sub_t *sub);
void sl__slurm_report_submitted(sl_slurm_t *s, const sl_slurm_sub_t *sub);
/* Puts the element's wanted jobs back on the queue (to be submitted anew) and ends it. */
void sl__slurm_elem_requeue(sl_slurm_elem_t *e);
void sl__slurm_report_fail(sl_slurm_t *s, sl_slurm_job_t *job, int code, const char *message);
void sl__slurm_elem_fail(sl_slurm_elem_t *e, int code, const char *message);
void sl__slurm_elem_end(sl_slurm_elem_t *e);
void sl__slurm_flush(sl_slurm_t *s);

/* track.c */
void sl__slurm_poll_arm(sl_slurm_t *s);
void sl__slurm_scancel_flush(sl_slurm_t *s);
void sl__slurm_cancel_soon(sl_slurm_t *s);
/* Adds "JOB" (index < 0) or "JOB_INDEX" to the next scancel. */
void sl__slurm_cancel_add(sl_slurm_t *s, uint64_t job, int64_t index);
/** Counts a closed handle of `s` (its data). */
void sl__slurm_handle_closed(uv_handle_t *h);
/** At close: commands still going after close_wait_ms are killed (cmd.c). */
void sl__slurm_cmds_close(sl_slurm_t *s);

#endif
