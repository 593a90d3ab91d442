# coffer — developer entry points. Every target installs what it needs first.
#   make build   build/coffer (and the unit tests); installs only what building and running need
#   make run     build and start `coffer server` on 127.0.0.1:9000 (data in ./var/data) and
#                `coffer console` on 127.0.0.1:8080, with a demo set up on the first run
#   make install install build/coffer as $(DESTDIR)$(PREFIX)/bin/coffer (PREFIX=/usr/local), and
#                libcoffer (.so, .a, include/coffer/coffer.h, lib/pkgconfig/coffer.pc);
#                make uninstall removes them
#   make test    unit + integration tests (release and ASan/UBSan builds), the threaded ones
#                under ThreadSanitizer, + fuzz replay
#   make bench   benchmarks (bench/), results for docs/BENCHMARKS.md
#   make fuzz    run every libFuzzer target for FUZZ_SECONDS each
#   make fuzz-long  run every libFuzzer target for FUZZ_LONG_SECONDS each, merge what adds
#                coverage into tests/fuzz/corpus/, record the runs in docs/FUZZING.md
#   make format  clang-format the C sources

JOBS       ?= $(shell nproc)
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_LONG_SECONDS ?= 600
ADDRESS    ?= 127.0.0.1:9000
CONSOLE_ADDRESS ?= 127.0.0.1:8080
DATA       ?= var/data
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
LIB_VERSION := $(shell awk '$$1 ~ /^project/ { print $$3; exit }' CMakeLists.txt)

.PHONY: all deps deps-test deps-bench build build-asan build-tsan build-fuzz run install uninstall test \
        unit integration bench fuzz fuzz-long format clean

all: build

# What building and running need; the tests' and the benchmarks' packages only for those.
deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

deps-bench:
	@scripts/install-deps.sh bench

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOFFER_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

build-tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOFFER_TSAN=ON >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS)

build-fuzz: deps deps-test
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOFFER_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)

run: build
	@mkdir -p $(DATA)
	@scripts/run.sh $(BUILD)/coffer $(ADDRESS) $(DATA) $(CONSOLE_ADDRESS)

# Installs what $(BUILD) holds, brought up to date without reconfiguring it (so that
# `make install BUILD=build-asan` installs that build as it is configured); a fresh clone
# builds first. Nothing is installed unless the build succeeded.
install:
	@[ -f $(BUILD)/CMakeCache.txt ] || $(MAKE) --no-print-directory build
	@cmake --build $(BUILD) -j$(JOBS) --target coffer coffer_shared coffer_static
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/coffer
	install -m 0755 $(BUILD)/coffer $(DESTDIR)$(BINDIR)/coffer
	install -m 0755 $(BUILD)/libcoffer.so.$(LIB_VERSION) $(DESTDIR)$(LIBDIR)/libcoffer.so.$(LIB_VERSION)
	ln -sf libcoffer.so.$(LIB_VERSION) $(DESTDIR)$(LIBDIR)/libcoffer.so.0
	ln -sf libcoffer.so.0 $(DESTDIR)$(LIBDIR)/libcoffer.so
	install -m 0644 $(BUILD)/libcoffer.a $(DESTDIR)$(LIBDIR)/libcoffer.a
	install -m 0644 include/coffer/coffer.h $(DESTDIR)$(INCLUDEDIR)/coffer/coffer.h
	sed -e 's|%PREFIX%|$(PREFIX)|' -e 's|%LIBDIR%|$(LIBDIR)|' $(BUILD)/coffer.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/coffer.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/coffer $(DESTDIR)$(LIBDIR)/libcoffer.so.$(LIB_VERSION) \
	      $(DESTDIR)$(LIBDIR)/libcoffer.so.0 $(DESTDIR)$(LIBDIR)/libcoffer.so $(DESTDIR)$(LIBDIR)/libcoffer.a \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/coffer.pc $(DESTDIR)$(INCLUDEDIR)/coffer/coffer.h

test: deps-test build build-asan build-tsan build-fuzz
	@scripts/test-all.sh $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD)

bench: deps-bench build
	@bench/server.sh $(BUILD)/coffer
	@bench/flood.sh $(BUILD)/coffer
	@bench/snapshot.sh $(BUILD)/coffer
	@bench/console.sh $(BUILD)/coffer
	@bench/lib_vs_cli.sh $(BUILD)/coffer
	@bench/mirror.sh $(BUILD)/coffer

fuzz: build-fuzz
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-long: build-fuzz
	@scripts/fuzz-long.sh $(FUZZ_BUILD) $(FUZZ_LONG_SECONDS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
