/*
 * A small test harness: each TEST runs in its own forked process with a
 * timeout, so a crash or hang fails that test alone. The runner prints
 * "N passed, N failed" and exits non-zero on any failure.
 */
#ifndef SL_TEST_H
#define SL_TEST_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*sl_test_fn)(void);
typedef struct { const char *name; sl_test_fn fn; } sl_test_case_t;

static int sl_test_failures_;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            sl_test_failures_++;                                                       \
        }                                                                              \
    } while (0)

#define CHECK_INT(a, b)                                                                    \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_) {                                                                    \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,        \
                    __LINE__, #a, a_, #b, b_);                                             \
            sl_test_failures_++;                                                           \
        }                                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                  \
    do {                                                                                 \
        const char *a_ = (a), *b_ = (b);                                                 \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                           \
            fprintf(stderr, "  %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,        \
                    __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");               \
            sl_test_failures_++;                                                         \
        }                                                                                \
    } while (0)

/* Checks that `hay` contains `needle`. */
#define CHECK_CONTAINS(hay, needle)                                                      \
    do {                                                                                 \
        const char *h_ = (hay), *n_ = (needle);                                          \
        if (h_ == NULL || strstr(h_, n_) == NULL) {                                      \
            fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,       \
                    __LINE__, h_ ? h_ : "(null)", n_);                                   \
            sl_test_failures_++;                                                         \
        }                                                                                \
    } while (0)

/* Runs each case in a child process with a timeout of `seconds`. */
static inline int sl_test_run(const sl_test_case_t *cases, size_t count, unsigned seconds)
{
    int passed = 0, failed = 0;
    const char *only = getenv("TEST_ONLY");
    for (size_t i = 0; i < count; i++) {
        if (only && strcmp(only, cases[i].name) != 0)
            continue;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(seconds);
            cases[i].fn();
            fflush(stdout);
            fflush(stderr);
            exit(sl_test_failures_ ? 1 : 0); /* exit, not _exit: LeakSanitizer checks here */
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
            printf("ok   %s\n", cases[i].name);
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("FAIL %s (signal %d%s)\n", cases[i].name, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? ", timeout" : "");
            else
                printf("FAIL %s\n", cases[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_MAIN(seconds, ...)                                              \
    int main(void)                                                           \
    {                                                                        \
        static const sl_test_case_t cases_[] = {__VA_ARGS__};                \
        return sl_test_run(cases_, sizeof(cases_) / sizeof(cases_[0]), (seconds)); \
    }
#define T(fn) {#fn, fn}

#endif
