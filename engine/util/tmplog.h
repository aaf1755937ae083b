/*
 * util/tmplog: where this process keeps the names of the temporary files it makes beside
 * their targets (save_to's PATH.part-*, a write's .NAME.*.tmp), so that after a crash —
 * SIGKILL included — the next sluice to open the state folder removes what was left.
 *
 * Each process appends to its own log, DIR/parts-PID.log, which it holds locked (flock)
 * while it lives: a log whose lock is free belongs to a dead process and is swept. Any
 * thread; one log per process.
 */
#ifndef SL_UTIL_TMPLOG_H
#define SL_UTIL_TMPLOG_H

/** Starts this process's log in folder `dir` (made if missing). Returns 0 or SL_EIO. */
int sl__tmplog_open(const char *dir);
/** Notes a temporary file just made (absolute or relative to the working directory, which
 *  sluice never changes). One write(2) with O_APPEND: threads' lines never mix. */
void sl__tmplog_note(const char *path);
/** Ends this process's log (its temporary files are all renamed or removed). */
void sl__tmplog_close(void);
/**
 * Removes the temporary files listed in the logs of dead processes under `dir`, then the
 * logs. Only names that look like sluice's temporary files are removed. Returns how many.
 */
int sl__tmplog_sweep(const char *dir);

#endif
