/*
 * `sluice __worker`: a worker process of the pool. A plain blocking loop: read a batch
 * from the socket, run its tasks one by one through the kinds' start(), write the
 * results. A plugin is loaded on the first task of one of its kinds, from the file the
 * engine names with the task (a job that names none makes the worker load every plugin,
 * from the same places as the engine: SLUICE_PLUGIN_PATH is inherited). Plugins see a host
 * table whose task functions record results instead of reaching a scheduler.
 *
 * File mode (`__worker --batch-in IN --batch-out OUT`, the Slurm executor's array
 * elements, engine/slurm/): IN holds one BATCH frame; the RESULTS frames and an END frame
 * go to OUT.tmp, which is renamed to OUT once whole, so OUT is complete or absent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "plugin/registry.h"
#include "pool/internal.h"

#define OUT_FLUSH_BYTES (64u * 1024)  /* results are written once this many wait, */
#define OUT_FLUSH_NS 1000000u          /* or this long after the last write */
#define IN_KEEP_BYTES (16u * 1024 * 1024) /* a bigger batch buffer is given back after use */
#define EXIT_PROTOCOL 4

typedef struct worker_task {
    uint64_t seq;
    uint32_t attempt;
    bool completed;
    int64_t retry_after_ms;
    uint64_t started_ns;
    void *data;
    const char *kind;
} worker_task_t;

typedef struct bytes {
    uint8_t *data;
    size_t len, cap;
} bytes_t;

static struct {
    int fd, in_fd; /* results go to fd, batches come from in_fd (the socket, or IN) */
    uint32_t id;
    uint64_t memory_bytes;
    sl_pool_shared_t *shared;
    sl_registry_t *registry; /* built-in kinds, then plugins as tasks need them */
    const sl_plugin_entry_fn *builtins; /* the plugins compiled into the binary */
    size_t builtin_count;
    bool all_loaded;         /* every plugin folder has been loaded */
    sl_host_t host;
    sl_wire_keys_t keys; /* argument map keys met lately, shared by the next tasks' */
    bytes_t out; /* a RESULTS frame being filled; its header is written at flush */
    uint64_t last_flush_ns;
    /* The clock at the last task boundary: one task's end is the next one's start, so a
     * task costs one clock read (on a VM a read can cost more than a small task). */
    uint64_t now_ns;
} W;

/* Reads the clock at a task's end; returns how long the task ran. */
static uint64_t task_ended(const worker_task_t *t)
{
    W.now_ns = sl__clock_now_ns();
    return W.now_ns - t->started_ns;
}

/* ---- output --------------------------------------------------------------------------- */

static int reserve(bytes_t *b, size_t n)
{
    if (n > SL_POOL_FRAME_MAX + SL_POOL_HEADER_SIZE - b->len)
        return SL_ELIMIT;
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *grown = sl__realloc(b->data, cap);
    if (grown == NULL)
        return SL_ENOMEM;
    b->data = grown;
    b->cap = cap;
    return 0;
}

static void write_all(const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(W.fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            exit(0); /* the engine is gone: nobody wants the results */
        data += n;
        len -= (size_t)n;
    }
}

static void flush(void)
{
    if (W.out.len > SL_POOL_HEADER_SIZE) {
        sl__pool_put_u32(W.out.data, (uint32_t)(W.out.len - SL_POOL_HEADER_SIZE));
        W.out.data[4] = SL_POOL_MSG_RESULTS;
        write_all(W.out.data, W.out.len);
    }
    W.out.len = SL_POOL_HEADER_SIZE;
    W.now_ns = W.last_flush_ns = sl__clock_now_ns(); /* a write can wait: the next task starts now */
}

static void format_limit(char *buf, size_t size)
{
    uint64_t b = W.memory_bytes;
    if (b % (1u << 30) == 0)
        snprintf(buf, size, "%llu GiB", (unsigned long long)(b >> 30));
    else if (b % (1u << 20) == 0)
        snprintf(buf, size, "%llu MiB", (unsigned long long)(b >> 20));
    else
        snprintf(buf, size, "%llu bytes", (unsigned long long)b);
}

