/*
 * plugin/abi.c and plugin/args.c: the engine-independent host functions of ABI 1.2, called
 * through a table filled by sl__plugin_host_init as a plugin calls them. The argument
 * helpers' standard messages; the file functions' messages (file.read's and file.write's),
 * atomicity, cancellation; allocation failures injected with sl__alloc_fail_at.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "plugin/registry.h"
#include "test.h"
#include "value/value.h"

static sl_host_t H;

static void init(void)
{
    sl__plugin_host_init(&H);
}

/* A map of one entry `name` = `v` (taken). */
static sl_value_t *args_of(const char *name, sl_value_t *v)
{
    sl_value_t *args = sl_value_map();
    CHECK(args != NULL && sl_value_set(args, name, v) == 0);
    return args;
}

/* arg_int of `v` (taken) for "limit" in [0, 2^32]: the code, and the message in err. */
static int limit_of(sl_value_t *v, int64_t *out, char *err, size_t size)
{
    sl_value_t *args = args_of("limit", v);
    err[0] = '\0';
    int rc = H.arg_int(args, "limit", SL_ARG_REQUIRED, 0, (int64_t)1 << 32, NULL, out, err,
                       size);
    sl_value_free(args);
    return rc;
}

static void test_arg_int(void)
{
    init();
    char err[SL_ERR_SIZE];
    int64_t n = -1;
    CHECK_INT(limit_of(sl_value_int(30), &n, err, sizeof(err)), 0);
    CHECK_INT(n, 30);
    CHECK_INT(limit_of(sl_value_number(100.0), &n, err, sizeof(err)), 0);
    CHECK_INT(n, 100);
    CHECK_INT(limit_of(sl_value_int(-5), &n, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'limit' must be >= 0, got -5");
    CHECK_INT(limit_of(sl_value_number(-5.0), &n, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'limit' must be >= 0, got -5");
    CHECK_INT(limit_of(sl_value_int(4294967297), &n, err, sizeof(err)), SL_ELIMIT);
    CHECK_STR(err, "'limit' 4294967297 is above the maximum, 2^32 = 4294967296");
    CHECK_INT(limit_of(sl_value_string("ten", 3), &n, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'limit' must be an integer, got 'ten'");
    CHECK_INT(limit_of(sl_value_bool(1), &n, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'limit' must be an integer, got true");
    CHECK_INT(limit_of(sl_value_list(), &n, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'limit' must be an integer, got an empty list");
    CHECK_INT(limit_of(sl_value_nil(), &n, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'limit' is required");
    CHECK_INT(n, 100); /* untouched by every failure */
}

/* Numbers with no int64 value: the conversion would be undefined (UBSan checks it). */
static void test_arg_int_no_integer_value(void)
{
    init();
    char err[SL_ERR_SIZE];
    int64_t n = 7;
    const struct {
        double number;
        const char *shown;
    } cases[] = {{2.5, "2.5"},     {1e300, "1e+300"},        {-1e300, "-1e+300"},
                 {NAN, "nan"},     {-NAN, "nan"},            {INFINITY, "inf"},
                 {-INFINITY, "-inf"}, {9223372036854775808.0, "9.223372036854776e+18"},
                 {0.1, "0.1"}};
    for (size_t i = 0; i < SL_COUNTOF(cases); i++) {
        CHECK_INT(limit_of(sl_value_number(cases[i].number), &n, err, sizeof(err)), SL_EINVAL);
        char want[128];
        snprintf(want, sizeof(want), "'limit' must be a whole number from 0 to 4294967296, got %s",
                 cases[i].shown);
        CHECK_STR(err, want);
    }
    CHECK_INT(n, 7);
    /* -2^63 is a double with an int64 value, the lowest. */
    sl_value_t *args = args_of("n", sl_value_number(-9223372036854775808.0));
    CHECK_INT(H.arg_int(args, "n", 0, INT64_MIN, INT64_MAX, NULL, &n, err, sizeof(err)), 0);
    CHECK(n == INT64_MIN);
    sl_value_free(args);
}

static void test_arg_int_default_and_hint(void)
{
    init();
    char err[SL_ERR_SIZE];
    int64_t n = 64;
    sl_value_t *empty = sl_value_map();
    CHECK_INT(H.arg_int(empty, "max_bytes", 0, 0, INT64_MAX, NULL, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 64); /* absent: the default stays */
    CHECK_INT(H.arg_int(NULL, "max_bytes", 0, 0, INT64_MAX, NULL, &n, err, sizeof(err)), 0);
    CHECK_INT(H.arg_int(empty, "max_bytes", SL_ARG_REQUIRED, 0, 9, NULL, &n, err, sizeof(err)),
              SL_EINVAL);
    CHECK_STR(err, "'max_bytes' is required");
    sl_value_free(empty);
    sl_value_t *args = args_of("exponent", sl_value_number(1.5));
    const char *hint = "use a string of digits for big values";
    CHECK_INT(H.arg_int(args, "exponent", 0, 0, 1000000000, hint, &n, err, sizeof(err)),
              SL_EINVAL);
    CHECK_STR(err, "'exponent' must be a whole number (use a string of digits for big values), "
                   "got 1.5");
    CHECK_INT(sl_value_set(args, "exponent", sl_value_int(1000000001)), 0);
    CHECK_INT(H.arg_int(args, "exponent", 0, 0, 1000000000, hint, &n, err, sizeof(err)),
              SL_ELIMIT);
    CHECK_STR(err, "'exponent' 1000000001 is above the maximum, 1000000000");
    CHECK_INT(H.arg_int(args, "exponent", 0, 0, 5, hint, &n, NULL, 0), SL_ELIMIT); /* no err */
    char small[12];
    CHECK_INT(H.arg_int(args, "exponent", 0, 0, 5, hint, &n, small, sizeof(small)), SL_ELIMIT);
    CHECK_STR(small, "'exponent' "); /* cut to fit */
    sl_value_free(args);
}

static void test_arg_duration(void)
{
    init();
    char err[SL_ERR_SIZE];
    const struct {
        sl_value_t *v;
        int64_t ms;
    } good[] = {{sl_value_string("250ms", 5), 250}, {sl_value_string("30s", 3), 30000},
                {sl_value_string("1.5", 3), 1500}, {sl_value_int(5), 5000},
                {sl_value_number(0.25), 250},       {sl_value_int(0), 0}};
    for (size_t i = 0; i < SL_COUNTOF(good); i++) {
        sl_value_t *args = args_of("grace", good[i].v);
        int64_t ms = -1;
        CHECK_INT(H.arg_duration(args, "grace", 0, &ms, err, sizeof(err)), 0);
        CHECK_INT(ms, good[i].ms);
        sl_value_free(args);
    }
    sl_value_t *bad[] = {sl_value_string("5x", 2), sl_value_int(-1), sl_value_number(NAN),
                         sl_value_number(INFINITY), sl_value_number(1e300), sl_value_bool(0),
                         sl_value_string("1\0s", 3), sl_value_map()};
    const char *shown[] = {"'5x'", "-1", "nan", "inf", "1e+300", "false", "'1…'", "a map"};
    for (size_t i = 0; i < SL_COUNTOF(bad); i++) {
        sl_value_t *args = args_of("grace", bad[i]);
        int64_t ms = 42;
        CHECK_INT(H.arg_duration(args, "grace", 0, &ms, err, sizeof(err)), SL_EINVAL);
        char want[160];
        snprintf(want, sizeof(want), "'grace' must be a duration (250ms, 30s, 5m, 2h, 1d or a "
                 "number of seconds), got %s", shown[i]);
        CHECK_STR(err, want);
        CHECK_INT(ms, 42);
        sl_value_free(args);
    }
}

static void test_arg_string(void)
{
    init();
    char err[SL_ERR_SIZE], *s = NULL;
    size_t len = 9;
    sl_value_t *args = args_of("path", sl_value_string("out/x.txt", 9));
    CHECK_INT(H.arg_string(args, "path", SL_ARG_REQUIRED, &s, &len, err, sizeof(err)), 0);
    CHECK_STR(s, "out/x.txt");
    CHECK_INT(len, 9);
    H.free(s);
    CHECK_INT(H.arg_string(args, "cwd", 0, &s, &len, err, sizeof(err)), 0); /* absent */
    CHECK(s == NULL && len == 0);
    CHECK_INT(H.arg_string(args, "cwd", SL_ARG_REQUIRED, &s, NULL, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'cwd' is required");
    CHECK_INT(sl_value_set(args, "path", sl_value_int(30)), 0);
    CHECK_INT(H.arg_string(args, "path", 0, &s, NULL, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'path' must be a string, got 30");
    CHECK_INT(H.arg_string(args, "path", SL_ARG_SCALARS, &s, NULL, err, sizeof(err)), 0);
    CHECK_STR(s, "30");
    H.free(s);
    CHECK_INT(sl_value_set(args, "path", sl_value_number(2.5)), 0);
    CHECK_INT(H.arg_string(args, "path", SL_ARG_SCALARS, &s, NULL, err, sizeof(err)), 0);
    CHECK_STR(s, "2.5");
    H.free(s);
    CHECK_INT(sl_value_set(args, "path", sl_value_list()), 0);
    CHECK_INT(H.arg_string(args, "path", SL_ARG_SCALARS, &s, NULL, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'path' must be a string, a number or a boolean, got an empty list");
    CHECK_INT(sl_value_set(args, "path", sl_value_string("", 0)), 0);
    CHECK_INT(H.arg_string(args, "path", SL_ARG_NOT_EMPTY, &s, NULL, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'path' must be a non-empty string, got ''");
    CHECK_INT(sl_value_set(args, "path", sl_value_string("a\0b", 3)), 0);
    CHECK_INT(H.arg_string(args, "path", 0, &s, NULL, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'path' must be a string without NUL bytes, got one with a NUL byte");
    CHECK_INT(H.arg_string(args, "path", SL_ARG_BYTES, &s, &len, err, sizeof(err)), 0);
    CHECK(len == 3 && memcmp(s, "a\0b", 4) == 0);
    H.free(s);
    /* A long string is quoted in part, never splitting a UTF-8 sequence. */
    char long_text[100];
    memset(long_text, 'x', sizeof(long_text));
    memcpy(long_text + 39, "é", 2); /* bytes 39 and 40: a cut at 40 would split it */
    CHECK_INT(sl_value_set(args, "path", sl_value_string(long_text, sizeof(long_text))), 0);
    CHECK_INT(H.arg_int(args, "path", 0, 0, 1, NULL, &(int64_t){0}, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'path' must be an integer, got '"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…'"); /* 39 bytes */
    sl_value_free(args);
}

static void test_arg_strings(void)
{
    init();
    char err[SL_ERR_SIZE], **argv = NULL;
    size_t count = 0;
    sl_value_t *list = sl_value_list();
    CHECK_INT(sl_value_push(list, sl_value_string("sh", 2)), 0);
    CHECK_INT(sl_value_push(list, sl_value_string("", 0)), 0);
    CHECK_INT(sl_value_push(list, sl_value_int(1)), 0);
    CHECK_INT(sl_value_push(list, sl_value_number(2.5)), 0);
    CHECK_INT(sl_value_push(list, sl_value_bool(0)), 0);
    sl_value_t *args = args_of("argv", list);
    uint32_t flags = SL_ARG_REQUIRED | SL_ARG_NOT_EMPTY | SL_ARG_SCALARS;
    CHECK_INT(H.arg_strings(args, "argv", flags, &argv, &count, err, sizeof(err)), 0);
    CHECK_INT(count, 5);
    CHECK_STR(argv[0], "sh");
    CHECK_STR(argv[1], "");
    CHECK_STR(argv[2], "1");
    CHECK_STR(argv[3], "2.5");
    CHECK_STR(argv[4], "false");
    CHECK(argv[5] == NULL);
    H.free(argv); /* one block */
    CHECK_INT(H.arg_strings(args, "argv", SL_ARG_REQUIRED, &argv, &count, err, sizeof(err)),
              SL_EINVAL);
    CHECK_STR(err, "'argv[3]' must be a string, got 1");
    CHECK(argv == NULL && count == 0);
    sl_value_t *with_map = sl_value_list();
    CHECK_INT(sl_value_push(with_map, sl_value_string("echo", 4)), 0);
    CHECK_INT(sl_value_push(with_map, sl_value_map()), 0);
    CHECK_INT(sl_value_set(args, "argv", with_map), 0);
    CHECK_INT(H.arg_strings(args, "argv", flags, &argv, &count, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'argv[2]' must be a string, a number or a boolean, got a map");
    CHECK_INT(sl_value_set(args, "argv", sl_value_map()), 0);
    CHECK_INT(H.arg_strings(args, "argv", flags, &argv, &count, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'argv' must be a non-empty list of strings, got a map");
    CHECK_INT(sl_value_set(args, "argv", sl_value_list()), 0);
    CHECK_INT(H.arg_strings(args, "argv", flags, &argv, &count, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "'argv' must be a non-empty list of strings, got an empty list");
    CHECK_INT(H.arg_strings(args, "argv", 0, &argv, &count, err, sizeof(err)), 0);
    CHECK(argv != NULL && argv[0] == NULL && count == 0);
    H.free(argv);
    CHECK_INT(H.arg_strings(args, "env", 0, &argv, &count, err, sizeof(err)), 0); /* absent */
    CHECK(argv == NULL && count == 0);
    sl_value_free(args);
}

/* The copies fail cleanly when memory runs out, at every allocation. */
static void test_arg_allocation_failures(void)
{
    init();
    char err[SL_ERR_SIZE], *s = (char *)1, **argv = (char **)1;
    size_t count = 1;
    sl_value_t *list = sl_value_list();
    CHECK_INT(sl_value_push(list, sl_value_string("a", 1)), 0);
    sl_value_t *args = args_of("argv", list);
    CHECK_INT(sl_value_set(args, "path", sl_value_string("p", 1)), 0);
    sl__alloc_fail_at(1);
    CHECK_INT(H.arg_string(args, "path", 0, &s, NULL, err, sizeof(err)), SL_ENOMEM);
    CHECK_STR(err, "out of memory");
    CHECK(s == NULL);
    sl__alloc_fail_at(1);
    CHECK_INT(H.arg_strings(args, "argv", 0, &argv, &count, err, sizeof(err)), SL_ENOMEM);
    CHECK_STR(err, "out of memory");
    CHECK(argv == NULL && count == 0);
    sl__alloc_fail_at(0);
    sl_value_free(args);
}

/* ---- the file functions ---------------------------------------------------------------- */

static char folder[64];

/* A fresh folder to work in (the test process is forked: chdir stays within it). */
static void enter_temp_folder(void)
{
    snprintf(folder, sizeof(folder), "/tmp/sluice-test-abi.XXXXXX");
    CHECK(mkdtemp(folder) != NULL);
    CHECK_INT(chdir(folder), 0);
}

static void leave_temp_folder(void)
{
    CHECK_INT(chdir("/"), 0);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", folder);
    CHECK_INT(system(command), 0);
}

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

static void test_file_write_read(void)
{
    init();
    enter_temp_folder();
    char err[SL_ERR_SIZE], *data = NULL;
    size_t len = 0;
    CHECK_INT(H.file_write(NULL, "a/b/c.txt", "hello\n", 6, 0, NULL, err, sizeof(err)), 0);
    CHECK_INT(H.file_write(NULL, "a/b/c.txt", "more\n", 5, SL_FILE_APPEND, NULL, err, sizeof(err)),
              0);
    CHECK_INT(H.file_read(NULL, "a/b/c.txt", 11, &data, &len, err, sizeof(err)), 0);
    CHECK_INT(len, 11);
    CHECK_STR(data, "hello\nmore\n"); /* NUL-terminated */
    H.free(data);
    CHECK_INT(entries_in("a/b"), 1); /* no temporary file left */
    CHECK_INT(H.file_read(NULL, "a/b/c.txt", 10, &data, &len, err, sizeof(err)), SL_ELIMIT);
    CHECK_STR(err, "cannot read 'a/b/c.txt': file is larger than max_bytes (10 bytes)");
    CHECK(data == NULL && len == 0);
    CHECK_INT(H.file_read(NULL, "nope.txt", 10, &data, &len, err, sizeof(err)), SL_ENOENT);
    CHECK_STR(err, "cannot read 'nope.txt': No such file or directory");
    CHECK_INT(H.file_read(NULL, "a", 10, &data, &len, err, sizeof(err)), SL_EIO);
    CHECK_STR(err, "cannot read 'a': Is a directory");
    CHECK_INT(H.file_read(NULL, "a/b/c.txt", -1, &data, &len, err, sizeof(err)), SL_EINVAL);
    CHECK_INT(mkfifo("fifo", 0600), 0);
    CHECK_INT(H.file_read(NULL, "fifo", 10, &data, &len, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "cannot read 'fifo': not a regular file (a FIFO, device or socket)");
    CHECK_INT(H.file_write(NULL, "a/b/c.txt/x", "x", 1, 0, NULL, err, sizeof(err)), SL_EIO);
    CHECK_STR(err, "cannot write 'a/b/c.txt/x': 'a/b/c.txt' is not a folder");
    CHECK_INT(H.file_write(NULL, "out/", "x", 1, 0, NULL, err, sizeof(err)), SL_EINVAL);
    CHECK_STR(err, "cannot write 'out/': the path names a folder");
    CHECK_INT(H.file_write(NULL, "a/b", "x", 1, 0, NULL, err, sizeof(err)), SL_EIO);
    CHECK_STR(err, "cannot write 'a/b': Is a directory");
    CHECK_INT(H.file_write(NULL, "x", "x", 1, 0x80, NULL, err, sizeof(err)), SL_EINVAL);
    leave_temp_folder();
}

static void test_file_write_canceled(void)
{
    init();
    enter_temp_folder();
    char err[SL_ERR_SIZE];
    CHECK_INT(H.file_write(NULL, "t.txt", "old", 3, 0, NULL, err, sizeof(err)), 0);
    sl_cancel_flag_t canceled;
    atomic_init(&canceled, true);
    CHECK_INT(H.file_write(NULL, "new/t.txt", "x", 1, 0, &canceled, err, sizeof(err)),
              SL_ECANCELED);
    CHECK_INT(H.file_write(NULL, "t.txt", "new", 3, 0, &canceled, err, sizeof(err)),
              SL_ECANCELED);
    CHECK_CONTAINS(err, "cannot write 't.txt': ");
    char *data = NULL;
    size_t len = 0;
    CHECK_INT(H.file_read(NULL, "t.txt", 100, &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "old"); /* the target is as it was */
    H.free(data);
    CHECK_INT(entries_in("."), 1); /* no temporary file, no folder `new` */
    leave_temp_folder();
}

/* A message longer than the buffer keeps its cause: the path is shortened. */
static void test_file_message_fits(void)
{
    init();
    enter_temp_folder();
    char path[2001], err[200];
    memset(path, 'd', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    CHECK_INT(H.file_read(NULL, path, 10, &(char *){NULL}, &(size_t){0}, err, sizeof(err)),
              SL_EIO);
    CHECK_INT(strlen(err), sizeof(err) - 1);
    CHECK_CONTAINS(err, "cannot read 'dddd");
    CHECK_CONTAINS(err, "…': File name too long");
    char tiny[8];
    CHECK_INT(H.file_read(NULL, "nope", 10, &(char *){NULL}, &(size_t){0}, tiny, sizeof(tiny)),
              SL_ENOENT);
    CHECK_STR(tiny, "cannot "); /* cut as snprintf cuts */
    leave_temp_folder();
}

/* Every allocation of a write or a read may fail: SL_ENOMEM with file.write's message, and
 * nothing left behind (no temporary file, no folder the write made). */
static void test_file_allocation_failures(void)
{
    init();
    enter_temp_folder();
    char err[SL_ERR_SIZE], big[10000];
    memset(big, 'b', sizeof(big));
    int failures = 0, rc = -1;
    for (uint64_t n = 1; rc != 0 && n < 100; n++) {
        sl__alloc_fail_at(n);
        rc = H.file_write(NULL, "new/dir/f.txt", big, sizeof(big), 0, NULL, err, sizeof(err));
        sl__alloc_fail_at(0);
        if (rc != 0) {
            failures++;
            CHECK_INT(rc, SL_ENOMEM);
            CHECK_STR(err, "cannot write 'new/dir/f.txt': Cannot allocate memory");
            CHECK_INT(entries_in("."), 0);
        }
    }
    CHECK_INT(rc, 0);
    CHECK(failures >= 2); /* the folder's name, the temporary file's */
    failures = 0;
    rc = -1;
    for (uint64_t n = 1; rc != 0 && n < 100; n++) {
        char *data = NULL;
        size_t len = 0;
        sl__alloc_fail_at(n);
        rc = H.file_read(NULL, "new/dir/f.txt", 1 << 20, &data, &len, err, sizeof(err));
        sl__alloc_fail_at(0);
        if (rc != 0) {
            failures++;
            CHECK_INT(rc, SL_ENOMEM);
            CHECK_STR(err, "cannot read 'new/dir/f.txt': Cannot allocate memory");
            CHECK(data == NULL);
        } else {
            CHECK(len == sizeof(big) && memcmp(data, big, len) == 0 && data[len] == '\0');
            H.free(data);
        }
    }
    CHECK_INT(rc, 0);
    CHECK(failures >= 1);
    leave_temp_folder();
}

TEST_MAIN(30, T(test_arg_int), T(test_arg_int_no_integer_value), T(test_arg_int_default_and_hint),
          T(test_arg_duration), T(test_arg_string), T(test_arg_strings),
          T(test_arg_allocation_failures), T(test_file_write_read), T(test_file_write_canceled),
          T(test_file_message_fits), T(test_file_allocation_failures))
