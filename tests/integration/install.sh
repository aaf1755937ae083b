#!/usr/bin/env bash
# `make install PREFIX=P DESTDIR=D` stages every file under D/P in the GNU layout (binary,
# plugins, Lua library, header, sluice.pc, man page, bash completion) and nothing else, and
# the staged binary runs a workflow from there with its staged plugins.
#   bash install.sh SLUICE_BIN BUILD_DIR SOURCE_DIR
set -euo pipefail
sluice=$1 build=$(realpath "$2") src=$(realpath "$3")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
prefix=/opt/sluice-install-test stage=$tmp/stage

# The folders as configured (GNUInstallDirs leaves its defaults out of the cache).
cached() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
bindir=$(cached CMAKE_INSTALL_BINDIR) libdir=$(cached CMAKE_INSTALL_LIBDIR)
includedir=$(cached CMAKE_INSTALL_INCLUDEDIR) datadir=$(cached CMAKE_INSTALL_DATADIR)
mandir=$(cached CMAKE_INSTALL_MANDIR)
datadir=${datadir:-share} mandir=${mandir:-$datadir/man}

# 1. The Makefile's own install line, as `make -n` prints it (running the whole target would
#    rebuild the tree other tests are using).
line=$(make -s -n -C "$src" install BUILD="$build" PREFIX="$prefix" DESTDIR="$stage" |
       grep -- 'cmake --install') || fail "make -n install prints no cmake --install"
[[ $line == *"DESTDIR=\"$stage\""* && $line == *"--prefix \"$prefix\""* ]] ||
  fail "make install does not pass DESTDIR and PREFIX on: $line"
(cd "$src" && eval "$line") > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "install"; }
[[ ! -e $prefix ]] || fail "the install wrote outside DESTDIR, into $prefix"

# 2. Every file where it belongs, and nothing else.
root=$stage$prefix
{
  echo "$bindir/sluice"
  for so in "$build"/plugins/*.so; do echo "$libdir/sluice/plugins/$(basename "$so")"; done
  (cd "$src/lua" && find . -name '*.lua' | sed "s#^\./#$datadir/sluice/lua/#")
  echo "$includedir/sluice/plugin.h"
  echo "$libdir/pkgconfig/sluice.pc"
  echo "$mandir/man1/sluice.1"
  echo "$datadir/bash-completion/completions/sluice"
} | sort > "$tmp/expected"
(cd "$root" && find . -type f | sed 's#^\./##' | sort) > "$tmp/installed"
diff -u "$tmp/expected" "$tmp/installed" || fail "installed files differ (- expected, + installed)"
[[ -x $root/$bindir/sluice ]] || fail "the binary is not executable"
cmp -s "$build/sluice.1" "$root/$mandir/man1/sluice.1" || fail "the man page is not build/sluice.1"
cmp -s "$build/sluice.bash" "$root/$datadir/bash-completion/completions/sluice" ||
  fail "the completion is not build/sluice.bash"

# 3. sluice.pc names the prefix, not the staging folder.
export PKG_CONFIG_PATH=$root/$libdir/pkgconfig
[[ $(pkg-config --variable=prefix sluice) == "$prefix" ]] || fail "sluice.pc prefix"
[[ $(pkg-config --variable=plugindir sluice) == "$prefix/$libdir/sluice/plugins" ]] ||
  fail "sluice.pc plugindir: $(pkg-config --variable=plugindir sluice)"
[[ $(pkg-config --variable=includedir sluice) == "$prefix/$includedir" ]] || fail "includedir"
[[ $(pkg-config --variable=libdir sluice) == "$prefix/$libdir" ]] || fail "libdir"
version=$("$sluice" --version | cut -d' ' -f2)
[[ $(pkg-config --variable=version sluice) == "$version" &&
   $(pkg-config --modversion sluice) == "$version" ]] || fail "sluice.pc's version is not $version"

# 4. The staged binary finds its staged plugins (nothing else: no SLUICE_PLUGIN_PATH) and
#    runs a workflow of Lua, json and file steps, whose require reads the staged library.
unset SLUICE_PLUGIN_PATH
export SLUICE_STATE=$tmp/state
mkdir "$tmp/work" && cd "$tmp/work"
"$root/$bindir/sluice" plugins > plugins.out 2> plugins.err || fail "staged sluice plugins"
[[ ! -s plugins.err ]] || { cat plugins.err; fail "warnings from the staged sluice"; }
for kind in file.write json.parse exec http.get lua; do
  grep -q "^$kind " plugins.out || fail "the staged sluice lacks $kind"
done
sed -n 's/^[a-z.]* .*, \(\/.*\.so\))$/\1/p' plugins.out | sort -u > plugin_files
[[ $(wc -l < plugin_files) == $(ls "$build"/plugins/*.so | wc -l) ]] ||
  { cat plugin_files; fail "the staged sluice does not list a kind of every plugin"; }
while read -r file; do
  [[ $(realpath "$file") == "$root/"* ]] || fail "a plugin from outside the stage: $file"
done < plugin_files
cat > wf.yaml <<'YAML'
name: installed
steps:
  parse: { uses: json.parse, with: { text: '{"n": 6}' } }
  square: { uses: lua, needs: [parse], with: { code: "return steps.parse.n * steps.parse.n" } }
  save: { uses: file.write, with: { path: out/result.txt, content: "${{ steps.square }}" } }
  lib:
    uses: lua
    with:
      code: |
        local ok, err = pcall(require, "no.such.module")
        return type(require("sluice.crawl").run) .. "\n" .. err
  where: { uses: file.write, with: { path: out/lib.txt, content: "${{ steps.lib }}" } }
YAML
"$root/$bindir/sluice" run --quiet wf.yaml > run.out 2> run.err ||
  { cat run.out run.err; fail "the staged sluice cannot run a workflow"; }
[[ $(cat out/result.txt) == 36 ]] || fail "out/result.txt: '$(cat out/result.txt)'"
# 5. Its require finds the staged Lua library (PREFIX/share/sluice/lua), not the build tree's.
[[ $(head -n 1 out/lib.txt) == function ]] || fail "the staged sluice cannot require sluice.crawl"
grep -qF "no file '$root/$bindir/../$datadir/sluice/lua/no/such/module.lua'" out/lib.txt ||
  { cat out/lib.txt; fail "the staged sluice's require does not read the staged library"; }
echo "ok"
