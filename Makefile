# shmkit: the front door. `make` builds, `make test` tests, `make demo` runs the demo.
# CMake does the building; this file installs what is missing and drives it.

BUILD    ?= build
PREFIX   ?= /usr/local
CC       ?= cc
SANITIZE ?= 0
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

CMAKE_FLAGS = -DCMAKE_C_COMPILER=$(CC) -DSHMKIT_SANITIZE=$(if $(filter 1,$(SANITIZE)),ON,OFF)

.PHONY: all build deps test demo bench fuzz install format format-check clean

FUZZ_SECONDS ?= 60
FORMAT_FILES = include/*.h include/shmkit/*.h src/*.c src/*.h src/sys/*.c cli/*.c cli/*.h tests/*.c tests/*.h \
	       tests/cli/*.c bench/*.c bench/*.h examples/*.c fuzz/*.c python/ext/*.c python/ext/*.h \
	       cluster/*.c cluster/*.h tests/cluster/*.c

all: build

$(BUILD)/CMakeCache.txt:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/deps.sh build test

test: deps build
	scripts/run-tests.sh $(BUILD)

# The main job: 1 GiB of bit arrays and int64 arrays read by 12 workers, one copy.
# The naive copy-per-worker baseline: $(BUILD)/shmkit demo --baseline copy
demo: build
	$(BUILD)/shmkit demo

# Every benchmark against its baselines and the machine's limits: bench/results/latest.json
# and PNG plots. QUICK=1 finishes in under two minutes, the full run in under twenty.
bench: build
	@scripts/deps.sh bench
	/usr/bin/python3 bench/run.py --build $(BUILD) --out bench/results $(if $(filter 1,$(QUICK)),--quick,)

install: $(BUILD)/CMakeCache.txt
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD)

# libFuzzer over header validation, .npy parsing and the queue ring (clang, ASan + UBSan).
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) build-asan build-install build-fuzz build-python
