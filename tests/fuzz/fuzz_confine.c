/*
 * Path confinement (util/confine.c), as hostile data drives it: each input builds a small
 * tree of folders and symbolic links (to `..`, `.`, `/`, absolute paths inside and outside,
 * chains of links) in a scratch root, then resolves paths made of `..`, `.`, `//` and those
 * names, with openat2 or with the O_NOFOLLOW walk (a bit of the input picks), opening and
 * making folders. Every descriptor handed out must lie beneath the root (checked through
 * /proc/self/fd), and nothing may appear in the folder beside it.
 *
 * The scratch folders are made under /tmp on the first input and removed at exit; the
 * working directory is the root only while an input runs. Give libFuzzer an
 * -artifact_prefix (a crash file is written where the working directory is then).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/confine.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[64], root[PATH_MAX], outside[PATH_MAX];
static int home_fd = -1;

/* Removes everything in the folder `dir` (descriptor; real folders only: links are
 * removed, never followed). */
static void empty_folder(int dir)
{
    DIR *d = fdopendir(dup(dir));
    if (d == NULL)
        abort();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dir, e->d_name, 0) == 0)
            continue;
        int sub = openat(dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            empty_folder(sub);
            close(sub);
        }
        unlinkat(dir, e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

static void remove_scratch(void)
{
    int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        empty_folder(fd);
        close(fd);
    }
    rmdir(top);
}

static void setup_once(void)
{
    if (home_fd >= 0)
        return;
    home_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    snprintf(top, sizeof(top), "/tmp/sluice-fuzz-confine.XXXXXX");
    if (home_fd < 0 || mkdtemp(top) == NULL)
        abort();
    char *real = realpath(top, NULL);
    snprintf(root, sizeof(root), "%s/root", real);
    snprintf(outside, sizeof(outside), "%s/outside", real);
    free(real);
    if (mkdir(root, 0777) != 0 || mkdir(outside, 0777) != 0)
        abort();
    atexit(remove_scratch);
}

/* The names paths and link targets are made of. */
static const char *piece(uint8_t byte)
{
    static const char *const pieces[] = {"a",  "b",       "c",   "s",         "t",     "u",
                                         "..", ".",       "",    "f",         "../..", "x",
                                         "/",  "outside", "a/b", "../outside"};
    return pieces[byte % 16];
}

/* A path of up to 6 pieces, joined with "/" (or "//"); a few start absolute. */
static size_t make_path(const uint8_t *data, size_t size, char *out, size_t out_size)
{
    size_t used = 0, n = size ? 1 + data[0] % 6 : 0, i = 1;
    out[0] = '\0';
    if (size && data[0] >= 0xf0)
        used = (size_t)snprintf(out, out_size, "%s/", data[0] & 1 ? root : outside);
    else if (size && data[0] >= 0xe8)
        used = (size_t)snprintf(out, out_size, "/etc/");
    for (; i <= n && i < size && used < out_size; i++)
        used += (size_t)snprintf(out + used, out_size - used, "%s%s", piece(data[i]),
                                 i == n           ? ""
                                 : data[i] & 0x80 ? "//"
                                                  : "/");
    return i;
}

/* Folders a, a/b, c (the real ones: links are only ever put in them, so building the
 * tree never goes through a link), a file, then links from the input. */
static size_t build_tree(const uint8_t *data, size_t size)
{
    static const char *const where[] = {".", "a", "a/b", "c"};
    static const char *const names[] = {"s", "t", "u", "f"};
    if (mkdir("a", 0777) || mkdir("a/b", 0777) || mkdir("c", 0777))
        abort();
    int fd = open("a/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    size_t at = 0, links = size ? data[at++] % 7 : 0;
    for (size_t l = 0; l < links && at + 1 < size; l++) {
        char target[PATH_MAX], link[32];
        uint8_t spot = data[at++];
        at += make_path(data + at, size - at, target, sizeof(target));
        snprintf(link, sizeof(link), "%s/%s", where[spot % 4], names[(spot >> 2) % 4]);
        if (target[0] != '\0')
            symlinkat(target, AT_FDCWD, link); /* a name already taken stays as it was */
    }
    return at;
}

static bool beneath(int fd, const char *folder)
{
    char proc[64], target[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    size_t len = strlen(folder);
    return strncmp(target, folder, len) == 0 && (target[len] == '/' || target[len] == '\0');
}

static bool outside_untouched(void)
{
    DIR *d = opendir(outside);
    size_t entries = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return entries == 1; /* its one file, "secret" */
}

static void resolve_paths(const sl_confine_t *roots, const uint8_t *data, size_t size)
{
    for (size_t at = 0, count = 0; at < size && count < 8; count++) {
        char path[PATH_MAX];
        bool make = data[at] & 0x40;
        at += make_path(data + at, size - at, path, sizeof(path));
        int fd = sl__confine_open(roots, path, O_RDONLY | O_NONBLOCK);
        if (fd >= 0 && !beneath(fd, root))
            abort(); /* opened outside the root */
        if (fd >= 0)
            close(fd);
        sl_confine_dir_t dir;
        if (sl__confine_dir(roots, path, make, &dir) == 0 && !beneath(dir.fd, root))
            abort(); /* a folder outside the root */
        if (make && (data[at - 1] & 1))
            sl__confine_unmake(&dir);
        sl__confine_dir_close(&dir);
        if (!outside_untouched())
            abort(); /* a folder was made outside */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    if (size == 0 || chdir(root) != 0)
        return 0;
    int root_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int secret = open(outside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0 || secret < 0)
        abort();
    empty_folder(root_fd);
    empty_folder(secret);
    int fd = openat(secret, "secret", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    sl__confine_force_walk(data[0] & 1);
    size_t at = 1 + build_tree(data + 1, size - 1);
    sl_confine_t *roots = NULL;
    char err[256];
    if (sl__confine_new(NULL, 0, &roots, err, sizeof(err)) == 0) {
        resolve_paths(roots, data + (at < size ? at : size), at < size ? size - at : 0);
        sl__confine_free(roots);
    }
    empty_folder(root_fd);
    close(root_fd);
    close(secret);
    if (fchdir(home_fd) != 0)
        abort();
    return 0;
}
