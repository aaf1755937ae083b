#!/usr/bin/env bash
# The man page (build/sluice.1, from `sluice __man`) and --help say the same: the same
# commands, and per command the same synopsis and the same options (names, short names,
# values, help text), both ways; the commands this version lacks are marked so. The page
# renders without a warning (groff -ww; mandoc -T lint and man -l where installed).
#   bash man_help.sh SLUICE_BIN BUILD_DIR SOURCE_DIR
set -u
sluice=$1 build=$2
page=$build/sluice.1
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-man.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

[[ -f $page ]] || { echo "FAIL: $page not built"; exit 1; }
cmp -s "$page" <("$sluice" __man) && ok || bad "$page is not what the binary writes"

# Rendering: no warning of any kind.
groff -man -ww -z "$page" 2> "$work/groff.err" && [[ ! -s $work/groff.err ]] && ok ||
  bad "groff warns: $(cat "$work/groff.err")"
if command -v mandoc > /dev/null; then
  mandoc -T lint -W warning "$page" > "$work/mandoc.out" 2>&1 && ok ||
    bad "mandoc -T lint: $(cat "$work/mandoc.out")"
fi
if command -v man > /dev/null; then
  MANPAGER=cat MANWIDTH=80 man -l "$page" > "$work/man.txt" 2> "$work/man.err"
  [[ ! -s $work/man.err ]] && grep -q '^SLUICE(1)' "$work/man.txt" && ok ||
    bad "man -l: $(cat "$work/man.err")"
fi
groff -man -Tascii -P-cbou "$page" > "$work/page.txt" 2> /dev/null

# Every command's --help, and the not-yet commands' refusal, for the comparison below.
commands=$("$sluice" --help | sed -n '/^commands:/,/^$/s/^  \([a-z]*\) .*/\1/p')
mkdir "$work/help"
for cmd in $commands; do
  "$sluice" "$cmd" --help > "$work/help/$cmd" 2>&1 || bad "$cmd --help failed"
done

python3 - "$page" "$work/help" "$work/page.txt" "$sluice" > "$work/compare.out" <<'PY'
import os, re, subprocess, sys

page, help_dir, rendered_path, sluice = sys.argv[1:]
SPEC = ["run", "validate", "graph", "serve", "runs", "show", "cache", "plugins", "next",
        "backfill"]
problems = []


def unroff(text):
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\ ", " ").replace("\\e", "\\").replace("\\&", "")


def man_sections(path):
    """{command: {"synopsis", "text", "options": {label: help}}} from the .SS sections."""
    sections, current, tag, in_commands = {}, None, None, False
    for line in open(path, encoding="utf-8").read().split("\n"):
        if line.startswith(".SH"):
            in_commands, current = line == ".SH COMMANDS", None
            continue
        if not in_commands:
            continue
        if line.startswith(".SS "):
            current = sections.setdefault(line[4:], {"synopsis": None, "text": [],
                                                     "options": {}})
            tag = None
        elif current is None:
            continue
        elif current["synopsis"] is None:
            current["synopsis"] = unroff(line)
        elif line == ".TP":
            tag = ""
        elif tag == "":
            tag = unroff(line)
            current["options"][tag] = []
        elif line.startswith("."):
            tag = None
        elif tag:
            current["options"][tag].append(unroff(line))
        else:
            current["text"].append(unroff(line))
    return sections


def help_of(path):
    """(usage, {label: help}) from a command's --help."""
    lines = open(path, encoding="utf-8").read().split("\n")
    usage = lines[0][len("usage: "):] if lines[0].startswith("usage: ") else None
    options, label, column = {}, None, 0
    for line in lines[1:]:
        m = re.match(r"^  ( *)(-\S.*?)(   +)(\S.*)$", line)
        if m:
            label = m.group(2)
            column = 2 + len(m.group(1)) + len(label) + len(m.group(3))
            options[label] = [m.group(4)]
        elif label and line.startswith(" " * column) and line.strip():
            options[label].append(line.strip())
        else:
            label = None
    return usage, options


sections = man_sections(page)
helped = sorted(os.listdir(help_dir))
for name in SPEC:
    if name not in sections:
        problems.append(f"the man page has no section for '{name}' (SPEC 5)")
for name in sections:
    if name not in SPEC:
        problems.append(f"the man page's section '{name}' is no command of SPEC 5")
rendered = open(rendered_path, encoding="utf-8").read()
for name, section in sections.items():
    text = " ".join(section["text"])
    implemented = name in helped
    if implemented == ("Not implemented" in text):
        problems.append(f"{name}: the man page's 'Not implemented' does not match --help")
    if not implemented:
        refusal = subprocess.run([sluice, name, "--help"], capture_output=True, text=True)
        if refusal.returncode != 2 or "not available" not in refusal.stderr:
            problems.append(f"{name}: neither in --help nor refused as not available")
        continue
    usage, options = help_of(os.path.join(help_dir, name))
    if usage != section["synopsis"]:
        problems.append(f"{name}: --help's usage '{usage}' but man's '{section['synopsis']}'")
    for label in sorted(set(options) - set(section["options"])):
        problems.append(f"{name}: '{label}' is in --help, not in the man page")
    for label in sorted(set(section["options"]) - set(options)):
        problems.append(f"{name}: '{label}' is in the man page, not in --help")
    for label in sorted(set(options) & set(section["options"])):
        if " ".join(options[label]) != " ".join(section["options"][label]):
            problems.append(f"{name}: the help of '{label}' differs: --help "
                            f"'{' '.join(options[label])}', man "
                            f"'{' '.join(section['options'][label])}'")
        if not re.search(r"^ +" + re.escape(label) + r"( |$)", rendered, re.M):
            problems.append(f"{name}: '{label}' is not a line of the rendered page")
    if name == "run" and len(options) < 8:
        problems.append(f"run: only {len(options)} options read from --help: {sorted(options)}")
for problem in problems:
    print(problem)
print(f"compared {len(helped)} commands' --help with {len(sections)} man sections")
sys.exit(1 if problems else 0)
PY
status=$?
cat "$work/compare.out"
((status == 0)) && ok || bad "the man page and --help disagree (above)"

echo "$passed passed, $failed failed"
((failed == 0))
