/*
 * util/confine: data paths confined beneath a set of roots (SPEC §2 "Paths"): the working
 * directory and the folders of `limits.fs.allow`. A scraper's input is hostile by nature,
 * so a path computed from fetched data must not reach `~/.bashrc` through `..` or through
 * a symbolic link planted or swapped in.
 *
 * Each root is opened once as an O_PATH folder descriptor, and a path is resolved and
 * opened in one step relative to it: openat2(2) with RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS, or where the kernel lacks it (ENOSYS, or SLUICE_TEST_NO_OPENAT2
 * set in the environment, for the tests) a walk of the components with
 * openat(O_NOFOLLOW) that tracks `..` on a stack of folder descriptors and expands
 * relative symbolic links in place. Either way an absolute symbolic link inside a path's
 * folders, or a `..` above the root, is outside. The last component is opened with
 * O_NOFOLLOW on the folder's descriptor; a symbolic link there is read and its target
 * resolved the same way (an absolute target matched to the roots like a path).
 *
 * A relative path is tried beneath the working directory first; an absolute one (or a
 * relative one that leaves the working directory, made absolute lexically) is matched to
 * the root it lies beneath, and resolved relative to that root's descriptor. Whatever the
 * route, every descriptor handed out lies beneath a root when it was opened.
 *
 * A root set is immutable once made: any thread may use it. Blocking: for threadpool
 * threads (and the loader, which only looks at paths lexically).
 */
#ifndef SL_UTIL_CONFINE_H
#define SL_UTIL_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/** The errno of a path that leaves the roots (openat2's own answer for RESOLVE_BENEATH). */
#define SL_CONFINE_OUTSIDE EXDEV
/** The most folders one write creates (deeper is refused with ENAMETOOLONG). */
#define SL_CONFINE_MADE_MAX 64

typedef struct sl_confine sl_confine_t;

/** The folder a path's last component lives in, resolved beneath a root. */
typedef struct sl_confine_dir {
    int fd;            /* the folder (O_PATH), or -1 */
    char *name;        /* the last component (after symbolic links), sl__malloc'd */
    char *dir_path;    /* the folder as a path, for messages and the temporary-file log */
    size_t folder_len; /* a failed folder (ENOTDIR, mkdir): path[0, folder_len) */
    size_t made_count; /* folders made by this resolution, removable by sl__confine_unmake */
    int made_parent[SL_CONFINE_MADE_MAX];
    char *made_name[SL_CONFINE_MADE_MAX];
} sl_confine_dir_t;

/**
 * A root set: the working directory plus each of `allow` (absolute, or relative to the
 * working directory; each must be an existing folder). Returns 0 and *out; SL_ENOMEM; or
 * SL_ENOENT / SL_EIO with "cannot open folder 'X' of limits.fs.allow: CAUSE" in `err`.
 */
int sl__confine_new(const char *const *allow, size_t allow_count, sl_confine_t **out, char *err,
                    size_t err_size);
/** Frees a root set. NULL is a no-op. */
void sl__confine_free(sl_confine_t *roots);
/** The process's default root set: the working directory only (made on first use, kept for
 *  the process's life); NULL when the working directory cannot be opened. Any thread. */
const sl_confine_t *sl__confine_default(void);

/**
 * Resolves the folder of `path` beneath `roots` (NULL: the default set) into *out, making
 * missing folders with `make_dirs`. Returns 0, or a negative errno: -SL_CONFINE_OUTSIDE,
 * -EISDIR (the path names a folder: "out/", "."), -ENOTDIR and -errno of mkdir (with
 * out->folder_len), -ELOOP, -ENOMEM, ... On failure the folders it made are removed.
 * Close *out with sl__confine_dir_close in every case.
 */
int sl__confine_dir(const sl_confine_t *roots, const char *path, bool make_dirs,
                    sl_confine_dir_t *out);
/** Removes the folders the resolution made, deepest first (a write that failed). */
void sl__confine_unmake(sl_confine_dir_t *dir);
/** Closes what sl__confine_dir opened. Idempotent. */
void sl__confine_dir_close(sl_confine_dir_t *dir);

/**
 * Opens `path` beneath `roots` (NULL: the default set) with open(2)'s `flags` (O_CLOEXEC
 * and O_NOFOLLOW are added; no O_CREAT). Returns the descriptor or a negative errno
 * (-SL_CONFINE_OUTSIDE when the path leaves the roots).
 */
int sl__confine_open(const sl_confine_t *roots, const char *path, int flags);

/**
 * Lexically, without touching the file system: false when `path` certainly leaves the
 * working directory `cwd` and the folders `allow` (relative to `cwd` unless absolute) —
 * an absolute path beneath none of them, a relative one whose `..` climb above. The
 * loader's check of literal paths; symbolic links are left to the run.
 */
bool sl__confine_lexically_inside(const char *cwd, const char *const *allow, size_t allow_count,
                                  const char *path);

/**
 * "path 'P' is outside the working directory (add a folder to limits.fs.allow to permit
 * it)" into `err`, P shortened with "…" (never inside a UTF-8 sequence) when it does not
 * fit. The one message of a path that leaves the roots, at load and at run time.
 */
void sl__confine_outside_message(const char *path, char *err, size_t err_size);

/** Forces (or lets go) the openat(O_NOFOLLOW) walk instead of openat2: unit tests. */
void sl__confine_force_walk(bool on);
/** Test hook: called by the walk before each component is opened (NULL: none). */
extern void (*sl__confine_walk_hook)(const char *component);

#endif
