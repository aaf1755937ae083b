/* Data paths confined beneath the working directory and limits.fs.allow (see confine.h). */
#define _GNU_SOURCE /* O_PATH */
#include "confine.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LINKS_MAX 40       /* symbolic links followed in one resolution, as the kernel */
#define WALK_DEPTH_MAX 256 /* folders held open by the walk */
#define EAGAIN_TRIES 16    /* openat2 asks to retry when a rename raced the lookup */

typedef struct root {
    int fd;      /* O_PATH | O_DIRECTORY */
    char *real;  /* its path with symbolic links resolved */
    char *given; /* its absolute path as written, lexically folded */
} root_t;

struct sl_confine {
    size_t count; /* roots[0] is the working directory */
    root_t roots[];
};

void (*sl__confine_walk_hook)(const char *component);
static atomic_int walk_forced; /* 0: decide, 1: walk, -1: openat2 */

void sl__confine_force_walk(bool on)
{
    atomic_store(&walk_forced, on ? 1 : -1);
}

/* ---- lexical paths ---------------------------------------------------------------------- */

/* `path` (absolute) with "//", "." and ".." folded; sl__malloc'd or NULL. */
static char *fold(const char *path)
{
    size_t len = strlen(path);
    char *out = sl__malloc(len + 2);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (used > 0 && out[used - 1] != '/')
                used--;
            if (used > 0)
                used--;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            out[used++] = '/';
            memcpy(out + used, p, n);
            used += n;
        }
        p = end;
    }
    if (used == 0)
        out[used++] = '/';
    out[used] = '\0';
    return out;
}

/* `path` made absolute against `cwd` and folded; sl__malloc'd or NULL. */
static char *absolute(const char *cwd, const char *path)
{
    if (path[0] == '/')
        return fold(path);
    char *joined = sl__asprintf("%s/%s", cwd, path);
    char *out = joined ? fold(joined) : NULL;
    sl__free(joined);
    return out;
}

/* The rest of folded `path` beneath folded `root` ("" for the root itself), or NULL. */
static const char *rest_beneath(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return path + 1;
    if (strncmp(path, root, n) != 0 || (path[n] != '/' && path[n] != '\0'))
        return NULL;
    return path[n] == '/' ? path + n + 1 : path + n;
}

bool sl__confine_lexically_inside(const char *cwd, const char *const *allow, size_t allow_count,
                                  const char *path)
{
    char *abs = absolute(cwd, path), *root = fold(cwd);
    bool inside = abs == NULL || root == NULL || rest_beneath(abs, root) != NULL;
    sl__free(root);
    for (size_t i = 0; !inside && i < allow_count; i++) {
        root = absolute(cwd, allow[i]);
        inside = root == NULL || rest_beneath(abs, root) != NULL;
        sl__free(root);
    }
    sl__free(abs);
    return inside; /* out of memory: not the loader's business, the run decides */
}

void sl__confine_outside_message(const char *path, char *err, size_t err_size)
{
    static const char tail[] = "' is outside the working directory (add a folder to "
                               "limits.fs.allow to permit it)";
    if (err == NULL || err_size == 0)
        return;
    size_t len = strlen(path), room = err_size - 1, fixed = strlen("path '") + strlen(tail);
    if (fixed + len <= room) {
        snprintf(err, err_size, "path '%s%s", path, tail);
        return;
    }
    size_t keep = room > fixed + 3 ? room - fixed - 3 : 0; /* "…" is 3 bytes */
    while (keep > 0 && ((unsigned char)path[keep] & 0xc0) == 0x80)
        keep--;
    snprintf(err, err_size, "path '%.*s\xe2\x80\xa6%s", (int)keep, path, tail);
}

/* ---- resolving beneath one folder ---------------------------------------------------- */

