#!/usr/bin/env bash
# Runs every benchmark against the build in $1 (default build/) and prints Markdown tables
# to paste into bench/RESULTS.md with the date and machine they print. Run it on a quiet
# machine: the peers and sluice share its cores.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
echo "## Scheduler throughput"
$py "$here/sched.py" "$build"
echo "## Worker pool overhead"
$py "$here/pool.py" "$build"
echo "## CPU steps"
$py "$here/cpu.py" "$build"
echo "## HTTP on the loop"
$py "$here/fetch.py" "$build"
echo "## HTTPS, HTTP/2 and HTTP/1.1 against nginx"
$py "$here/tls.py" "$build"
echo "## Fetch, parse, write"
$py "$here/pipeline.py" "$build"
echo "## Pattern matching"
$py "$here/strmatch.py" "$build"
