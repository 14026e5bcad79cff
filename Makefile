# streamrun: `make run` and `make test` do all set-up on a fresh machine.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
PYTHON ?= /usr/bin/python3
CMAKE_FLAGS ?=

# Debian packages the build, the tests and the benchmarks need.
DEPS = cmake ninja-build g++ make pkg-config libyaml-cpp-dev libcli11-dev librdkafka-dev liblmdb-dev \
       rapidjson-dev libspdlog-dev libfmt-dev doctest-dev libsimdjson-dev libxxhash-dev jq \
       python3 python3-jsonschema kcat clang-format clang-tidy

# The C++ sources under clang-format (.clang-format: Google style, 100 columns).
CXX_SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null || \
                find cli engine operators kafka tests bench -name '*.cc' -o -name '*.h')

.PHONY: all deps build run test unit e2e pipeline-tests format format-check lint asan bench clean

all: build

deps:
	@missing=""; for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) || \
	  cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# The main example: per-user one-minute click counts over the bundled click stream.
run: build
	./$(BUILD)/streamrun run pipelines/clickstream.yaml
	@echo; echo "--- per-user click counts per minute (pipelines/out/clicks_per_minute.jsonl), first 10 of $$(wc -l < pipelines/out/clicks_per_minute.jsonl):"
	@head -n 10 pipelines/out/clicks_per_minute.jsonl
	@echo; echo "--- clicks too late for their minute (pipelines/out/late_clicks.jsonl), first 3 of $$(wc -l < pipelines/out/late_clicks.jsonl):"
	@head -n 3 pipelines/out/late_clicks.jsonl
	@echo; echo "--- damaged input lines (pipelines/out/bad_clicks.jsonl):"
	@cat pipelines/out/bad_clicks.jsonl

unit: build
	./$(BUILD)/unit_tests

e2e: build
	STREAMRUN=$(CURDIR)/$(BUILD)/streamrun $(PYTHON) -m unittest discover -s tests/e2e -p '*_test.py' -v

# Every example pipeline's test file: recorded inputs in, expected outputs compared.
pipeline-tests: build
	./$(BUILD)/streamrun test pipelines/*.test.yaml

# Formatting: `make format` rewrites the sources in place; `make format-check` fails on any
# file clang-format would change (part of `make test`, so CI holds the layout).
format: deps
	@clang-format -i $(CXX_SOURCES) && echo "format: done"

format-check: deps
	@clang-format --dry-run --Werror $(CXX_SOURCES) && echo "format-check: clang-format changes nothing"

# clang-tidy (.clang-tidy: a short list of checks, all errors) over the product's sources, with
# the build's compile_commands.json.
LINT_SOURCES = $(shell git ls-files 'cli/*.cc' 'engine/*.cc' 'operators/*.cc' 'kafka/*.cc' 2>/dev/null || \
                 find cli engine operators kafka -name '*.cc')
lint: build
	@echo $(LINT_SOURCES) | xargs -n 4 -P $(JOBS) clang-tidy -p $(BUILD) --quiet 2>/dev/null && \
	  echo "lint: clang-tidy finds nothing"

test: format-check lint unit e2e pipeline-tests

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSTREAMRUN_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 ./$(ASAN_BUILD)/unit_tests
	ASAN_OPTIONS=detect_leaks=1 STREAMRUN=$(CURDIR)/$(ASAN_BUILD)/streamrun STREAMRUN_SANITIZED=1 \
	  $(PYTHON) -m unittest discover -s tests/e2e -p '*_test.py'

# make bench QUICK=1: smaller inputs (2 M lines, 1 GiB) for a fast check.
bench: build
	$(PYTHON) bench/run.py --build $(BUILD) $(if $(QUICK),--quick)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