static void record_fail(worker_task_t *t, int code, const char *message)
{
    char oom[512];
    if (code == SL_ENOMEM && W.memory_bytes) { /* the limit first, then the kind's own words */
        char limit[32];
        format_limit(limit, sizeof(limit));
        snprintf(oom, sizeof(oom), "out of memory: limits.cpu.memory is %s (%s)", limit, message);
        message = oom;
    }
    size_t len = strlen(message);
    if (len > 65536)
        len = 65536;
    if (reserve(&W.out, 1 + 8 + 8 + 4 + 8 + 4 + len) < 0) {
        flush(); /* make room: what waits goes out first */
        if (reserve(&W.out, 1 + 8 + 8 + 4 + 8 + 4 + len) < 0)
            exit(EXIT_PROTOCOL);
    }
    uint8_t *p = W.out.data + W.out.len;
    p[0] = SL_POOL_REC_FAIL;
    sl__pool_put_u64(p + 1, t->seq);
    sl__pool_put_u64(p + 9, task_ended(t));
    sl__pool_put_u32(p + 17, (uint32_t)code);
    sl__pool_put_u64(p + 21, (uint64_t)t->retry_after_ms);
    sl__pool_put_u32(p + 29, (uint32_t)len);
    memcpy(p + 33, message, len);
    W.out.len += 33 + len;
}

/* ---- the worker's host table ---------------------------------------------------------- */

static void task_done(sl_task_t *task, sl_value_t *output)
{
    worker_task_t *t = (worker_task_t *)task;
    if (t->completed) {
        sl_value_free(output);
        return;
    }
    t->completed = true;
    size_t size = 0;
    int rc = sl__value_wire_size(output, &size);
    if (rc == 0 && (rc = reserve(&W.out, 25 + size)) < 0) {
        flush();
        rc = reserve(&W.out, 25 + size);
    }
    if (rc < 0) {
        sl_value_free(output);
        char message[160];
        snprintf(message, sizeof(message), "the output of kind '%s' cannot be sent to the "
                 "engine: %s (at most %u levels deep and 1 GiB)", t->kind, sl_strerror(rc),
                 SL_WIRE_DEPTH_MAX);
        record_fail(t, rc, message);
        return;
    }
    uint8_t *p = W.out.data + W.out.len;
    p[0] = SL_POOL_REC_DONE;
    sl__pool_put_u64(p + 1, t->seq);
    sl__pool_put_u64(p + 9, task_ended(t));
    sl__pool_put_u64(p + 17, size);
    W.out.len += 25 + sl__value_wire_encode(output, p + 25);
    sl_value_free(output);
}

static void task_fail(sl_task_t *task, int code, const char *message)
{
    worker_task_t *t = (worker_task_t *)task;
    if (t->completed)
        return;
    t->completed = true;
    record_fail(t, code < 0 ? code : SL_EFAILED, message ? message : sl_strerror(code));
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    char *text = n >= 0 ? sl__malloc((size_t)n + 1) : NULL;
    if (text)
        vsnprintf(text, (size_t)n + 1, fmt, ap);
    return text;
}

static void task_failf(sl_task_t *task, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = vformat(fmt, ap);
    va_end(ap);
    task_fail(task, code, message ? message : fmt);
    sl__free(message);
}