static bool use_walk(void)
{
    static atomic_int probed; /* 0: not yet, 1: openat2 works, -1: it does not */
    int forced = atomic_load(&walk_forced);
    if (forced != 0)
        return forced > 0;
    const char *env = getenv("SLUICE_TEST_NO_OPENAT2");
    if (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0)
        return true;
    int state = atomic_load(&probed);
    if (state == 0) {
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));
        state = fd >= 0 ? 1 : -1; /* ENOSYS, or a seccomp filter's EPERM */
        if (fd >= 0)
            close((int)fd);
        atomic_store(&probed, state);
    }
    return state < 0;
}

/* Whether `name` in `dir` is a symbolic link: its target into buf (NUL-ended). */
static bool read_link(int dir, const char *name, char *buf, size_t size)
{
    ssize_t n = readlinkat(dir, name, buf, size - 1);
    if (n < 0 || (size_t)n >= size - 1)
        return false;
    buf[n] = '\0';
    return true;
}

typedef struct walk {
    int stack[WALK_DEPTH_MAX]; /* stack[0] is the root's descriptor (not ours) */
    size_t depth;
    char rest[PATH_MAX * 2]; /* what is left to resolve */
    int links;
} walk_t;

static void walk_pop_all(walk_t *w)
{
    while (w->depth > 0)
        close(w->stack[w->depth--]);
}

/* Replaces the component just read with the link's target, in front of `after`. */
static int expand_link(walk_t *w, const char *target, const char *after)
{
    if (target[0] == '/')
        return -SL_CONFINE_OUTSIDE; /* as RESOLVE_BENEATH: an absolute link leaves */
    if (++w->links > LINKS_MAX)
        return -ELOOP;
    char next[sizeof(w->rest)];
    int n = snprintf(next, sizeof(next), "%s%s%s", target, *after ? "/" : "", after);
    if (n < 0 || (size_t)n >= sizeof(next))
        return -ENAMETOOLONG;
    memcpy(w->rest, next, (size_t)n + 1);
    return 0;
}

/* One component of the walk; 1 when a link was expanded, 0 when it moved on, or -errno.
 * On the last component *fd_out gets the final descriptor. */
static int walk_step(walk_t *w, const char *name, const char *after, int flags, mode_t mode,
                     int *fd_out)
{
    int top = w->stack[w->depth];
    bool last = *after == '\0';
    if (sl__confine_walk_hook)
        sl__confine_walk_hook(name);
    int fd = last ? openat(top, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)
                  : openat(top, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int error = errno;
        char target[PATH_MAX];
        if ((error == ELOOP || error == ENOTDIR || error == EEXIST) &&
            read_link(top, name, target, sizeof(target))) {
            int rc = expand_link(w, target, after);
            return rc < 0 ? rc : 1;
        }
        return -error;
    }
    if (last) {
        *fd_out = fd;
        return 0;
    }
    if (w->depth + 1 >= WALK_DEPTH_MAX) {
        close(fd);
        return -ENAMETOOLONG;
    }
    w->stack[++w->depth] = fd;
    return 0;
}

