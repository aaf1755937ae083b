#!/usr/bin/env python3
"""Pattern matching speed: the sandbox's own matcher against Lua 5.4's (bench/strmatch.c).

    strmatch.py [BUILD_DIR]

Compiles bench/strmatch.c with gcc -O2 against BUILD_DIR/libsluice_core.a (the engine as
the build compiled it) and the system's libraries, runs it, and prints its Markdown table
with the machine and date. Target (issue 13): every ratio within 1.5x of Lua's.
"""
import datetime
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PACKAGES = ["lua5.4", "libuv", "yaml-0.1", "jansson", "sqlite3", "libxml-2.0", "libcurl"]


def pkg_config(*args):
    out = subprocess.run(["pkg-config", *args, *PACKAGES], check=True, capture_output=True,
                         text=True).stdout
    return out.split()


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    library = os.path.join(build, "libsluice_core.a")
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "strmatch")
        subprocess.run(["gcc", "-O2", "-std=c11", "-o", exe, os.path.join(HERE, "strmatch.c"),
                        "-I", os.path.join(ROOT, "engine"),
                        "-I", os.path.join(ROOT, "engine", "include"), *pkg_config("--cflags"),
                        library, *pkg_config("--libs"), "-ldl", "-lm", "-lpthread"], check=True)
        print(f"{datetime.date.today()}, {os.cpu_count()} × {cpu_name()}, "
              f"{platform.system()} {platform.release()}")
        print(f"Command: `/usr/bin/python3 bench/strmatch.py {os.path.relpath(build, ROOT)}`\n")
        sys.stdout.flush()
        return subprocess.run(["nice", exe]).returncode


if __name__ == "__main__":
    sys.exit(main())