static void task_log(sl_task_t *task, int level, const char *fmt, ...)
{
    worker_task_t *t = (worker_task_t *)task;
    if (level < sl__log_level || t == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *text = vformat(fmt, ap);
    va_end(ap);
    size_t len = text ? strlen(text) : 0;
    if (len > 65536)
        len = 65536;
    if (text && reserve(&W.out, 1 + 8 + 1 + 4 + len) == 0) {
        uint8_t *p = W.out.data + W.out.len;
        p[0] = SL_POOL_REC_LOG;
        sl__pool_put_u64(p + 1, t->seq);
        p[9] = (uint8_t)level;
        sl__pool_put_u32(p + 10, (uint32_t)len);
        memcpy(p + 14, text, len);
        W.out.len += 14 + len;
    }
    sl__free(text);
}

static struct uv_loop_s *task_loop(sl_task_t *task)
{
    return NULL; /* CPU kinds have no loop in a worker */
}

static void task_set_data(sl_task_t *task, void *data)
{
    ((worker_task_t *)task)->data = data;
}

static void *task_data(sl_task_t *task)
{
    return ((worker_task_t *)task)->data;
}

static int task_attempt(sl_task_t *task)
{
    return (int)((worker_task_t *)task)->attempt;
}

static void task_retry_after(sl_task_t *task, int64_t delay_ms)
{
    ((worker_task_t *)task)->retry_after_ms = delay_ms;
}

static int http_request(sl_task_t *task, const sl_value_t *request, sl_http_done_fn done,
                        void *ud, sl_http_t **out)
{
    return SL_EINVAL; /* HTTP is the loop's: a CPU kind in a worker has none */
}

static void http_cancel(sl_http_t *req)
{
}

static void setup_host(void)
{
    sl__plugin_host_init(&W.host);
    W.host.log = task_log;
    W.host.task_done = task_done;
    W.host.task_fail = task_fail;
    W.host.task_failf = task_failf;
    W.host.task_loop = task_loop;
    W.host.task_set_data = task_set_data;
    W.host.task_data = task_data;
    W.host.task_attempt = task_attempt;
    W.host.task_retry_after = task_retry_after;
    W.host.http_request = http_request;
    W.host.http_cancel = http_cancel;
}

/* ---- running tasks -------------------------------------------------------------------- */

/*
 * The kind `name`, loading `plugin` (the file the engine took it from) when it is not
 * loaded yet, or every plugin when the job named none. Loading only what tasks use keeps
 * a worker's start short and its address space small (a plugin's libraries count against
 * limits.cpu.memory).
 */
static const sl_kind_t *find_kind(const char *name, const uint8_t *plugin, size_t plugin_len)
{
    sl_diag_t diag;
    sl__diag_init(&diag); /* the engine reported plugin problems already */
    if (W.registry == NULL) {
        if (sl__registry_new(&W.host, &W.registry) < 0)
            return NULL;
        for (size_t i = 0; i < W.builtin_count; i++)
            sl__registry_add_builtin(W.registry, W.builtins[i], &diag);
    }
    const sl_kind_info_t *info = sl__registry_find(W.registry, name);
    if (info == NULL && plugin_len > 0 && plugin_len < PATH_MAX) {
        char path[PATH_MAX];
        memcpy(path, plugin, plugin_len);
        path[plugin_len] = '\0';
        sl__registry_load_file(W.registry, path, &diag);
        info = sl__registry_find(W.registry, name);
    }
    if (info == NULL && !W.all_loaded) {
        W.all_loaded = true;
        sl__registry_load_default(W.registry, &diag);
        info = sl__registry_find(W.registry, name);
    }
    sl__diag_close(&diag);
    return info && info->kind->exec == SL_EXEC_CPU ? info->kind : NULL;
}

static void run_task(worker_task_t *t, const uint8_t *plugin, size_t plugin_len,
                     const sl_value_t *args)
{
    static const sl_kind_t *last_kind;
    static char last_name[256];
    const sl_kind_t *kind = last_kind;
    if (kind == NULL || strcmp(last_name, t->kind) != 0) {
        kind = find_kind(t->kind, plugin, plugin_len);
        last_kind = kind;
        snprintf(last_name, sizeof(last_name), "%s", t->kind);
    }
    if (kind == NULL) {
        char message[160];
        snprintf(message, sizeof(message), "kind '%s' is not found by the worker process "
                 "(is its plugin on SLUICE_PLUGIN_PATH?)", t->kind);
        record_fail(t, SL_ENOTFOUND, message);
        return;
    }
    int rc = kind->start((sl_task_t *)t, args);
    if (t->completed)
        return;
    char message[160];
    if (rc < 0)
        snprintf(message, sizeof(message), "kind '%s' could not start: %s", t->kind,
                 sl_strerror(rc));
    else
        snprintf(message, sizeof(message), "kind '%s' returned without completing the task "
                 "(a CPU kind completes it inside start)", t->kind);
    record_fail(t, rc < 0 ? rc : SL_EINTERNAL, message);
}

static void protocol_error(const char *what)
{
    fprintf(stderr, "sluice worker %u: protocol error: %s\n", W.id, what);
    exit(EXIT_PROTOCOL);
}

static void run_batch(const uint8_t *payload, size_t len)
{
    sl_pool_cursor_t c = {payload, len, 0, 0};
    uint32_t count = sl__pool_take_u32(&c);
    W.now_ns = sl__clock_now_ns();
    for (uint32_t i = 0; i < count; i++) {
        worker_task_t t = {.seq = sl__pool_take_u64(&c)};
        uint8_t kind_len = sl__pool_take_u8(&c);
        const uint8_t *kind = sl__pool_take(&c, kind_len);
        uint16_t plugin_len = sl__pool_take_u16(&c);
        const uint8_t *plugin = sl__pool_take(&c, plugin_len);
        t.attempt = sl__pool_take_u32(&c);
        sl_value_t args;
        size_t used = 0;
        if (c.error || sl__value_wire_decode_keys(&args, c.data + c.pos, c.len - c.pos, &used,
                                                   &W.keys))
            protocol_error("malformed batch");
        c.pos += used;
        char name[256];
        memcpy(name, kind, kind_len);
        name[kind_len] = '\0';
        t.kind = name;
        t.started_ns = W.now_ns;
        atomic_store_explicit(&W.shared->started_ns, t.started_ns, memory_order_relaxed);
        atomic_store_explicit(&W.shared->running_seq, t.seq, memory_order_release);
        run_task(&t, plugin, plugin_len, &args);
        atomic_store_explicit(&W.shared->running_seq, 0, memory_order_release);
        sl_value_clear(&args);
        if (i + 1 == count || W.out.len >= OUT_FLUSH_BYTES ||
            W.now_ns - W.last_flush_ns >= OUT_FLUSH_NS)
            flush();
    }
}

/* Reads exactly `len` bytes; false at a clean end of input before the first byte. */
static bool read_all(uint8_t *data, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(W.in_fd, data + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (got == 0 && n == 0)
                return false;
            protocol_error("the engine's socket ended inside a frame");
        }
        got += (size_t)n;
    }
    return true;
}

