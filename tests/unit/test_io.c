/*
 * io: robots.txt rules, and the HTTP client against the real fixture server
 * (tests/fixture): completion, cancel, close with requests in flight, and every
 * allocation failing in turn. Each callback must run exactly once and the loop
 * must close with no handle left.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <uv.h>

#include "io/internal.h"
#include "test.h"

extern char **environ;

/* ---- robots.txt ---------------------------------------------------------------- */

typedef struct robots_case {
    const char *text;
    const char *path;
    bool allowed;
} robots_case_t;

static void test_robots_rules(void)
{
    static const robots_case_t cases[] = {
        {"User-agent: *\nDisallow: /private/\nAllow: /private/public\n", "/private/x", false},
        {"User-agent: *\nDisallow: /private/\nAllow: /private/public\n", "/private/public.html",
         true},
        {"User-agent: *\nDisallow: /private/\n", "/other", true},
        /* A group naming us wins over `*`. */
        {"User-agent: *\nDisallow: /\n\nUser-agent: Sluice\nDisallow: /no\n", "/yes", true},
        {"User-agent: *\nDisallow: /\n\nUser-agent: sluice\nDisallow: /no\n", "/no/x", false},
        /* Several user-agent lines open one group. */
        {"User-agent: otherbot\nUser-agent: *\nDisallow: /x\n", "/x/1", false},
        {"User-agent: otherbot\nDisallow: /x\n", "/x/1", true},
        /* Wildcards and the end anchor. */
        {"User-agent: *\nDisallow: /*.php$\n", "/a/b.php", false},
        {"User-agent: *\nDisallow: /*.php$\n", "/a/b.php?x=1", true},
        {"User-agent: *\nDisallow: /*.php\n", "/a/b.php?x=1", false},
        /* Longest match wins; Allow wins a tie. */
        {"User-agent: *\nAllow: /a\nDisallow: /a/b\n", "/a/b/c", false},
        {"User-agent: *\nDisallow: /a\nAllow: /a\n", "/a", true},
        /* Comments, blank values, case of keys. */
        {"# hi\nUSER-AGENT: * # all\nDISALLOW:\ndisallow: /z # zed\n", "/", true},
        {"# hi\nUSER-AGENT: * # all\nDISALLOW:\ndisallow: /z # zed\n", "/z", false},
        {"", "/anything", true},
        /* Stars backtrack in linear steps: this would take 2^40 with naive recursion. */
        {"User-agent: *\nDisallow: /*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c\n",
         "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true},
        {"User-agent: *\nDisallow: /*x*y$\n", "/axbyc", true},
        {"User-agent: *\nDisallow: /*x*y$\n", "/axbyy", false},
        /* Our name in a comment or a path does not make a group ours. */
        {"# for sluice\nUser-agent: *\nDisallow: /sluice/\n", "/sluice/x", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        robots_t *robots = NULL;
        CHECK_INT(sl__io_robots_parse(cases[i].text, strlen(cases[i].text), &robots), 0);
        const char *rule = NULL;
        bool allowed = sl__io_robots_allows(robots, cases[i].path, &rule);
        if (allowed != cases[i].allowed)
            fprintf(stderr, "  case %zu: %s on %s\n", i, cases[i].path, cases[i].text);
        CHECK(allowed == cases[i].allowed);
        if (!allowed)
            CHECK_CONTAINS(rule, "Disallow: ");
        sl__io_robots_free(robots);
    }
    robots_t *robots = NULL;
    const char *text = "User-agent: *\nCrawl-delay: 2.5\n";
    CHECK_INT(sl__io_robots_parse(text, strlen(text), &robots), 0);
    CHECK(sl__io_robots_crawl_delay(robots) == 2.5);
    sl__io_robots_free(robots);
}

/* ---- the fixture server ---------------------------------------------------------- */

typedef struct fixture {
    pid_t pid;
    char url[128];
    char dir[64];
} fixture_t;

static bool fixture_start(fixture_t *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-test-io.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return false;
    char server[512], port_file[128];
    snprintf(server, sizeof(server), "%s/tests/fixture/fixture_server", SLUICE_BINARY_DIR);
    snprintf(port_file, sizeof(port_file), "%s/url", f->dir);
    char *argv[] = {server, "--port", "0", "--port-file", port_file, "--quiet",
                    "--exit-with-parent", NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&f->pid, server, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return false;
    for (int i = 0; i < 400; i++) { /* at most 10 s */
        FILE *in = fopen(port_file, "r");
        if (in) {
            bool ok = fgets(f->url, sizeof(f->url), in) != NULL;
            fclose(in);
            if (ok) {
                f->url[strcspn(f->url, "\n")] = '\0';
                return true;
            }
        }
        usleep(25000);
    }
    return false;
}

static void fixture_stop(fixture_t *f)
{
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/url", f->dir);
    unlink(path);
    rmdir(f->dir);
}

/* ---- the client --------------------------------------------------------------------- */

typedef struct outcome {
    int calls;
    int code;
    int64_t status;
    int64_t retry_after_ms;
    char message[512];
} outcome_t;

static void on_done(void *ud, int code, sl_value_t *response, const char *message,
                    int64_t retry_after_ms)
{
    outcome_t *o = ud;
    o->calls++;
    o->code = code;
    o->retry_after_ms = retry_after_ms;
    o->status = response ? sl_value_int_of(sl_value_get(response, "status")) : 0;
    snprintf(o->message, sizeof(o->message), "%s", message ? message : "");
    sl_value_free(response);
}

static sl_value_t *request(const char *base, const char *path, const char *save_to)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    sl_value_t *map = sl_value_map();
    sl_value_set(map, "url", sl_value_cstring(url));
    if (save_to)
        sl_value_set(map, "save_to", sl_value_cstring(save_to));
    return map;
}

static int start(sl_http_client_t *client, const char *base, const char *path,
                 const char *save_to, outcome_t *o, sl_http_t **req)
{
    sl_value_t *opts = request(base, path, save_to);
    int rc = opts ? sl__io_http_start(client, 0, opts, on_done, o, req) : SL_ENOMEM;
    sl_value_free(opts);
    return rc;
}

static void test_get_cancel_close(void)
{
    fixture_t f;
    CHECK(fixture_start(&f));
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_http_limits_t limits = {.concurrency = 2, .per_host = 2};
    sl_http_client_t *client = NULL;
    CHECK_INT(sl__io_http_new(&loop, &limits, &client), 0);
    outcome_t ok = {0}, canceled = {0}, queued = {0}, inflight = {0}, bad = {0};
    sl_http_t *req = NULL, *hang = NULL;
    CHECK_INT(start(client, f.url, "/ip", NULL, &ok, &req), 0);
    CHECK_INT(start(client, f.url, "/hang", NULL, &canceled, &hang), 0);
    CHECK_INT(start(client, "ftp://x", "/", NULL, &bad, &req), 0);
    CHECK_INT(bad.calls, 0); /* never from inside start */
    while (ok.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(ok.code, 0);
    CHECK_INT(ok.status, 200);
    CHECK_INT(bad.code, SL_EINVAL);
    CHECK_CONTAINS(bad.message, "is not an http:// or https:// URL");
    CHECK_INT(canceled.calls, 0);
    sl__io_http_cancel(hang);
    CHECK_INT(canceled.calls, 1); /* before cancel returns */
    CHECK_INT(canceled.code, SL_ECANCELED);
    /* Two hangs fill the limit; a third waits in the engine. Closing reports all. */
    CHECK_INT(start(client, f.url, "/hang", NULL, &inflight, &req), 0);
    CHECK_INT(start(client, f.url, "/hang?b", NULL, &inflight, &req), 0);
    CHECK_INT(start(client, f.url, "/ip", NULL, &queued, &req), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    sl_http_stats_t stats;
    sl__io_http_stats(client, &stats);
    CHECK_INT(stats.inflight, 2);
    CHECK_INT(queued.calls, 0);
    sl__io_http_close(client);
    CHECK_INT(inflight.calls, 2);
    CHECK_INT(inflight.code, SL_ECANCELED);
    CHECK_INT(queued.calls, 1);
    CHECK_INT(queued.code, SL_ECANCELED);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(sl__io_http_closed(client));
    sl__io_http_free(client);
    CHECK_INT(uv_loop_close(&loop), 0);
    CHECK_INT(canceled.calls, 1);
    fixture_stop(&f);
}

static void test_retry_hints(void)
{
    fixture_t f;
    CHECK(fixture_start(&f));
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_http_limits_t limits = {0};
    sl_http_client_t *client = NULL;
    CHECK_INT(sl__io_http_new(&loop, &limits, &client), 0);
    outcome_t gone = {0}, busy = {0}, loop_ = {0};
    sl_http_t *req;
    CHECK_INT(start(client, f.url, "/status/404", NULL, &gone, &req), 0);
    CHECK_INT(start(client, f.url, "/status/429?retry_after=7", NULL, &busy, &req), 0);
    CHECK_INT(start(client, f.url, "/redirect-loop", NULL, &loop_, &req), 0);
    while (gone.calls + busy.calls + loop_.calls < 3)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(gone.code, SL_EFAILED);
    CHECK_INT(gone.retry_after_ms, -1); /* permanent */
    CHECK_INT(busy.retry_after_ms, 7000);
    CHECK_CONTAINS(busy.message, "HTTP 429");
    CHECK_INT(loop_.retry_after_ms, -1);
    sl__io_http_close(client);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(sl__io_http_closed(client));
    sl__io_http_free(client);
    CHECK_INT(uv_loop_close(&loop), 0);
    fixture_stop(&f);
}

/* Allocation n fails, for every n: each callback still runs once, nothing leaks. */
static void test_allocation_failures(void)
{
    fixture_t f;
    CHECK(fixture_start(&f));
    char save_to[128];
    snprintf(save_to, sizeof(save_to), "%s/saved/file.bin", f.dir);
    sl__log_setup(SL_LOG_ERROR + 1, SL_LOGFMT_TEXT);
    int succeeded = 0;
    for (uint64_t n = 1; n < 300; n++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        sl_http_limits_t limits = {0};
        sl_http_client_t *client = NULL;
        outcome_t a = {0}, b = {0};
        sl_http_t *req;
        sl__alloc_fail_at(n);
        int started = 0;
        if (sl__io_http_new(&loop, &limits, &client) == 0) {
            started += start(client, f.url, "/bytes/5000", NULL, &a, &req) == 0;
            started += start(client, f.url, "/bytes/70000", save_to, &b, &req) == 0;
            while (a.calls + b.calls < started)
                uv_run(&loop, UV_RUN_ONCE);
            sl__io_http_close(client);
        }
        sl__alloc_fail_at(0);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(sl__io_http_closed(client));
        sl__io_http_free(client);
        CHECK_INT(uv_loop_close(&loop), 0);
        CHECK(a.calls <= 1 && b.calls <= 1);
        succeeded += a.calls == 1 && a.code == 0 && b.calls == 1 && b.code == 0;
        /* A failed save leaves no file behind; a good one leaves the whole file. */
        struct stat st;
        if (stat(save_to, &st) == 0) {
            CHECK(b.code == 0);
            CHECK_INT(st.st_size, 70000);
            unlink(save_to);
        }
    }
    CHECK(succeeded > 0);
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/saved", f.dir);
    rmdir(dir);
    fixture_stop(&f);
}

TEST_MAIN(120, T(test_robots_rules), T(test_get_cancel_close), T(test_retry_hints),
          T(test_allocation_failures))
