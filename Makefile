# Heron: one top-level Makefile (STYLE.md section 11).
#   make            build build/heron
#   make run        install build packages, build, create ./var demo, serve
#   make test       install test packages, build, run every test (unit,
#                   integration with the real daemon, ASan+UBSan build)
#   make asan       build build-asan/heron with AddressSanitizer + UBSan
#   make fuzz       build the libFuzzer targets (clang) into build-fuzz/
#   make fuzz-smoke run each fuzz target briefly (FUZZ_SECS=N for longer)
#   make install    install binary, man pages, systemd unit (PREFIX, DESTDIR)
#   make bench      run bench/run (side by side with Dovecot)

CC ?= cc
BUILD ?= build
PKGS = libevent libevent_openssl lmdb libsodium libcrypt openssl libutf8proc zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
# Sanitizer builds pass their flags in EXTRA_CFLAGS / EXTRA_LDFLAGS.
override CFLAGS += $(EXTRA_CFLAGS)
override LDFLAGS += $(EXTRA_LDFLAGS)
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
	-fno-strict-aliasing -Isrc $(PKG_CFLAGS) -DHAVE_UTF8PROC
override LDLIBS += $(PKG_LIBS)

LIB_SRCS := $(sort $(wildcard src/lib/*.c src/conf/*.c src/net/*.c \
	src/auth/*.c src/store/*.c src/pop3/*.c src/lmtp/*.c src/mail/*.c \
	src/imap/*.c))
MAIN_SRCS := $(sort $(wildcard src/main/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJS := $(MAIN_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/%.c=%)
# The fuzz targets with a plain main (tests/fuzz/replay.c): make test
# replays their regression files and corpora.
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/%)

ASAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
# Test builds (build-asan) compile the fault-injection hooks of
# src/lib/fault.h; the product build (build/) has none.
TEST_FLAGS = -DHERON_FAULT_INJECTION

.PHONY: all run test asan fuzz fuzz-smoke bench deps deps-test clean unit \
	install fuzz-bins fuzz-replay fuzz-replay-bins
all: $(BUILD)/heron $(UNIT_BINS) $(REPLAY_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libheron.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/heron: $(MAIN_OBJS) $(BUILD)/libheron.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(MAIN_OBJS) $(BUILD)/libheron.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h tests/unit/store_fixture.h $(BUILD)/libheron.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libheron.a $(LDLIBS)

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do $$t || exit 1; done

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

run: deps
	$(MAKE) $(BUILD)/heron
	scripts/demo.sh

NPROC := $(shell nproc 2>/dev/null || echo 2)

test: deps-test
	$(MAKE) -j$(NPROC) all
	$(MAKE) -j$(NPROC) BUILD=build-asan CC=clang \
		CFLAGS="-O1 -g" EXTRA_CFLAGS="$(ASAN_FLAGS) $(TEST_FLAGS)" \
		EXTRA_LDFLAGS="$(ASAN_FLAGS)" all
	scripts/test.sh

asan:
	$(MAKE) BUILD=build-asan CC=clang \
		CFLAGS="-O1 -g" EXTRA_CFLAGS="$(ASAN_FLAGS) $(TEST_FLAGS)" \
		EXTRA_LDFLAGS="$(ASAN_FLAGS)" all

# libFuzzer targets tests/fuzz/fuzz_*.c, built with clang into FUZZ_BUILD
# (the library with fuzzer-no-link, each target with the fuzzer runtime).
FUZZ_BUILD ?= build-fuzz
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined

fuzz:
	@mkdir -p $(FUZZ_BUILD)
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="-O1 -g" \
		EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
		EXTRA_LDFLAGS="-fsanitize=fuzzer $(FUZZ_SAN)" fuzz-bins

fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/%)

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libheron.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libheron.a $(LDLIBS)

# Runs every fuzz target for FUZZ_SECS seconds (default: a short smoke pass).
fuzz-smoke: fuzz
	FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh $(FUZZ_SECS)

# Replays tests/fuzz/regress/<target>/ and tests/fuzz/corpus/<target>/
# through each target's LLVMFuzzerTestOneInput with tests/fuzz/replay.c,
# built like `all` (BUILD, CC, CFLAGS, EXTRA_* as for the ASan build).
# Ends with "N passed, M failed".
fuzz-replay: $(REPLAY_BINS)
	scripts/fuzz.sh --replay $(BUILD)/fuzz-replay

fuzz-replay-bins: $(REPLAY_BINS)

$(BUILD)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/libheron.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay.c \
		$(BUILD)/libheron.a $(LDLIBS)

bench: all
	bench/run

# PREFIX=/usr/local DESTDIR= (staging root) SYSCONFDIR=/etc
install: $(BUILD)/heron
	BUILD=$(BUILD) scripts/install.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
