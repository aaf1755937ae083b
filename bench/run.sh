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
echo "## The state store"
$py "$here/state.py" "$build"
echo "## The crawl"
$py "$here/crawl.py" "$build"
echo "## The dashboard: HTTP server, JSON API, pages"
$py "$here/dash_http.py" "$build"
$py "$here/dash_api.py" "$build"
$py "$here/dash_page.py" "$build"
# The long ones: real minutes of a serve daemon (about 6 and 7 minutes), and a local Slurm
# cluster (root only; tests/slurm/cluster.sh).
echo "## The serve daemon: 1,000 workflows every minute"
$py "$here/serve.py" "$build"
echo "## The dashboard's CPU under a busy serve"
$py "$here/dash_cpu.py" "$build"
if [[ $(id -u) == 0 ]]; then
    echo "## Slurm against the local pool"
    $py "$here/slurm.py" "$build"
fi
