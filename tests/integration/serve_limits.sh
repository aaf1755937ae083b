#!/usr/bin/env bash
# sluice serve: each run's own limits.http apply inside the daemon's shared HTTP engine.
# Four workflows share one tick of one daemon: `polite` (limits.http.robots) is refused
# the fixture's robots-disallowed path that `rude` fetches; `outside` saves into a folder
# beyond the working directory that only its limits.fs.allow opens; `slow`
# (limits.http.rate: 5) spreads its ten requests over about two seconds while `fast`'s
# ten, in the same engine, are not held back by it.
# Usage: serve_limits.sh SLUICE BUILD_DIR SOURCE_DIR
source "$3/tests/integration/lib/serve.sh"
serve_setup "$@"

mkdir wf outside run # the daemon runs in run/: outside/ is beyond its working directory
head='schedule: { cron: "* * * * *" }'
cat > wf/polite.yaml <<EOF
name: polite
$head
limits: { http: { robots: true } }
steps:
  get: { uses: http.get, with: { url: "$url/status/418", expect: 418 } }
EOF
cat > wf/rude.yaml <<EOF
name: rude
$head
steps:
  get: { uses: http.get, with: { url: "$url/status/418", expect: 418 } }
EOF
cat > wf/outside.yaml <<EOF
name: outside
$head
limits: { fs: { allow: [$work/outside] } }
steps:
  get: { uses: http.get, with: { url: "$url/get?wf=outside", save_to: "$work/outside/page.json" } }
EOF
for name in slow fast; do
    limits=""
    [[ $name == slow ]] && limits="limits: { http: { rate: 5 } }"
    cat > "wf/$name.yaml" <<EOF
name: $name
$head
$limits
steps:
  get:
    uses: http.get
    foreach: "\${{ range(1, 10) }}"
    with: { url: "$url/get?wf=$name&i=\${{ item }}" }
EOF
done

cd run || exit 1
SLUICE_NOW=$(iso "$(date -u -d 2030-01-07T10:00:30Z +%s)") "$sluice" serve ../wf 2> ../serve.log &
daemons+=($!)
cd ..
pid=${daemons[-1]}
ended() { [[ $(q "select count(*) from runs where finished is not null") == 5 ]]; }
check "the five runs of the on-time tick end" wait_for 30 ended
kill -TERM "$pid"
wait "$pid"
check "the daemon exits 0" [ $? = 0 ]

check "polite: refused by robots.txt" [ "$(runs_of polite)" = "10:00 failed" ]
check "polite: its task says why" \
    [ "$(q "select count(*) from tasks t join runs r on t.run = r.seq
            where r.workflow = 'polite' and t.error like '%blocked by robots.txt%'")" = 1 ]
check "rude: the same path, fetched" [ "$(runs_of rude)" = "10:00 succeeded" ]
check "outside: saved beyond the working directory" [ "$(runs_of outside)" = "10:00 succeeded" ]
check "outside: the file is there" grep -q '"wf": *"outside"' outside/page.json
span() { q "select max(t.finished) - min(t.started) from tasks t join runs r on t.run = r.seq
            where r.workflow = '$1'"; }
check "slow: both succeeded" [ "$(runs_of slow)$(runs_of fast)" = "10:00 succeeded10:00 succeeded" ]
slow_ms=$(span slow) fast_ms=$(span fast)
check "slow: rate 5/s spreads ten requests over at least 1.5 s (took $slow_ms ms)" \
    [ "$slow_ms" -ge 1500 ]
check "fast: not held back by slow's rate (took $fast_ms ms)" [ "$fast_ms" -lt 1500 ]
((failed)) && cat serve.log
serve_report
