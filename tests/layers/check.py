#!/usr/bin/env python3
"""The layer check: every #include between engine modules follows tests/layers/layers.txt,
and every engine symbol's prefix names its module or its file.

    check.py [ENGINE_DIR [LAYERS_TXT]]

Rules (docs/architecture.md, "Layers"):
  1. A file of module M may include a header of module N only when N is in M's row of
     the layer table; its own module and the public header (sluice/) are always allowed.
  2. Every folder of engine/ (but include/) has a row, every row names known modules,
     and the table has no cycle: the modules form layers.
  3. A non-static `sl__P_...` defined in engine/M/F.c has P == M or P == F: a symbol
     tells where it lives. The allocation wrapper's C-library names (sl__malloc, ...)
     live in util/alloc.c only.

Each violation is printed as FILE:LINE: error: MESSAGE; the exit status is 1 if any.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# A definition at the start of a line: a return type, then the symbol, then '(' or '='.
DEFINITION = re.compile(r'^(?!static\b|extern\b|typedef\b|#|\s|/|\*|})'
                        r'[A-Za-z_][\w\s\*]*?\b(sl__\w+)\s*(\(|=|\[)')
ALLOC_NAMES = {"sl__malloc", "sl__calloc", "sl__realloc", "sl__free", "sl__strdup",
               "sl__strndup", "sl__asprintf"}


def read_table(path, problems):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if ":" not in line:
                problems.append(f"{path}:{number}: error: expected 'module: deps...'")
                continue
            module, deps = line.split(":", 1)
            module = module.strip()
            if module in rows:
                problems.append(f"{path}:{number}: error: module '{module}' has two rows")
            rows[module] = (set(deps.split()), number)
    return rows


def check_table(rows, path, problems):
    for module, (deps, number) in rows.items():
        for dep in sorted(deps):
            if dep not in rows:
                problems.append(f"{path}:{number}: error: '{module}' may include unknown "
                                f"module '{dep}'")
            if dep == module:
                problems.append(f"{path}:{number}: error: '{module}' lists itself")
    # A cycle in the allowed graph means the modules do not form layers.
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for dep in sorted(rows[module][0]):
            if dep not in rows or dep == module:
                continue
            if state.get(dep) == "open":
                cycle = trail[trail.index(dep):] + [dep]
                problems.append(f"{path}:{rows[module][1]}: error: the table has a cycle: "
                                + " -> ".join(cycle))
            elif dep not in state:
                visit(dep, trail + [dep])
        state[module] = "done"

    for module in sorted(rows):
        if module not in state:
            visit(module, [module])


def engine_files(engine):
    for module in sorted(os.listdir(engine)):
        folder = os.path.join(engine, module)
        if module == "include" or not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith((".c", ".h")):
                yield module, name, os.path.join(folder, name)


def check_includes(engine, rows, table_path, problems):
    modules = set()
    for module, name, path in engine_files(engine):
        if module not in modules:
            modules.add(module)
            if module not in rows:
                problems.append(f"{path}:1: error: module '{module}' has no row in "
                                f"{table_path}")
        allowed = rows.get(module, (set(), 0))[0]
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m or "/" not in m.group(1):
                    continue
                target = m.group(1).split("/", 1)[0]
                if target in (module, "sluice"):
                    continue
                if target not in allowed and module in rows:
                    problems.append(f"{path}:{number}: error: {module}/ may not include "
                                    f"{m.group(1)} (the layer table lets {module} include: "
                                    f"{' '.join(sorted(allowed)) or 'nothing'})")


def check_prefixes(engine, problems):
    for module, name, path in engine_files(engine):
        if not name.endswith(".c"):
            continue
        stem = name[:-2]
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                m = DEFINITION.match(line)
                if not m or line.rstrip().endswith(";") and m.group(2) == "(":
                    continue
                symbol = m.group(1)
                rest = symbol[len("sl__"):]
                if "_" not in rest:
                    if symbol not in ALLOC_NAMES or (module, stem) != ("util", "alloc"):
                        problems.append(f"{path}:{number}: error: '{symbol}' has no prefix "
                                        f"(sl__{module}_… or sl__{stem}_…)")
                    continue
                prefix = rest.split("_", 1)[0]
                if prefix not in (module, stem):
                    problems.append(f"{path}:{number}: error: '{symbol}' is defined in "
                                    f"{module}/{name}: its prefix must be sl__{module}_ or "
                                    f"sl__{stem}_")


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    engine = argv[1] if len(argv) > 1 else os.path.join(here, "..", "..", "engine")
    table_path = argv[2] if len(argv) > 2 else os.path.join(here, "layers.txt")
    problems = []
    rows = read_table(table_path, problems)
    check_table(rows, table_path, problems)
    check_includes(engine, rows, table_path, problems)
    check_prefixes(engine, problems)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"layers: {len(rows)} modules, includes and prefixes follow the table")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
