/* The temporary-file log of a process, and the sweep of dead processes' logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmplog.h"
#include "util.h"

#define LOG_LINE_MAX 4096

static int log_fd = -1;
static char log_path[LOG_LINE_MAX];

int sl__tmplog_open(const char *dir)
{
    if (log_fd >= 0)
        return 0;
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
    if (log_fd < 0)
        return;
    unlink(log_path);
    close(log_fd);
    log_fd = -1;
}

/* Only what sluice names its temporary files: PATH.part-XXXXXX, DIR/.NAME.XXXXXXXX.tmp. */
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
