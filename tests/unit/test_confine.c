/*
 * util/confine.c: data paths resolved beneath their roots, with openat2 and with the
 * O_NOFOLLOW walk that stands in for it: `..`, `.`, `//`, symbolic links inside and
 * outside (relative, absolute, on a folder and on the last component), limits.fs.allow
 * folders, folders made and unmade, a folder swapped for a link between two steps of the
 * walk (its hook), the lexical check of the loader, and the message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "test.h"
#include "util/confine.h"
#include "util/util.h"

static char top[PATH_MAX]; /* holds work/ (the working directory) and outside/ */

/* top/work: the working directory; top/outside: the canary folder. */
static void make_tree(void)
{
    snprintf(top, sizeof(top), "/tmp/sluice-test-confine.XXXXXX");
    CHECK(mkdtemp(top) != NULL);
    CHECK_INT(chdir(top), 0);
    const char *dirs[] = {"work", "work/sub", "work/sub/deep", "outside", "outside/dir"};
    for (size_t i = 0; i < SL_COUNTOF(dirs); i++)
        CHECK_INT(mkdir(dirs[i], 0777), 0);
    CHECK_INT(system("echo in > work/sub/in.txt && echo secret > outside/secret"), 0);
    CHECK_INT(symlink("../outside", "work/out-link"), 0);
    CHECK_INT(symlink("/tmp", "work/abs-link"), 0);
    CHECK_INT(symlink("sub", "work/in-link"), 0);
    CHECK_INT(symlink("../outside/secret", "work/file-out"), 0);
    CHECK_INT(symlink("sub/in.txt", "work/file-in"), 0);
    CHECK_INT(symlink("deep/../../out-link", "work/sub/chain"), 0);
    CHECK_INT(chdir("work"), 0);
}

static void remove_tree(void)
{
    CHECK_INT(chdir("/"), 0);
    char command[PATH_MAX + 16];
    snprintf(command, sizeof(command), "rm -rf '%s'", top);
    CHECK_INT(system(command), 0);
}

