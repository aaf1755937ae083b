/* plugin/: discovery, ABI refusal, lookup, suggestions, the host table. */
#include <stdarg.h>

#include "plugin/registry.h"
#include "engine.h"
#include "test.h"

static void test_builtin_lua(void)
{
    sl_registry_t *reg = NULL;
    CHECK_INT(test_registry_new(&reg), 0);
    const sl_kind_info_t *lua = sl__registry_find(reg, "lua");
    CHECK(lua != NULL);
    CHECK_STR(lua->path, "(built-in)");
    CHECK_INT(lua->kind->exec, SL_EXEC_IO);
    CHECK(sl__registry_find(reg, "lu") == NULL);
    sl__registry_free(reg);
    sl__registry_free(NULL);
}

static void test_load_dir_sorted(void)
{
    sl_registry_t *reg = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(test_registry_new(&reg), 0);
    CHECK_INT(sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/plugins", &diag), 0);
    CHECK_INT(sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/tests/plugins", &diag), 0);
    CHECK_INT(sl__registry_load_dir(reg, "/nonexistent/folder", &diag), 0);
    CHECK_INT(diag.count, 0);
    for (size_t i = 1; i < sl__registry_count(reg); i++)
        CHECK(strcmp(sl__registry_at(reg, i - 1)->kind->name,
                     sl__registry_at(reg, i)->kind->name) < 0);
    CHECK(sl__registry_find(reg, "file.write") != NULL);
    CHECK_INT(sl__registry_find(reg, "json.parse")->kind->exec, SL_EXEC_CPU);
    CHECK_STR(sl__registry_suggest(reg, "test.noap"), "test.noop");
    CHECK_STR(sl__registry_suggest(reg, "file.wrte"), "file.write");
    CHECK(sl__registry_suggest(reg, "completely.different") == NULL);
    /* Loading the same file again changes nothing and reports nothing. */
    size_t count = sl__registry_count(reg);
    CHECK_INT(sl__registry_load_file(reg, SLUICE_BINARY_DIR "/plugins/file.so", &diag), 0);
    CHECK_INT(sl__registry_count(reg), count);
    CHECK_INT(diag.count, 0);
    sl__diag_close(&diag);
    sl__registry_free(reg);
}

static void test_refused(void)
{
    sl_registry_t *reg = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(test_registry_new(&reg), 0);
    size_t before = sl__registry_count(reg);
    const char *dir = SLUICE_BINARY_DIR "/tests/badplugins/";
    char path[512];
    snprintf(path, sizeof(path), "%swrong_abi.so", dir);
    CHECK_INT(sl__registry_load_file(reg, path, &diag), SL_EABI);
    snprintf(path, sizeof(path), "%sno_entry.so", dir);
    CHECK_INT(sl__registry_load_file(reg, path, &diag), SL_ENOTFOUND);
    snprintf(path, sizeof(path), "%snull_entry.so", dir);
    CHECK_INT(sl__registry_load_file(reg, path, &diag), SL_EINVAL);
    CHECK_INT(sl__registry_load_file(reg, "/nonexistent.so", &diag), SL_EINVAL);
    CHECK_INT(diag.count, 4);
    CHECK_CONTAINS(diag.items[0].message, "built for ABI 99.");
    CHECK_CONTAINS(diag.items[0].file, "wrong_abi.so");
    CHECK_CONTAINS(diag.items[1].message, "sl_plugin_entry_v1");
    CHECK_CONTAINS(diag.items[2].message, "no descriptor");
    CHECK_CONTAINS(diag.items[3].message, "cannot load plugin");
    CHECK_INT(sl__registry_count(reg), before);
    sl__diag_close(&diag);
    sl__registry_free(reg);
}

static void test_host_table(void)
{
    const sl_host_t *host = sl__host_table();
    CHECK_INT(host->abi_major, SL_ABI_MAJOR);
    CHECK_INT(host->struct_size, sizeof(sl_host_t));
    CHECK(SL_HOST_HAS(host, strerror));
    CHECK(SL_HOST_HAS(host, task_retry_after));
    CHECK(SL_HOST_HAS(host, arg_strings)); /* the newest member (ABI 1.2) */
    CHECK_INT(host->abi_minor, 2);
    CHECK_STR(host->strerror(SL_ETIMEDOUT), "timed out");
    sl_value_t *map = host->value_map();
    CHECK_INT(host->value_set(map, "k", host->value_string("v", 1)), 0);
    char *json = NULL;
    size_t len = 0;
    CHECK_INT(host->value_to_json(map, &json, &len), 0);
    CHECK_STR(json, "{\"k\":\"v\"}");
    host->free(json);
    host->value_free(map);
    /* A host table from an older engine: newer members read as absent. */
    sl_host_t old = *host;
    old.struct_size = offsetof(sl_host_t, value_from_json);
    CHECK(!SL_HOST_HAS(&old, value_from_json));
    CHECK(SL_HOST_HAS(&old, value_set));
    /* The engine-independent half is the same in a worker's table. */
    sl_host_t worker;
    sl__plugin_host_init(&worker);
    CHECK(worker.file_read == host->file_read && worker.arg_int == host->arg_int);
    CHECK(worker.arg_strings == host->arg_strings && worker.task_done == NULL);
}

static char logged[1024];

static void capture_log(sl_task_t *task, int level, const char *fmt, ...)
{
    CHECK(task == NULL);
    CHECK_INT(level, SL_LOG_ERROR);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logged, sizeof(logged), fmt, ap);
    va_end(ap);
}

/* A built-in plugin handed a host from before ABI 1.2 refuses to load and says why. */
static void test_refuses_old_host(void)
{
    const struct {
        const char *file, *needs;
    } plugins[] = {{"file.so", "'file_read'"},
                   {"exec.so", "'arg_int'"},
                   {"primes.so", "'arg_int'"},
                   {"bigint.so", "'arg_int'"}};
    sl_host_t old = *sl__host_table();
    old.abi_minor = 1;
    old.struct_size = offsetof(sl_host_t, file_read); /* a 1.1 table ends here */
    old.log = capture_log;
    for (size_t i = 0; i < SL_COUNTOF(plugins); i++) {
        sl_registry_t *reg = NULL;
        sl_diag_t diag;
        sl__diag_init(&diag);
        CHECK_INT(sl__registry_new(&old, &reg), 0);
        char path[512];
        snprintf(path, sizeof(path), "%s/plugins/%s", SLUICE_BINARY_DIR, plugins[i].file);
        logged[0] = '\0';
        CHECK_INT(sl__registry_load_file(reg, path, &diag), SL_EINVAL);
        CHECK_INT(diag.count, 1);
        CHECK_CONTAINS(diag.items[0].message, "no descriptor");
        CHECK_CONTAINS(logged, plugins[i].file);
        CHECK_CONTAINS(logged, "needs sluice's plugin ABI 1.2");
        CHECK_CONTAINS(logged, plugins[i].needs);
        CHECK_CONTAINS(logged, "this sluice has ABI 1.1");
        CHECK_INT(sl__registry_count(reg), 0);
        sl__diag_close(&diag);
        sl__registry_free(reg);
    }
}

TEST_MAIN(30, T(test_builtin_lua), T(test_load_dir_sorted), T(test_refused), T(test_host_table),
          T(test_refuses_old_host))