static void out_init(void)
{
    W.out.len = 0;
    if (reserve(&W.out, 64 * 1024) < 0)
        exit(EXIT_PROTOCOL);
    W.out.len = SL_POOL_HEADER_SIZE;
}

static void serve(void)
{
    bytes_t in = {0};
    uint8_t header[SL_POOL_HEADER_SIZE];
    out_init();
    while (read_all(header, sizeof(header))) {
        uint32_t len = sl__pool_get_u32(header);
        if (header[4] != SL_POOL_MSG_BATCH || len > SL_POOL_FRAME_MAX)
            protocol_error("unexpected frame");
        in.len = 0;
        if (reserve(&in, len) < 0)
            protocol_error("no memory for a batch");
        read_all(in.data, len);
        run_batch(in.data, len);
        if (in.cap > IN_KEEP_BYTES) {
            sl__free(in.data);
            in = (bytes_t){0};
        }
    }
    sl__free(in.data);
}

/* File mode: one batch from `in_path`, results to `out_path` (written whole, then renamed). */
static int serve_files(const char *in_path, const char *out_path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", out_path) >= (int)sizeof(tmp))
        return EXIT_PROTOCOL;
    W.in_fd = open(in_path, O_RDONLY | O_CLOEXEC);
    W.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    W.shared = mmap(NULL, SL_POOL_SHARED_SIZE, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (W.in_fd < 0 || W.fd < 0 || W.shared == MAP_FAILED) {
        fprintf(stderr, "sluice worker: cannot open %s or %s: %s\n", in_path, tmp,
                strerror(errno));
        return EXIT_PROTOCOL;
    }
    serve(); /* the one batch, then the end of IN */
    uint8_t end[SL_POOL_HEADER_SIZE] = {0, 0, 0, 0, SL_POOL_MSG_END};
    write_all(end, sizeof(end));
    if (fsync(W.fd) < 0 || close(W.fd) < 0 || rename(tmp, out_path) < 0) {
        fprintf(stderr, "sluice worker: cannot write %s: %s\n", out_path, strerror(errno));
        return EXIT_PROTOCOL;
    }
    return 0;
}

/* ---- setup ---------------------------------------------------------------------------- */

/* Async-signal-safe: is the address space near limits.cpu.memory? Then a crash is most
 * likely the limit's doing, and the engine says so. */
static void on_fatal_signal(int signum)
{
    if (W.memory_bytes && W.shared) {
        char buf[64];
        int fd = open("/proc/self/statm", O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        uint64_t pages = 0;
        for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
            pages = pages * 10 + (uint64_t)(buf[i] - '0');
        uint64_t bytes = pages * (uint64_t)sysconf(_SC_PAGESIZE);
        if (bytes + (W.memory_bytes >> 3) >= W.memory_bytes)
            atomic_store(&W.shared->out_of_memory, 1);
    }
    raise(signum); /* SA_RESETHAND: the default action now, the signal named in the exit */
}

static void setup_signals(void)
{
    static char alt_stack[64 * 1024];
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof(alt_stack)};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {.sa_handler = on_fatal_signal,
                           .sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
    for (size_t i = 0; i < SL_COUNTOF(fatal); i++)
        sigaction(fatal[i], &sa, NULL);
    signal(SIGINT, SIG_IGN); /* a terminal's Ctrl-C reaches us too: the engine decides */
    signal(SIGPIPE, SIG_IGN);
}

static void apply_memory_limit(void)
{
    if (W.memory_bytes == 0)
        return;
#if defined(__SANITIZE_ADDRESS__)
    /* ASan reserves terabytes of address space up front: any limit would stop it. */
    SL_LOG(SL_LOG_DEBUG, NULL, NULL, "worker %u: memory limit not applied under ASan", W.id);
#else
    struct rlimit limit = {W.memory_bytes, W.memory_bytes};
    if (setrlimit(RLIMIT_AS, &limit) < 0)
        fprintf(stderr, "sluice worker %u: cannot apply limits.cpu.memory: %s\n", W.id,
                strerror(errno));
#endif
}

int sl__pool_worker_main(int argc, char **argv, const sl_plugin_entry_fn *builtins,
                         size_t builtin_count)
{
    W.builtins = builtins;
    W.builtin_count = builtin_count;
    long parent = 0;
    int log_level = SL_LOG_INFO;
    const char *batch_in = NULL, *batch_out = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--id") == 0)
            W.id = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--parent") == 0)
            parent = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--memory") == 0)
            W.memory_bytes = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--log-level") == 0)
            log_level = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--batch-in") == 0)
            batch_in = argv[i + 1];
        else if (strcmp(argv[i], "--batch-out") == 0)
            batch_out = argv[i + 1];
    }
    if (batch_in && batch_out) {
        sl__log_setup(log_level, SL_LOGFMT_TEXT);
        setup_signals();
        apply_memory_limit();
        setup_host();
        return serve_files(batch_in, batch_out);
    }
    /* Never outlive the engine: killed when it dies, and gone already if it has. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (parent <= 0 || getppid() != (pid_t)parent)
        return 0;
    sl__log_setup(log_level, SL_LOGFMT_TEXT);
    W.fd = W.in_fd = SL_POOL_SOCKET_FD;
    W.shared = mmap(NULL, SL_POOL_SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                    SL_POOL_SHARED_FD, 0);
    if (W.shared == MAP_FAILED) {
        fprintf(stderr, "sluice worker: not started by the engine (no shared page)\n");
        return EXIT_PROTOCOL;
    }
    close(SL_POOL_SHARED_FD);
    setup_signals();
    apply_memory_limit();
    setup_host();
    serve();
    sl__free(W.out.data);
    sl__wire_keys_clear(&W.keys);
    sl__registry_free(W.registry);
    return 0;
}
