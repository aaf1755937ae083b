#!/usr/bin/env bash
# sluice serve after a clock jump (a laptop waking up, the clock set): the daemon checks
# the wall clock against the monotonic one every 2 s and re-arms its timers from the wall
# clock, and `missed`/`catchup` bound what fires. The wall clock is moved under a real
# daemon by an LD_PRELOAD shim (built here) that adds the seconds written in a file to
# CLOCK_REALTIME; the monotonic clock, which the loop's timers follow, is left alone.
# An hourly schedule (missed: all, catchup: 3h), started at hh:30: a jump to 5 s past the
# hour runs that tick (on time) within seconds, not in half an hour of monotonic time; a
# jump of 5 more hours runs the three ticks within the last 3 h, oldest first, no more.
# Usage: serve_clock.sh SLUICE BUILD_DIR SOURCE_DIR
source "$3/tests/integration/lib/serve.sh"
serve_setup "$@"

cat > shift.c <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_REALTIME plus the seconds in $SHIFT_FILE (read on each call). */
int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (real == NULL)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    const char *path = getenv("SHIFT_FILE");
    if (rc == 0 && id == CLOCK_REALTIME && path) {
        long long seconds = 0;
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%lld", &seconds) != 1)
                seconds = 0;
            fclose(f);
        }
        ts->tv_sec += seconds;
    }
    return rc;
}
EOF
cc -shared -fPIC -O1 -o shift.so shift.c -ldl || { echo "cannot build the shim"; exit 1; }

cat > hourly.yaml <<EOF
name: hourly
schedule: { cron: "0 * * * *", missed: all, catchup: 3h }
steps:
  get:
    uses: http.get
    with: { url: "$url/get?wf=hourly" }
EOF
real=$(date +%s)
hour=$(((real / 3600 + 1) * 3600)) # the next hour of the real clock
echo $((hour - 1800 - real)) > shift  # the daemon starts at hh:30 of the hour before
# Under ASan (make test-asan) its runtime must come first in the preload list.
asan=$(ldd "$sluice" | grep -o '/[^ ]*libasan[^ ]*' | head -n 1)
SHIFT_FILE=$work/shift LD_PRELOAD="${asan:+$asan }$work/shift.so" "$sluice" serve hourly.yaml 2> serve.log &
daemons+=($!)
pid=${daemons[-1]}
logged() { grep -q "$1" serve.log; }
check "the daemon takes the workflow" wait_for 10 logged "hourly: scheduled here"
sleep 1
check "no tick at hh:30" [ "$(q 'select count(*) from ticks')" = 0 ]
echo $((hour + 5 - $(date +%s))) > shift # 5 s past the hour
ran() { [[ $(q "select count(*) from runs where status = 'succeeded'") == "$1" ]]; }
check "the hour's tick runs soon after the jump" wait_for 8 ran 1
check "the jump is logged" logged "the wall clock moved +1[0-9][0-9][0-9].[0-9] s"
echo $((hour + 5 * 3600 + 5 - $(date +%s))) > shift # 5 hours later
check "after 5 hours, the three within catchup run" wait_for 10 ran 4
sleep 1
kill -TERM "$pid"
wait "$pid"
check "the daemon exits 0" [ $? = 0 ]
got=$(q "select (tick / 1000 - $hour) / 3600 from runs order by seq" | tr '\n' ' ')
check "ticks h, h+3, h+4, h+5, in that order: $got" [ "$got" = "0 3 4 5 " ]
((failed)) && cat serve.log
serve_report
