# shmkit: the make targets. On a machine without make, ./shmkit.sh installs it
# and runs these (`./shmkit.sh demo`, `./shmkit.sh test`). Each target installs
# the Debian packages it needs when they are missing (scripts/deps.sh), and
# scripts/build.sh configures and builds so that no interrupted or failed run
# leaves a state the next one trips over. CMake does the building.

BUILD    ?= build
PREFIX   ?= /usr/local
CC       ?= cc
SANITIZE ?= 0
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
export JOBS
# make runs make (through CMake): no "Entering directory" lines from the inner one.
MAKEFLAGS += --no-print-directory

# clang when CC is clang (the ASan suite, the fuzzers).
CC_DEPS = $(if $(findstring clang,$(CC)),clang)
CMAKE_FLAGS = -DCMAKE_C_COMPILER=$(CC) -DSHMKIT_SANITIZE=$(if $(filter 1,$(SANITIZE)),ON,OFF)
# `make test` builds and runs everything: the tests and the Python module are required
# (the module is not built under the sanitizers: the interpreter is not instrumented).
TEST_FLAGS = -DSHMKIT_TESTS=ON -DSHMKIT_PYTHON=$(if $(filter 1,$(SANITIZE)),OFF,ON)

.PHONY: all build deps test demo bench fuzz install format format-check clean

FUZZ_SECONDS ?= 60
FORMAT_FILES = include/*.h include/shmkit/*.h src/*.c src/*.h src/sys/*.c measure/*.c measure/*.h cli/*.c cli/*.h tests/*.c tests/*.h \
	       tests/cli/*.c bench/*.c bench/*.cpp bench/*.h examples/*.c fuzz/*.c python/ext/*.c python/ext/*.h \
	       cluster/*.c cluster/*.h tests/cluster/*.c

all: build

build:
	@scripts/deps.sh build $(CC_DEPS)
	@scripts/build.sh $(BUILD) $(CMAKE_FLAGS)

deps:
	@scripts/deps.sh build test $(CC_DEPS)

test:
	@scripts/deps.sh build test $(CC_DEPS)
	@scripts/build.sh $(BUILD) $(CMAKE_FLAGS) $(TEST_FLAGS)
	scripts/run-tests.sh $(BUILD)

# The main job: 1 GiB of bit arrays and int64 arrays read by 12 workers, one copy.
# It needs only a C compiler, make and CMake, and builds only the command.
# The naive copy-per-worker baseline: $(BUILD)/shmkit demo --baseline copy
demo:
	@scripts/deps.sh demo $(CC_DEPS)
	@scripts/build.sh -t shmkit_cli $(BUILD) $(CMAKE_FLAGS)
	$(BUILD)/shmkit demo

# Every benchmark against its baselines and the machine's limits: bench/results/latest.json
# and PNG plots. QUICK=1 finishes in under two minutes, the full run in under twenty.
bench:
	@scripts/deps.sh build bench $(CC_DEPS)
	@scripts/build.sh $(BUILD) $(CMAKE_FLAGS)
	/usr/bin/python3 bench/run.py --build $(BUILD) --out bench/results $(if $(filter 1,$(QUICK)),--quick,)

# The library (shared, with its soname, and static), the headers, shmkit.pc, the
# shmkit command and the manual pages, under PREFIX (DESTDIR=... stages them).
install:
	@scripts/deps.sh build $(CC_DEPS)
	@scripts/build.sh $(BUILD) $(CMAKE_FLAGS) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --install $(BUILD)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

# libFuzzer over header validation, .npy parsing and the queue ring (clang, ASan + UBSan).
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	@scripts/deps.sh format
	clang-format -i $(FORMAT_FILES)

# Formatting, and the layering (scripts/check-layers.py, docs/design.md): no
# layer includes a higher layer's header; with a build, no object calls upward.
format-check:
	@scripts/deps.sh format
	clang-format --dry-run --Werror $(FORMAT_FILES)
	/usr/bin/python3 scripts/check-layers.py $(if $(wildcard $(BUILD)/libshmkit.a),--lib $(BUILD)/libshmkit.a,)

clean:
	rm -rf $(BUILD) build-asan build-install build-fuzz build-python
