/* pool internals shared by pool.c (queue, batching, API) and proc.c (one worker). */
#ifndef SL_POOL_INTERNAL_H
#define SL_POOL_INTERNAL_H

#include "pool/pool.h"
#include "pool/proto.h"

#define POOL_BATCH_MAX 256          /* tasks per batch */
#define POOL_BATCHES_PER_WORKER 2   /* sent ahead, so a worker never waits for the loop */
#define POOL_BATCH_TARGET_NS 1500000 /* aim for 1.5 ms of work per batch */
#define POOL_WRITE_PENDING_MAX (4u * 1024 * 1024) /* bytes queued to one worker */
#define POOL_READ_CHUNK (64u * 1024)
#define POOL_BARREN_DEATHS_MAX 3    /* deaths in a row with no task run: stop respawning */
#define POOL_WATCHDOG_MS 20
#define POOL_CLOSE_GRACE_MS 5000    /* at close, how long idle workers get to exit */
#define POOL_EOF_WAIT_NS 2000000000ull /* after an exit, how long to wait for the socket */

typedef enum {
    KILL_NONE = 0,
    KILL_TIMEOUT,  /* kill_job ran past its timeout */
    KILL_CANCEL,   /* a job of the worker was canceled */
    KILL_PROTOCOL, /* the worker sent something malformed */
    KILL_CLOSE     /* the pool is closing */
} kill_reason_t;

struct sl_pool_worker {
    uv_process_t process;
    uv_pipe_t pipe;
    sl_pool_t *pool;
    uint32_t id; /* 1, 2, ... in start order, never reused */
    int pid;
    sl_pool_shared_t *shared;
    sl_pool_job_t *head, *tail; /* sent and not answered, in order */
    size_t job_count;
    uint32_t batches;    /* batches with unanswered jobs */
    size_t write_bytes;  /* handed to uv_write, not written yet */
    uint64_t tasks_done;
    uint8_t *rbuf;       /* received bytes: whole frames are handled in place */
    size_t rlen, rcap;
    sl_wire_keys_t keys; /* output map keys met lately, shared by the next outputs */
    int handles_open;
    bool exited, eof, dead;
    kill_reason_t kill_reason;
    sl_pool_job_t *kill_job;
    int64_t exit_status;
    int term_signal;
    uint64_t exited_ns;
    sl_pool_worker_t *prev, *next;
};

struct sl_pool {
    uv_loop_t *loop;
    sl_pool_cbs_t cbs;
    char *exe;
    uint32_t size;
    uint64_t memory_bytes;
    uv_idle_t kick;      /* active while queued jobs may go out */
    uv_timer_t watchdog; /* timeouts, and exits whose socket stays open */
    int handles_open;
    bool watchdog_on;
    sl_pool_job_t *queue_head, *queue_tail;
    size_t queued;
    sl_pool_worker_t *workers;
    uint32_t alive;      /* workers not yet dead */
    sl_pool_worker_t *next_worker; /* round robin */
    uint64_t next_seq;
    uint32_t barren_deaths;
    char *broken;        /* set when workers cannot run: every job fails with it */
    bool closing;
    sl_pool_stats_t stats;
};

/* pool.c */
void sl__pool_kick(sl_pool_t *pool);
void sl__pool_requeue_front(sl_pool_t *pool, sl_pool_job_t *job);
void sl__pool_worker_gone(sl_pool_t *pool, sl_pool_worker_t *w);
void sl__pool_fail_job(sl_pool_t *pool, sl_pool_job_t *job, int code, const char *message);
void sl__pool_count_cause(sl_pool_t *pool, const char *cause);
void sl__pool_watch(sl_pool_t *pool);
/** A worker's handles are closed and it is freed: at close, the last one ends the pool. */
void sl__pool_worker_freed(sl_pool_t *pool);

/* proc.c */
int sl__pool_spawn(sl_pool_t *pool, char *err, size_t err_size);
/** Sends jobs[0..n) as one batch (they are already off the queue). */
void sl__pool_send(sl_pool_worker_t *w, sl_pool_job_t **jobs, size_t n);
/** The bytes of `job` in a BATCH frame before its args (pool/proto.h). */
size_t sl__pool_job_head_size(const sl_pool_job_t *job);
bool sl__pool_hungry(const sl_pool_worker_t *w);
void sl__pool_kill(sl_pool_worker_t *w, kill_reason_t reason, sl_pool_job_t *job);
/** The job `w` is running (from its shared page) and since when; NULL between tasks. */
sl_pool_job_t *sl__pool_running(sl_pool_worker_t *w, uint64_t *started_ns);
/** Handles a worker that exited but whose socket never reported the end. */
void sl__pool_reap_late(sl_pool_worker_t *w, uint64_t now_ns);
/** Closes the worker's socket (it exits on EOF); busy workers are killed. */
void sl__pool_shut(sl_pool_worker_t *w);

/* metrics.c */
/** Moves the busy and idle worker gauges of /metrics (docs/metrics.md). */
void sl__pool_metrics_workers(int busy_delta, int idle_delta);
/** Counts a worker started to replace a dead one. */
void sl__pool_metrics_respawned(void);

#endif
