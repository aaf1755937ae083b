/*
 * util/tmplog: where this process keeps the names of the temporary files it makes beside
 * their targets (save_to's PATH.part-*, a write's .NAME.*.tmp), so that after a crash —
 * SIGKILL included — the next sluice to open the state folder removes what was left.
 *
 * Each process appends to its own log, DIR/parts-PID.log, which it holds locked (flock)
 * while it lives: a log whose lock is free belongs to a dead process and is swept. Any
 * thread; one log per process, held by each open until its close (the first open's
 * folder is the log's).
 */
#ifndef SL_UTIL_TMPLOG_H
#define SL_UTIL_TMPLOG_H

/** Starts this process's log in folder `dir` (made if missing). Returns 0 or SL_EIO. */
int sl__tmplog_open(const char *dir);
/** Notes a temporary file just made (absolute or relative to the working directory, which
 *  sluice never changes). One write(2) with O_APPEND: threads' lines never mix. */
void sl__tmplog_note(const char *path);
/** Lets go of the log; the last holder ends it (its temporary files are all renamed or
 *  removed). */
void sl__tmplog_close(void);
/**
 * Removes the temporary files listed in the logs of dead processes under `dir`, then the
 * logs. Only names that look like sluice's temporary files are removed. Returns how many.
 */
int sl__tmplog_sweep(const char *dir);

/**
 * Temporary files carry their maker's pid (".NAME.PID.XXXXXXXX.tmp",
 * "NAME.part-PID-XXXXXX"): the first time this process writes into the folder `dir_fd`
 * (a descriptor; the folder is told apart by device and inode), removes the regular files
 * named so whose pid is not alive — what a run killed without its state folder left. Our
 * own and live processes' files are kept; at most SL_TMPLOG_SCAN_MAX entries are looked at,
 * and SL_TMPLOG_FOLDERS_MAX folders remembered. Blocking: threadpool threads. Returns how
 * many it removed.
 */
int sl__tmplog_sweep_folder(int dir_fd);
#define SL_TMPLOG_SCAN_MAX 100000
#define SL_TMPLOG_FOLDERS_MAX 4096

#endif
