#!/usr/bin/env bash
# The bash completion (build/sluice.bash, from `sluice __completion bash`): loaded in bash,
# asked as bash asks it (COMP_WORDS, COMP_CWORD), it offers the commands, each command's
# options exactly as its --help lists them, the values of a '|' option, and workflow files.
#   bash completion.sh SLUICE_BIN BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2
script=$build/sluice.bash
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-completion.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

[[ -f $script ]] || { echo "FAIL: $script not built"; exit 1; }
cmp -s "$script" <("$sluice" __completion bash) && ok || bad "$script is not what the binary writes"
# shellcheck source=/dev/null
source "$script" || { echo "FAIL: sourcing $script"; exit 1; }
[[ $(complete -p sluice) == *"-F _sluice"* ]] && ok || bad "not registered: $(complete -p sluice)"

# complete WORD... : the sorted completions of the last word, as bash would ask for them.
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMP_LINE="$*" COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _sluice sluice "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  ((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() { # expect DESCRIPTION EXPECTED -- WORD...
  local what=$1 want=$2 got
  shift 3
  got=$(complete_words "$@")
  [[ $got == "$want" ]] && ok || bad "$what: got '${got//$'\n'/ }', expected '${want//$'\n'/ }'"
}
lines() { printf '%s\n' "$@" | sort; }

# The commands of `sluice --help`, and the long options of `sluice CMD --help`.
commands=$("$sluice" --help | sed -n '/^commands:/,/^$/s/^  \([a-z]*\) .*/\1/p')
help_options() { "$sluice" "$1" --help | grep -oE '^  (-[a-zA-Z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+'; }

expect "sluice r<TAB>" "$(lines $(grep '^r' <<< "$commands"))" -- sluice r
grep -qx run <(complete_words sluice r) && ok || bad "sluice r<TAB> lacks run"
expect "sluice <TAB>" "$(lines $commands --help --version)" -- sluice ''
expect "sluice --<TAB>" "$(lines --help --version)" -- sluice --
for cmd in $commands; do
  expect "sluice $cmd --<TAB>" "$(lines $(help_options "$cmd") --help)" -- sluice "$cmd" --
done
expect "sluice run --<TAB>" \
  "$(lines --var --dry-run --resume --force --no-cache --workers --log --quiet --help)" \
  -- sluice run --
expect "sluice run --no<TAB>" "--no-cache" -- sluice run --no

cd "$work" || exit 1
mkdir sub
touch a.yaml b.txt c.yml
expect "sluice run <TAB>" "$(lines a.yaml c.yml sub)" -- sluice run ''
expect "sluice run a<TAB>" "a.yaml" -- sluice run a
expect "sluice run wf --var x=1 <TAB>" "$(lines a.yaml c.yml sub)" -- sluice run wf --var x=1 ''
expect "sluice validate <TAB>" "$(lines a.yaml c.yml sub)" -- sluice validate a.yaml ''
expect "sluice plugins <TAB>" "" -- sluice plugins ''
expect "sluice run --log <TAB>" "$(lines text json)" -- sluice run --log ''
expect "sluice run --log=<TAB>" "$(lines text json)" -- sluice run --log = ''
expect "sluice run -l j<TAB>" "json" -- sluice run -l j
expect "sluice run --var <TAB>" "" -- sluice run --var ''
expect "sluice graph --format m<TAB>" "mermaid" -- sluice graph --format m
expect "sluice frobnicate <TAB>" "" -- sluice frobnicate ''

echo "$passed passed, $failed failed"
((failed == 0))
