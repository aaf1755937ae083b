#!/usr/bin/env bash
# Every ```yaml block in docs/*.md is a complete workflow: `sluice validate` must accept it.
# A block whose info string has `run` (```yaml run) is also run and must succeed;
# one with `fragment` is skipped; `run fixture` runs it with `--var base=URL` of the
# fixture server (tests/fixture), for examples that fetch; `run tls` runs it with
# `--var base=URL` of nginx over HTTPS and HTTP/2 (tests/tls), the test CA at certs/ca.pem. A ```lua block whose first line is `-- PATH` is
# written to PATH beside the examples, for the scripts they use. Usage: docs_examples.sh SLUICE BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2 src=$3
export SLUICE_PLUGIN_PATH=$build/tests/plugins
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$src" "$work" <<'PY'
import os, re, sys
src, work = sys.argv[1], sys.argv[2]
n = 0
for name in sorted(os.listdir(os.path.join(src, "docs"))):
    if not name.endswith(".md"):
        continue
    text = open(os.path.join(src, "docs", name)).read()
    for m in re.finditer(r"^```yaml([^\n]*)\n(.*?)^```", text, re.S | re.M):
        info = m.group(1).split()
        if "fragment" in info:
            continue
        n += 1
        line = text.count("\n", 0, m.start()) + 1
        base = f"{name[:-3]}_{line}"
        with open(os.path.join(work, base + ".yaml"), "w") as f:
            f.write(m.group(2))
        with open(os.path.join(work, base + ".mode"), "w") as f:
            mode = "validate"
            if "run" in info:
                mode = "fixture" if "fixture" in info else "tls" if "tls" in info else "run"
            f.write(mode)
    # A ```lua block opening with `-- PATH` is a script the examples use: write it out.
    for m in re.finditer(r"^```lua[^\n]*\n-- ([\w./-]+\.lua)\n(.*?)^```", text, re.S | re.M):
        path = os.path.join(work, m.group(1))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(m.group(2))
print(n, "examples")
PY
passed=0 failed=0
if grep -qx tls "$work"/*.mode; then
  # `run tls`: against nginx over HTTPS (tests/tls/start.sh), with --var base=URL and the
  # test CA at certs/ca.pem beside the examples.
  source "$src/tests/tls/start.sh" "$build" || exit 1
  trap 'tls_stop; rm -rf "$work"' EXIT
  mkdir -p "$work/certs" && cp "$TLS_CA" "$work/certs/ca.pem"
elif grep -qx fixture "$work"/*.mode; then
  source "$src/tests/fixture/start.sh" "$build" || exit 1
  trap 'fixture_stop; rm -rf "$work"' EXIT
fi
cd "$work" || exit 1
for wf in *.yaml; do
  [[ -e $wf ]] || continue
  mode=$(cat "${wf%.yaml}.mode")
  if [[ $mode == run ]]; then
    out=$(timeout 60 "$sluice" run --quiet "$wf" 2>&1)
  elif [[ $mode == fixture ]]; then
    out=$(timeout 60 "$sluice" run --quiet "$wf" --var "base=$FIXTURE_URL" 2>&1)
  elif [[ $mode == tls ]]; then
    out=$(timeout 60 "$sluice" run --quiet "$wf" --var "base=$TLS_URL" 2>&1)
  else
    out=$("$sluice" validate "$wf" 2>&1)
  fi
  if [[ $? == 0 ]]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: docs example $wf ($mode):"; echo "$out" | head -20
  fi
done
echo "$passed passed, $failed failed"
(( failed == 0 && passed > 0 ))
