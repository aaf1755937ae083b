# sluice: a thin wrapper over CMake. `make run` and `make test` do all set-up on a fresh
# Debian 12 machine: missing -dev packages are installed with apt-get (as root) or listed.
BUILD ?= build
# make install PREFIX=/opt/x DESTDIR=/tmp/stage installs under /tmp/stage/opt/x: PREFIX is
# where sluice will live (sluice.pc names it), DESTDIR only stages the files (packaging).
PREFIX ?= /usr/local
DESTDIR ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 20
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
ifeq ($(CI),true)
CMAKE_FLAGS += -DSLUICE_WERROR=ON
endif

# Debian packages the build and the tests need (chromium and python3-websocket: the
# dashboard's browser tests, tests/dash/pages_*.py).
DEBS = cmake make gcc pkg-config libyaml-dev liblua5.4-dev libuv1-dev libjansson-dev \
       libcurl4-openssl-dev libxml2-dev libgmp-dev libsqlite3-dev sqlite3 \
       tzdata python3 python3-aiohttp python3-lxml curl time procps binutils clang libclang-rt-14-dev \
       groff-base zlib1g-dev libbrotli-dev nginx-light tinyproxy openssl node-llhttp \
       chromium python3-websocket

.PHONY: all deps build run test test-asan fuzz bench install format lint clean

all: build

deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing packages:$$missing"; \
	    echo "run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The offline demo: workflows/flags.yaml against the bundled fixture server (no network).
run: build
	bash tests/fixture/run-flags.sh $(BUILD)

test: build
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON $(filter -DSLUICE_WERROR=ON,$(CMAKE_FLAGS))
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j $(JOBS) --output-on-failure

# libFuzzer targets, each for FUZZ_SECONDS, seeded from tests/fuzz/corpus.
fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSLUICE_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)
	@for f in build-fuzz/tests/fuzz/fuzz_*; do \
	  [ -x "$$f" ] || continue; name=$$(basename $$f); \
	  mkdir -p build-fuzz/corpus/$$name; \
	  echo "fuzzing $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	      build-fuzz/corpus/$$name tests/fuzz/corpus/$$name 2>build-fuzz/$$name.log \
	    || { tail -n 40 build-fuzz/$$name.log; exit 1; }; \
	  tail -n 1 build-fuzz/$$name.log; \
	done

bench: build
	bash bench/run.sh $(BUILD)

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	bash tests/integration/lint_banned.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