/* openat2's RESOLVE_BENEATH by hand: components opened one by one with O_NOFOLLOW. */
static int walk_open(int root, const char *rel, int flags, mode_t mode)
{
    walk_t *w = sl__malloc(sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->stack[0] = root;
    w->depth = 0;
    w->links = 0;
    int n = snprintf(w->rest, sizeof(w->rest), "%s", rel);
    int rc = n < 0 || (size_t)n >= sizeof(w->rest) ? -ENAMETOOLONG : 0, fd = -1;
    while (rc >= 0 && fd < 0) {
        char *p = w->rest;
        while (*p == '/')
            p++;
        char *end = strchrnul(p, '/');
        char *after = end;
        while (*after == '/')
            after++;
        char name[NAME_MAX + 1];
        size_t len = (size_t)(end - p);
        if (len > NAME_MAX) {
            rc = -ENAMETOOLONG;
            break;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        memmove(w->rest, after, strlen(after) + 1);
        bool last = w->rest[0] == '\0';
        if (len == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            if (strcmp(name, "..") == 0) {
                if (w->depth == 0) {
                    rc = -SL_CONFINE_OUTSIDE;
                    break;
                }
                close(w->stack[w->depth--]);
            }
            if (last && (fd = openat(w->stack[w->depth], ".", flags | O_CLOEXEC, mode)) < 0)
                rc = -errno;
            continue;
        }
        char after_copy[sizeof(w->rest)];
        memcpy(after_copy, w->rest, strlen(w->rest) + 1);
        rc = walk_step(w, name, after_copy, flags, mode, &fd);
    }
    walk_pop_all(w);
    sl__free(w);
    return rc < 0 ? rc : fd;
}

/* Opens `rel` beneath the folder `root`: the descriptor or -errno. */
static int beneath_open(int root, const char *rel, int flags, mode_t mode)
{
    if (*rel == '\0')
        rel = ".";
    if (use_walk())
        return walk_open(root, rel, flags, mode);
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    for (int attempt = 0; attempt < EAGAIN_TRIES; attempt++) {
        long fd = syscall(SYS_openat2, root, rel, &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
    }
    return -EAGAIN;
}

/* ---- root sets --------------------------------------------------------------------------- */

static int add_root(sl_confine_t *c, const char *cwd, const char *given)
{
    root_t *r = &c->roots[c->count];
    r->fd = open(given, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->fd < 0)
        return -errno;
    char *real = realpath(given, NULL);
    r->real = real ? fold(real) : NULL;
    free(real);
    r->given = absolute(cwd, given);
    c->count++;
    return r->real && r->given ? 0 : -ENOMEM;
}

int sl__confine_new(const char *const *allow, size_t allow_count, sl_confine_t **out, char *err,
                    size_t err_size)
{
    *out = NULL;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        snprintf(err, err_size, "cannot open the working directory: %s", strerror(errno));
        return SL_EIO;
    }
    sl_confine_t *c = sl__calloc(1, sizeof(*c) + (allow_count + 1) * sizeof(root_t));
    if (c == NULL)
        return SL_ENOMEM;
    int rc = add_root(c, cwd, cwd);
    if (rc < 0)
        snprintf(err, err_size, "cannot open the working directory: %s", strerror(-rc));
    for (size_t i = 0; rc == 0 && i < allow_count; i++) {
        rc = add_root(c, cwd, allow[i]);
        if (rc < 0 && rc != -ENOMEM)
            snprintf(err, err_size, "cannot open folder '%s' of limits.fs.allow: %s", allow[i],
                     strerror(-rc));
    }
    if (rc < 0) {
        sl__confine_free(c);
        return rc == -ENOMEM ? SL_ENOMEM : rc == -ENOENT ? SL_ENOENT : SL_EIO;
    }
    *out = c;
    return 0;
}

void sl__confine_free(sl_confine_t *roots)
{
    if (roots == NULL)
        return;
    for (size_t i = 0; i < roots->count; i++) {
        close(roots->roots[i].fd);
        sl__free(roots->roots[i].real);
        sl__free(roots->roots[i].given);
    }
    sl__free(roots);
}

static sl_confine_t *_Atomic default_roots;
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;

/* The default set, made on first use: 0, or -ENOMEM / -EIO (tried again next time). */
static int default_get(const sl_confine_t **out)
{
    sl_confine_t *roots = atomic_load(&default_roots);
    int rc = 0;
    if (roots == NULL) {
        pthread_mutex_lock(&default_lock);
        if ((roots = atomic_load(&default_roots)) == NULL) {
            char err[256];
            rc = sl__confine_new(NULL, 0, &roots, err, sizeof(err));
            if (rc == 0)
                atomic_store(&default_roots, roots);
        }
        pthread_mutex_unlock(&default_lock);
    }
    *out = roots;
    return rc == 0 ? 0 : rc == SL_ENOMEM ? -ENOMEM : -EIO;
}

const sl_confine_t *sl__confine_default(void)
{
    const sl_confine_t *roots;
    return default_get(&roots) == 0 ? roots : NULL;
}

/* ---- folders of paths ---------------------------------------------------------------------- */

/* The folder `name` is missing from `parent`: make it when allowed, noting it for
 * sl__confine_unmake (the note is made first, so a folder is never made unnoted). */
static int make_one(int parent, const char *name, bool make_dirs, sl_confine_dir_t *out)
{
    if (!make_dirs || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
        return -ENOENT;
    if (out->made_count == SL_CONFINE_MADE_MAX)
        return -ENAMETOOLONG;
    char *copy = sl__strdup(name);
    int fd = copy ? dup(parent) : -1, rc = copy == NULL ? -ENOMEM : fd < 0 ? -errno : 0;
    if (rc == 0 && mkdirat(parent, name, 0777) != 0)
        rc = errno == EEXIST ? 1 : -errno; /* made meanwhile by someone else: not ours */
    if (rc != 0) {
        sl__free(copy);
        if (fd >= 0)
            close(fd);
        return rc > 0 ? 0 : rc;
    }
    out->made_parent[out->made_count] = fd;
    out->made_name[out->made_count++] = copy;
    return 0;
}

/*
 * The folders of `rel` one prefix at a time, each resolved beneath `root` in one step,
 * making the missing ones in their (already resolved) parent. `offset` places rel in the
 * caller's path for folder_len (SIZE_MAX: unknown).
 */
static int walk_folders(int root, const char *rel, bool make_dirs, size_t offset,
                        sl_confine_dir_t *out)
{
    char *buf = sl__strdup(rel);
    int parent = buf ? beneath_open(root, "", O_PATH | O_DIRECTORY, 0) : -ENOMEM;
    int rc = parent < 0 ? parent : 0;
    for (char *p = buf; rc == 0 && p && *p;) {
        while (*p == '/')
            p++;
        char *end = strchrnul(p, '/'), saved = *end;
        if (end == p)
            break;
        *end = '\0';
        int fd = beneath_open(root, buf, O_PATH | O_DIRECTORY, 0);
        if (fd == -ENOENT && (rc = make_one(parent, p, make_dirs, out)) == 0)
            fd = beneath_open(root, buf, O_PATH | O_DIRECTORY, 0);
        if (rc == 0 && fd < 0)
            rc = fd;
        if (rc < 0) {
            if (rc != -ENOMEM)
                out->folder_len = offset == SIZE_MAX ? 0 : offset + (size_t)(end - buf);
            break;
        }
        close(parent);
        parent = fd;
        *end = saved;
        p = end;
    }
    sl__free(buf);
    if (rc < 0 && parent >= 0)
        close(parent);
    if (rc == 0)
        out->fd = parent;
    return rc;
}

/* The folder `rel` beneath `root`: one openat2 when it exists, else the walk. */
static int folder_beneath(int root, const char *rel, bool make_dirs, size_t offset,
                          sl_confine_dir_t *out)
{
    int fd = beneath_open(root, rel, O_PATH | O_DIRECTORY, 0);
    if (fd >= 0) {
        out->fd = fd;
        return 0;
    }
    if (fd != -ENOENT && fd != -ENOTDIR)
        return fd;
    return walk_folders(root, rel, make_dirs, offset, out);
}

/* Removes the folders `dir` made after its first `keep`, newest first. */
static void unmake_to(sl_confine_dir_t *dir, size_t keep)
{
    while (dir->made_count > keep) {
        size_t i = --dir->made_count;
        unlinkat(dir->made_parent[i], dir->made_name[i], AT_REMOVEDIR);
        close(dir->made_parent[i]);
        sl__free(dir->made_name[i]);
    }
}

/* The folder `dir` beneath the root it lies beneath: the working directory first for a
 * relative one, then every root its absolute form is beneath. */
static int open_folder(const sl_confine_t *c, const char *dir, bool make_dirs,
                       sl_confine_dir_t *out)
{
    int rc = -SL_CONFINE_OUTSIDE;
    size_t made = out->made_count;
    if (dir[0] != '/') {
        rc = folder_beneath(c->roots[0].fd, dir, make_dirs, 0, out);
        if (rc != -SL_CONFINE_OUTSIDE || c->count == 1)
            return rc;
    }
    char *abs = absolute(c->roots[0].real, dir);
    if (abs == NULL)
        return -ENOMEM;
    for (size_t i = dir[0] == '/' ? 0 : 1; rc == -SL_CONFINE_OUTSIDE && i < c->count; i++) {
        const char *forms[] = {c->roots[i].real, c->roots[i].given};
        for (size_t f = 0; f < 2 && rc == -SL_CONFINE_OUTSIDE; f++) {
            unmake_to(out, made); /* what an attempt beneath another root made */
            const char *rest = rest_beneath(abs, forms[f]);
            if (rest == NULL)
                continue;
            size_t offset = strcmp(abs, dir) == 0 ? (size_t)(rest - abs) : SIZE_MAX;
            rc = folder_beneath(c->roots[i].fd, rest, make_dirs, offset, out);
        }
    }
    sl__free(abs);
    return rc;
}

/* Splits `path` into a folder (sl__malloc'd; "." for none) and its last component. */
static int split(const char *path, char **dir, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    size_t len = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    *dir = sl__malloc(len + 1);
    if (*dir == NULL)
        return -ENOMEM;
    memcpy(*dir, slash == NULL ? "." : path, len);
    (*dir)[len] = '\0';
    if (**base == '\0' || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
        return -EISDIR;
    return 0;
}

/* The next path when `base` in `dir` is a symbolic link to `target`. */
static char *link_path(const char *dir, const char *target)
{
    return target[0] == '/' ? sl__strdup(target) : sl__asprintf("%s/%s", dir, target);
}

int sl__confine_dir(const sl_confine_t *roots, const char *path, bool make_dirs,
                    sl_confine_dir_t *out)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    int rc = roots == NULL ? default_get(&roots) : 0;
    if (rc < 0)
        return rc;
    char *cur = sl__strdup(path), *dir = NULL, target[PATH_MAX];
    rc = cur ? 0 : -ENOMEM;
    for (int links = 0; rc == 0; links++) {
        const char *base;
        sl__free(dir);
        dir = NULL;
        if ((rc = split(cur, &dir, &base)) < 0 ||
            (rc = open_folder(roots, dir, make_dirs, out)) < 0)
            break;
        if (!read_link(out->fd, base, target, sizeof(target))) {
            out->name = sl__strdup(base);
            out->dir_path = dir;
            dir = NULL;
            rc = out->name ? 0 : -ENOMEM;
            break;
        }
        close(out->fd);
        out->fd = -1;
        char *next = links < LINKS_MAX ? link_path(dir, target) : NULL;
        rc = next ? 0 : links < LINKS_MAX ? -ENOMEM : -ELOOP;
        sl__free(cur);
        cur = next;
        out->folder_len = 0; /* a folder reached through a link is not a prefix of path */
    }
    sl__free(cur);
    sl__free(dir);
    if (rc < 0)
        sl__confine_unmake(out);
    return rc;
}

void sl__confine_unmake(sl_confine_dir_t *dir)
{
    unmake_to(dir, 0);
}

void sl__confine_dir_close(sl_confine_dir_t *dir)
{
    for (size_t i = 0; i < dir->made_count; i++) {
        close(dir->made_parent[i]);
        sl__free(dir->made_name[i]);
    }
    dir->made_count = 0;
    if (dir->fd >= 0)
        close(dir->fd);
    dir->fd = -1;
    sl__free(dir->name);
    sl__free(dir->dir_path);
    dir->name = dir->dir_path = NULL;
}

int sl__confine_open(const sl_confine_t *roots, const char *path, int flags)
{
    sl_confine_dir_t dir;
    int rc = sl__confine_dir(roots, path, false, &dir);
    if (rc == 0) {
        rc = openat(dir.fd, dir.name, flags | O_NOFOLLOW | O_CLOEXEC);
        if (rc < 0)
            rc = -errno;
    }
    sl__confine_dir_close(&dir);
    return rc;
}
