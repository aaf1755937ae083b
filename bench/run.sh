#!/usr/bin/env bash
# Runs every benchmark against the build in $1 (default build/) and prints Markdown tables
# to paste into bench/RESULTS.md with the date and machine they print.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "## Scheduler throughput"
/usr/bin/python3 "$here/sched.py" "$build"
