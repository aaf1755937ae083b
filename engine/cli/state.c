/* The state store as commands use it: opening it with exit codes, preparing a resume. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "host/host.h"

int sl__cli_state_open(sl_store_mode_t mode, sl_store_t **out)
{
    *out = NULL;
    const char *dir = sl__store_default_dir();
    if (dir == NULL)
        return SL_EXIT_OK; /* SLUICE_STATE=none: nothing is kept */
    char err[1024];
    int rc = sl__store_open(dir, mode, out, err, sizeof(err));
    if (rc == 0)
        return SL_EXIT_OK;
    fprintf(stderr, "sluice: error: %s\n", err);
    return rc == SL_EINVAL || rc == SL_ENOENT ? SL_EXIT_USAGE : SL_EXIT_INTERNAL;
}

/* The changed steps, or why the file changed, for the refusal. */
static int describe_changes(sl_store_t *store, const sl_store_run_row_t *row,
                            const sl_workflow_t *wf, bool force)
{
    sl_buf_t changes;
    sl__buf_init(&changes, 64 * 1024);
    char err[1024];
    int rc = sl__host_resume_changes(store, row->seq, wf, &changes, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sluice: error: %s\n", err);
        sl__buf_close(&changes);
        return SL_EXIT_INTERNAL;
    }
    const char *what = changes.len ? changes.data : "its text changed, no step's definition did";
    if (force)
        fprintf(stderr, "sluice: warning: %s changed since run %s (%s): --force, so changed "
                "steps and those after them run again\n", wf->path, row->id, what);
    else
        fprintf(stderr, "%s:1:1: error: the workflow changed since run %s was recorded (%s); "
                "resume with --force to rerun what changed, or start a new run\n", wf->path,
                row->id, what);
    sl__buf_close(&changes);
    return force ? SL_EXIT_OK : SL_EXIT_USAGE;
}

int sl__cli_resume_prepare(sl_store_t *store, const char *ref, bool force, sl_workflow_t *wf,
                           sl_store_run_row_t *row)
{
    char err[1024];
    int rc = sl__store_find_run(store, ref, wf->name, row, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "sluice: error: --resume %s: %s\n", ref, err);
        return rc == SL_ENOTFOUND ? SL_EXIT_USAGE : SL_EXIT_INTERNAL;
    }
    if (strcmp(row->workflow, wf->name) != 0) {
        fprintf(stderr, "sluice: error: --resume %s: that run is of workflow '%s', not '%s'\n",
                ref, row->workflow, wf->name);
        return SL_EXIT_USAGE;
    }
    if (strcmp(row->status, "running") == 0) {
        fprintf(stderr, "sluice: error: --resume %s: run %s is still running (process alive)\n",
                ref, row->id);
        return SL_EXIT_USAGE;
    }
    if (strcmp(row->file_hash, wf->file_hash) != 0) {
        int status = describe_changes(store, row, wf, force);
        if (status != SL_EXIT_OK)
            return status;
    }
    sl_value_t *vars = NULL;
    if (sl__host_resume_vars(store, row->seq, &vars, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice: error: --resume %s: %s\n", ref, err);
        return SL_EXIT_INTERNAL;
    }
    sl_value_free(wf->vars);
    wf->vars = vars; /* the resumed run's, so its tasks get the same arguments */
    return SL_EXIT_OK;
}