/* Opens `path`: the descriptor's target must lie beneath `root` (checked through /proc). */
static int open_checked(const sl_confine_t *roots, const char *path, const char *const *under,
                        size_t under_count)
{
    int fd = sl__confine_open(roots, path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return fd;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    CHECK(n > 0);
    target[n > 0 ? n : 0] = '\0';
    bool inside = false;
    for (size_t i = 0; i < under_count; i++) {
        size_t len = strlen(under[i]);
        inside |= strncmp(target, under[i], len) == 0 && (target[len] == '/' || !target[len]);
    }
    if (!inside)
        fprintf(stderr, "  %s opened %s, outside\n", path, target);
    CHECK(inside);
    close(fd);
    return 0;
}

static void check_resolution(bool walk)
{
    make_tree();
    sl__confine_force_walk(walk);
    sl_confine_t *roots = NULL;
    char err[256], cwd[PATH_MAX];
    CHECK_INT(sl__confine_new(NULL, 0, &roots, err, sizeof(err)), 0);
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    const char *under[] = {cwd};
    const char *inside[] = {"sub/in.txt", "in-link/in.txt",     "sub/./..//sub/in.txt",
                            "file-in",    "sub/deep/../in.txt", "./sub//deep/../../sub/in.txt"};
    for (size_t i = 0; i < SL_COUNTOF(inside); i++)
        CHECK_INT(open_checked(roots, inside[i], under, 1), 0);
    const char *outside[] = {
        "../outside/secret", "out-link/secret",  "abs-link/hostname", "sub/../../outside/secret",
        "file-out",          "sub/chain/secret", "/etc/hostname",     "..",
        "sub/../.."};
    for (size_t i = 0; i < SL_COUNTOF(outside); i++) {
        int rc = open_checked(roots, outside[i], under, 1);
        if (rc != -SL_CONFINE_OUTSIDE && rc != -EISDIR)
            fprintf(stderr, "  %s: %d\n", outside[i], rc);
        CHECK(rc == -SL_CONFINE_OUTSIDE || (rc == -EISDIR && strstr(outside[i], "..") &&
                                            outside[i][strlen(outside[i]) - 1] == '.'));
    }
    char absolute[PATH_MAX + 64];
    snprintf(absolute, sizeof(absolute), "%s/sub/in.txt", cwd);
    CHECK_INT(open_checked(roots, absolute, under, 1), 0);
    snprintf(absolute, sizeof(absolute), "%s/../outside/secret", cwd);
    CHECK_INT(open_checked(roots, absolute, under, 1), -SL_CONFINE_OUTSIDE);
    sl__confine_free(roots);

    /* limits.fs.allow: ../outside, by its relative and its absolute names. */
    const char *allow[] = {"../outside"};
    CHECK_INT(sl__confine_new(allow, 1, &roots, err, sizeof(err)), 0);
    char outside_dir[PATH_MAX + 16];
    snprintf(outside_dir, sizeof(outside_dir), "%s/outside", top);
    const char *both[] = {cwd, outside_dir};
    CHECK_INT(open_checked(roots, "../outside/secret", both, 2), 0);
    snprintf(absolute, sizeof(absolute), "%s/outside/secret", top);
    CHECK_INT(open_checked(roots, absolute, both, 2), 0);
    CHECK_INT(open_checked(roots, "/etc/hostname", both, 2), -SL_CONFINE_OUTSIDE);
    CHECK_INT(open_checked(roots, "../outside/../work/../../x", both, 2), -SL_CONFINE_OUTSIDE);
    sl__confine_free(roots);
    const char *missing[] = {"no-such-folder"};
    CHECK_INT(sl__confine_new(missing, 1, &roots, err, sizeof(err)), SL_ENOENT);
    CHECK_STR(err, "cannot open folder 'no-such-folder' of limits.fs.allow: "
                   "No such file or directory");
    remove_tree();
}

static void test_resolution_openat2(void)
{
    check_resolution(false);
}

static void test_resolution_walk(void)
{
    check_resolution(true);
}

/* Folders made for a write are made beneath the root, and removed again on request; a path
 * that leaves the roots makes none. */
static void check_folders(bool walk)
{
    make_tree();
    sl__confine_force_walk(walk);
    sl_confine_dir_t dir;
    CHECK_INT(sl__confine_dir(NULL, "a/b/../c/d/f.txt", true, &dir), 0);
    CHECK_STR(dir.name, "f.txt");
    CHECK_INT(dir.made_count, 4); /* a, a/b, a/c, a/c/d */
    struct stat st;
    CHECK_INT(stat("a/c/d", &st), 0);
    sl__confine_unmake(&dir);
    sl__confine_dir_close(&dir);
    CHECK(stat("a", &st) != 0);
    CHECK_INT(sl__confine_dir(NULL, "out-link/new/f.txt", true, &dir), -SL_CONFINE_OUTSIDE);
    sl__confine_dir_close(&dir);
    CHECK(stat("../outside/new", &st) != 0);
    CHECK_INT(sl__confine_dir(NULL, "sub/new/../../../outside/new2/f", true, &dir),
              -SL_CONFINE_OUTSIDE);
    sl__confine_dir_close(&dir);
    CHECK(stat("../outside/new2", &st) != 0);
    CHECK(stat("sub/new", &st) != 0); /* the folder made on the way was removed */
    CHECK_INT(sl__confine_dir(NULL, "sub/in.txt/x", true, &dir), -ENOTDIR);
    CHECK_INT(dir.folder_len, strlen("sub/in.txt"));
    sl__confine_dir_close(&dir);
    CHECK_INT(sl__confine_dir(NULL, "sub/", true, &dir), -EISDIR);
    sl__confine_dir_close(&dir);
    /* A last component that is a link is followed: inside to its target, outside refused. */
    CHECK_INT(sl__confine_dir(NULL, "file-in", false, &dir), 0);
    CHECK_STR(dir.name, "in.txt");
    sl__confine_dir_close(&dir);
    CHECK_INT(sl__confine_dir(NULL, "file-out", false, &dir), -SL_CONFINE_OUTSIDE);
    sl__confine_dir_close(&dir);
    remove_tree();
}

static void test_folders_openat2(void)
{
    check_folders(false);
}

static void test_folders_walk(void)
{
    check_folders(true);
}

/* Between two steps of the walk, `victim` is swapped for a link to the outside: the next
 * step opens it with O_NOFOLLOW relative to the folder already open, so it is refused. */
static const char *swap_to;

static void swap_hook(const char *component)
{
    if (strcmp(component, "victim") != 0 || swap_to == NULL)
        return;
    CHECK_INT(rename("victim", "victim.moved"), 0);
    CHECK_INT(symlink(swap_to, "victim"), 0);
    swap_to = NULL;
}

static void test_swapped_folder(void)
{
    make_tree();
    sl__confine_force_walk(true);
    sl__confine_walk_hook = swap_hook;
    char target[PATH_MAX + 16];
    snprintf(target, sizeof(target), "%s/outside/dir", top);
    const char *targets[] = {target, "../outside/dir"};
    for (size_t i = 0; i < SL_COUNTOF(targets); i++) {
        CHECK_INT(mkdir("victim", 0777), 0);
        swap_to = targets[i];
        sl_confine_dir_t dir;
        CHECK_INT(sl__confine_dir(NULL, "victim/f.txt", true, &dir), -SL_CONFINE_OUTSIDE);
        CHECK(swap_to == NULL); /* the hook ran */
        sl__confine_dir_close(&dir);
        CHECK_INT(unlink("victim"), 0);
        CHECK_INT(rmdir("victim.moved"), 0);
    }
    sl__confine_walk_hook = NULL;
    remove_tree();
}

static void test_lexical(void)
{
    const char *allow[] = {"../shared", "/srv/exports"};
    CHECK(sl__confine_lexically_inside("/w/x", allow, 2, "out/a.txt"));
    CHECK(sl__confine_lexically_inside("/w/x", allow, 2, "out/../a.txt"));
    CHECK(!sl__confine_lexically_inside("/w/x", allow, 2, "out/../../a.txt"));
    CHECK(sl__confine_lexically_inside("/w/x", allow, 2, "../shared/a.txt"));
    CHECK(!sl__confine_lexically_inside("/w/x", allow, 2, "../sharedx/a.txt"));
    CHECK(sl__confine_lexically_inside("/w/x", allow, 2, "/w/x/out"));
    CHECK(sl__confine_lexically_inside("/w/x", allow, 2, "/srv/exports//a"));
    CHECK(!sl__confine_lexically_inside("/w/x", allow, 2, "/srv/exports/../etc"));
    CHECK(!sl__confine_lexically_inside("/w/x", NULL, 0, "/etc/hostname"));
    CHECK(!sl__confine_lexically_inside("/w/x", NULL, 0, ".."));
}

static void test_message(void)
{
    char err[256];
    sl__confine_outside_message("../x", err, sizeof(err));
    CHECK_STR(err, "path '../x' is outside the working directory (add a folder to "
                   "limits.fs.allow to permit it)");
    char small[100], path[300];
    memset(path, 'p', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    sl__confine_outside_message(path, small, sizeof(small));
    CHECK(strlen(small) < sizeof(small));
    CHECK_CONTAINS(small, "p\xe2\x80\xa6' is outside the working directory");
}

TEST_MAIN(30, T(test_resolution_openat2), T(test_resolution_walk), T(test_folders_openat2),
          T(test_folders_walk), T(test_swapped_folder), T(test_lexical), T(test_message))
