/* cli/report: live progress on a terminal and the end-of-run summary. */
#ifndef SL_CLI_REPORT_H
#define SL_CLI_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "host/host.h"
#include "sched/sched.h"

typedef struct sl_progress {
    FILE *out;
    uint64_t started_ns;
    uint64_t last_ns;
    size_t last_done;
    double rate; /* tasks/s, smoothed */
    uint64_t last_requests;
    double request_rate; /* HTTP requests/s, smoothed */
    bool drawn;
} sl_progress_t;

void sl__report_progress_init(sl_progress_t *p, FILE *out);
/** Redraws the progress line from the run's counters. */
void sl__report_progress_draw(sl_progress_t *p, const sl_run_t *run, const sl_workflow_t *wf,
                              const sl_services_t *svc);
/** Erases the line (before the summary or a log line). */
void sl__report_progress_clear(sl_progress_t *p);

/** Prints the per-step table and the closing line (`svc`: the run's HTTP and pool lines). */
void sl__report_summary_print(FILE *out, const sl_run_t *run, const sl_workflow_t *wf,
                              const sl_services_t *svc, uint64_t elapsed_ns);

#endif
