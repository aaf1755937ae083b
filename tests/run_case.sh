#!/usr/bin/env bash
# Runs one data-driven case: tests/cases/GROUP/CASE/ holds
#   workflow.yaml  the input (other files of the folder come along)
#   args           optional, one line: the sluice arguments; $WF is the workflow
#                  (default: "validate $WF")
#   exit           optional: the expected exit code (default 0)
#   stderr         optional: the expected stderr, exactly
#   stdout         optional: the expected stdout, exactly
#   setup          optional: a bash script run first in the work folder (what git cannot
#                  keep, such as file modes)
#   fixture        optional: start the fixture HTTP server (tests/fixture) first; the file
#                  holds extra server arguments (may be empty). $FIXTURE_URL is then set for
#                  args, setup and check (e.g. args: run $WF --var base=$FIXTURE_URL), and
#                  the URL reads "http://FIXTURE" in the compared stderr/stdout
#   env            optional: NAME=VALUE lines exported for sluice (after $FIXTURE_URL is
#                  known, so a value may use it)
#   ulimit         optional, one line: `ulimit` arguments for sluice's process (-n 128)
#   check          optional: a bash script run afterwards in the work folder ($SLUICE_BIN
#                  is the sluice binary, to run it again under other conditions)
#                  (stdout/stderr of sluice are in ./.stdout and ./.stderr); must exit 0
# The case runs in a fresh copy of its folder, so paths in messages read
# "workflow.yaml:LINE:COL".
set -u
sluice=$(realpath "$1") case_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-case.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$case_dir"/. "$work"/
cd "$work" || exit 1
args='validate $WF'
[[ -f args ]] && args=$(head -n 1 args)
expected_exit=0
[[ -f exit ]] && expected_exit=$(tr -d '[:space:]' < exit)
WF=workflow.yaml
SLUICE_BIN=$sluice
export SLUICE_STATE="$work/.sluice" WF SLUICE_BIN
if [[ -f fixture ]]; then
  # shellcheck disable=SC2046
  source "$here/fixture/start.sh" "$(dirname "$sluice")" $(cat fixture) || exit 1
  trap 'fixture_stop; rm -rf "$work"' EXIT
fi
if [[ -f setup ]] && ! bash ./setup; then
  echo "setup failed"; exit 1
fi
if [[ -f env ]]; then
  while IFS= read -r line; do
    [[ -n $line ]] && eval "export $line"
  done < env
fi
limits=
[[ -f ulimit ]] && limits=$(head -n 1 ulimit)
eval "set -- $args"
# shellcheck disable=SC2086
( [[ -z $limits ]] || ulimit $limits || exit 125
  exec timeout 60 "$sluice" "$@" ) > .stdout 2> .stderr < /dev/null
status=$?
if [[ -n ${FIXTURE_URL:-} ]]; then
  sed -i "s#$FIXTURE_URL#http://FIXTURE#g" .stdout .stderr
fi
fail=0
if [[ $status != "$expected_exit" ]]; then
  echo "exit status $status, expected $expected_exit"; fail=1
fi
if [[ -f stderr ]] && ! diff -u stderr .stderr; then
  echo "stderr differs (above: - expected, + actual)"; fail=1
fi
if [[ -f stdout ]] && ! diff -u stdout .stdout; then
  echo "stdout differs (above: - expected, + actual)"; fail=1
fi
if [[ -f check ]] && ! bash ./check; then
  echo "check failed"; fail=1
fi
if (( fail )); then
  echo "--- stderr ---"; head -c 4000 .stderr
  echo "--- stdout ---"; head -c 4000 .stdout
  exit 1
fi
exit 0
