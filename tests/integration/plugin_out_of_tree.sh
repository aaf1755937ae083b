#!/usr/bin/env bash
# Builds the example plugin of docs/plugins.md the way an out-of-tree user
# does (installed header only, plain `cc` with the flags of the installed
# sluice.pc), then runs the example workflow with SLUICE_PLUGIN_PATH pointing
# at it, and with the plugin installed into the plugindir of sluice.pc, where
# the installed sluice finds it by itself.
#   bash plugin_out_of_tree.sh SLUICE_BIN BUILD_DIR SOURCE_DIR
set -euo pipefail
sluice=$1 build=$2 src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-oot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Install: the header must land in PREFIX/include/sluice/, sluice.pc in its libdir.
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
[[ -f $tmp/prefix/include/sluice/plugin.h ]] || fail "plugin.h not installed"
pc=$(find "$tmp/prefix" -name sluice.pc -path '*/pkgconfig/*' | head -n 1)
[[ -n $pc ]] || fail "sluice.pc not installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
pkg-config --exists sluice || fail "pkg-config does not find sluice in $PKG_CONFIG_PATH"
read -r cflags < <(pkg-config --cflags sluice) # without its trailing blank
[[ $cflags == "-I$tmp/prefix/include" ]] || fail "pkg-config --cflags sluice: '$cflags'"
plugindir=$(pkg-config --variable=plugindir sluice)
[[ $plugindir == "$tmp/prefix/"* ]] || fail "plugindir '$plugindir' is not in the prefix"
[[ -d $plugindir && -f $plugindir/file.so ]] || fail "plugindir '$plugindir' lacks the built-ins"
[[ $(pkg-config --modversion sluice) == $("$sluice" --version | cut -d' ' -f2) ]] ||
  fail "sluice.pc's version is not the binary's"

# 2. Build the plugin against the installed header and nothing else.
mkdir -p "$tmp/plugins" "$tmp/work"
# shellcheck disable=SC2046 # the flags are words
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
  $(pkg-config --cflags sluice) -o "$tmp/plugins/hello.so" "$src/docs/examples/plugin/hello.c" ||
  fail "the example plugin does not compile against the installed header"
exported=$(nm -D --defined-only "$tmp/plugins/hello.so" | awk '{print $3}')
[[ $exported == sl_plugin_entry_v1 ]] || fail "hello.so exports '$exported', not only sl_plugin_entry_v1"

# 2b. Every ```c compile block of docs/plugins.md compiles against the installed header, as
# its own file after the system headers, the header and `static const sl_host_t *host;`.
/usr/bin/python3 - "$src/docs/plugins.md" "$tmp/blocks" <<'PY'
import os, re, sys
text, out = open(sys.argv[1]).read(), sys.argv[2]
os.makedirs(out)
blocks = re.findall(r"^```c compile\n(.*?)^```", text, re.S | re.M)
for i, body in enumerate(blocks):
    with open(os.path.join(out, f"block{i}.c"), "w") as f:
        f.write("#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
                "#include <uv.h>\n#include <sluice/plugin.h>\n"
                "static const sl_host_t *host;\n" + body)
print(len(blocks), "C blocks")
PY
blocks=("$tmp"/blocks/block*.c)
(( ${#blocks[@]} >= 5 )) || fail "docs/plugins.md has ${#blocks[@]} compiled C blocks, expected at least 5"
for block in "${blocks[@]}"; do
  cc -std=gnu11 -Wall -Wextra -Werror -Wno-unused-function -fPIC -fvisibility=hidden \
    -I "$tmp/prefix/include" $(pkg-config --cflags libuv) -c -o "${block%.c}.o" "$block" ||
    { cat -n "$block"; fail "a C block of docs/plugins.md does not compile"; }
done

# 2c. The header is usable from C++ too (extern "C", the cancel flag's type).
if command -v c++ > /dev/null; then
  printf '#include <sluice/plugin.h>\nint main() { sl_cancel_flag_t f(false); f.store(true);\n'\
'  return sizeof(sl_host_t) > 0 && f.load() ? 0 : 1; }\n' > "$tmp/cxx.cc"
  c++ -std=c++11 -Wall -Wextra -Werror -I "$tmp/prefix/include" -o "$tmp/cxx" "$tmp/cxx.cc" ||
    fail "sluice/plugin.h does not compile as C++"
fi

# 3. sluice finds it on SLUICE_PLUGIN_PATH.
export SLUICE_PLUGIN_PATH=$tmp/plugins SLUICE_STATE=$tmp/state
"$sluice" plugins > "$tmp/plugins.out" 2> "$tmp/plugins.err" || fail "sluice plugins failed"
grep -q 'hello\.greet' "$tmp/plugins.out" || { cat "$tmp/plugins.out"; fail "hello.greet not listed"; }
grep -q 'hello\.so' "$tmp/plugins.err" && { cat "$tmp/plugins.err"; fail "warning about hello.so"; }

# 4. The example workflow runs and greets.
cd "$tmp/work"
cp "$src/docs/examples/plugin/hello.yaml" .
"$sluice" run --quiet hello.yaml > run.out 2> run.err ||
  { cat run.out run.err; fail "sluice run hello.yaml failed"; }
[[ $(cat out/hello.txt) == "hello, world" ]] || fail "out/hello.txt: '$(cat out/hello.txt)'"
"$sluice" run --quiet hello.yaml --var who=sluice > run.out 2> run.err ||
  { cat run.out run.err; fail "sluice run hello.yaml --var who=sluice failed"; }
[[ $(cat out/hello.txt) == "hello, sluice" ]] || fail "out/hello.txt: '$(cat out/hello.txt)'"

# 5. Without the plugin folder, the workflow is refused before it runs (exit 2).
rm -f out/hello.txt
set +e
SLUICE_PLUGIN_PATH= "$sluice" run --quiet hello.yaml > run.out 2> run.err
status=$?
set -e
[[ $status == 2 ]] || { cat run.err; fail "unknown kind: exit $status, expected 2"; }
grep -q 'hello\.greet' run.err || { cat run.err; fail "the error does not name hello.greet"; }
[[ ! -e out/hello.txt ]] || fail "a step ran although the workflow was refused"

# 6. Installed into the plugindir of sluice.pc, the installed sluice finds it with no
#    SLUICE_PLUGIN_PATH at all.
cp "$tmp/plugins/hello.so" "$plugindir/"
unset SLUICE_PLUGIN_PATH
"$tmp/prefix/bin/sluice" plugins > "$tmp/plugins.out" 2> "$tmp/plugins.err" ||
  fail "the installed sluice plugins failed"
# The listed file (the binary names it relative to itself, bin/../lib/...) is the one copied.
listed=$(sed -n 's/^hello\.greet .*hello 1\.0\.0, \(.*\))$/\1/p' "$tmp/plugins.out")
[[ -n $listed && $(realpath "$listed") == $(realpath "$plugindir/hello.so") ]] ||
  { cat "$tmp/plugins.out"; fail "the installed sluice does not list hello.greet from $plugindir"; }
[[ ! -s $tmp/plugins.err ]] || { cat "$tmp/plugins.err"; fail "warnings from the installed sluice"; }
"$tmp/prefix/bin/sluice" run --quiet hello.yaml --var who=prefix > run.out 2> run.err ||
  { cat run.out run.err; fail "the installed sluice cannot run hello.yaml"; }
[[ $(cat out/hello.txt) == "hello, prefix" ]] || fail "out/hello.txt: '$(cat out/hello.txt)'"
echo "ok"
