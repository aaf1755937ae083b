/* The temporary-file log of a process, and the sweep of dead processes' logs. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmplog.h"
#include "util.h"

#define LOG_LINE_MAX 4096

static atomic_int log_fd = -1; /* read by sl__tmplog_note without the lock */
static char log_path[LOG_LINE_MAX];
/* The log is the process's, and several stores may hold it at once (a daemon's runs each
 * open their own store, from threadpool threads): counted, and opened under a lock, so a
 * second open neither races the first (its flock would fail) nor truncates its lines. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned log_holders;

static int log_open_locked(const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return SL_EIO;
    int n = snprintf(log_path, sizeof(log_path), "%s/parts-%ld.log", dir, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(log_path))
        return SL_EIO;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return SL_EIO;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return SL_EIO;
    }
    log_fd = fd;
    return 0;
}

int sl__tmplog_open(const char *dir)
{
    pthread_mutex_lock(&log_lock);
    int rc = log_fd >= 0 ? 0 : log_open_locked(dir);
    if (rc == 0)
        log_holders++;
    pthread_mutex_unlock(&log_lock);
    return rc;
}

void sl__tmplog_note(const char *path)
{
    char line[LOG_LINE_MAX];
    int n = snprintf(line, sizeof(line), "%s\n", path);
    if (log_fd >= 0 && n > 0 && (size_t)n < sizeof(line) && strchr(path, '\n') == NULL) {
        ssize_t w = write(log_fd, line, (size_t)n);
        (void)w; /* best effort: a lost line is a leftover file, not a wrong result */
    }
}

void sl__tmplog_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0 && log_holders > 0 && --log_holders == 0) {
        unlink(log_path);
        close(log_fd);
        log_fd = -1;
    }
    pthread_mutex_unlock(&log_lock);
}

/* Only what sluice names its temporary files: PATH.part-[PID-]XXXXXX, DIR/.NAME.[PID.]XXXXXXXX.tmp. */
static bool looks_temporary(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    return strstr(base, ".part-") != NULL ||
           (base[0] == '.' && len > 4 && strcmp(base + len - 4, ".tmp") == 0);
}

static int sweep_log(const char *file)
{
    int fd = open(file, O_RDWR | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (fd >= 0)
            close(fd); /* its process lives */
        return 0;
    }
    FILE *in = fdopen(fd, "r");
    int removed = 0;
    char line[LOG_LINE_MAX];
    while (in && fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = '\0';
        struct stat st;
        if (looks_temporary(line) && lstat(line, &st) == 0 && S_ISREG(st.st_mode) &&
            unlink(line) == 0)
            removed++;
    }
    unlink(file);
    if (in)
        fclose(in);
    else
        close(fd);
    return removed;
}

int sl__tmplog_sweep(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int removed = 0;
    struct dirent *e;
    char file[LOG_LINE_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "parts-", 6) != 0 || strstr(e->d_name, ".log") == NULL)
            continue;
        int n = snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
        if (n > 0 && (size_t)n < sizeof(file) && strcmp(file, log_path) != 0)
            removed += sweep_log(file);
    }
    closedir(d);
    return removed;
}

/* ---- folders: temporary files of dead processes, by the pid in their names ------------ */

/* The pid in `text` up to `end` (decimal, 1 to 9 digits), or 0. */
static long pid_in(const char *text, const char *end)
{
    long pid = 0;
    if (end - text < 1 || end - text > 9)
        return 0;
    for (const char *p = text; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return 0;
        pid = pid * 10 + (*p - '0');
    }
    return pid;
}

/* The maker's pid of a temporary file's name, or 0 for any other name. */
static long temp_owner(const char *name)
{
    size_t len = strlen(name);
    if (name[0] == '.' && len > 15 && strcmp(name + len - 4, ".tmp") == 0) {
        const char *tag = name + len - 13; /* ".PID.XXXXXXXX.tmp": the tag's dot */
        if (*tag != '.')
            return 0;
        for (const char *p = tag + 1; p < name + len - 4; p++)
            if (!isxdigit((unsigned char)*p))
                return 0;
        const char *start = tag;
        while (start > name + 1 && start[-1] != '.')
            start--;
        return start > name + 1 ? pid_in(start, tag) : 0;
    }
    const char *part = NULL;
    for (const char *p = strstr(name, ".part-"); p; p = strstr(p + 1, ".part-"))
        part = p;
    if (part == NULL)
        return 0;
    const char *pid = part + 6, *dash = strchr(pid, '-');
    if (dash == NULL || strlen(dash + 1) != 6)
        return 0;
    for (const char *p = dash + 1; *p; p++)
        if (!isalnum((unsigned char)*p))
            return 0;
    return pid_in(pid, dash);
}

/* Whether the folder is new to this process (then remembered). */
static bool first_visit(int dir_fd)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct { dev_t dev; ino_t ino; } seen[SL_TMPLOG_FOLDERS_MAX];
    static size_t seen_count;
    struct stat st;
    if (fstat(dir_fd, &st) != 0)
        return false;
    bool fresh = true;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; fresh && i < seen_count; i++)
        fresh = !(seen[i].dev == st.st_dev && seen[i].ino == st.st_ino);
    if (fresh && seen_count == SL_TMPLOG_FOLDERS_MAX)
        fresh = false; /* bounded: past this many folders, only the state folder's sweep */
    if (fresh) {
        seen[seen_count].dev = st.st_dev;
        seen[seen_count++].ino = st.st_ino;
    }
    pthread_mutex_unlock(&lock);
    return fresh;
}

int sl__tmplog_sweep_folder(int dir_fd)
{
    if (!first_visit(dir_fd))
        return 0;
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    int removed = 0;
    long self = (long)getpid();
    struct dirent *e;
    for (size_t n = 0; n < SL_TMPLOG_SCAN_MAX && (e = readdir(d)) != NULL; n++) {
        long owner = temp_owner(e->d_name);
        struct stat st;
        if (owner <= 0 || owner == self || kill((pid_t)owner, 0) == 0 || errno != ESRCH)
            continue; /* not ours, ours, or alive (EPERM: alive, someone else's) */
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
