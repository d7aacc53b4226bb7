# Switchyard build. `make` builds build/libswitchyard.{a,so}, build/switchyard and the examples;
# `make run` serves the demo on http://127.0.0.1:8080; `make test` runs every test;
# `make SAN=1 ...` builds into build/san with ASan+UBSan; `make SAN=thread ...` into build/tsan
# with ThreadSanitizer (e.g. `make SAN=thread -j2 all && build/tsan/tests/unit/net/async_abort`).
CC ?= cc
PREFIX ?= /usr/local
SAN ?= 0

ifeq ($(SAN),1)
BUILD := build/san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
else ifeq ($(SAN),thread)
BUILD := build/tsan
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDSAN := -fsanitize=thread
else
BUILD := build
OPT := -O2 -g
LDSAN :=
endif

# METRICS=0: counters and the loop-lag clock compiled out (build/nometrics), the reference
# for what metrics cost (bench/metrics_cost.sh).
METRICS ?= 1
ifeq ($(METRICS),0)
BUILD := $(BUILD)/nometrics
OPT += -DSY_METRICS=0
endif

CFLAGS_ALL := -std=gnu11 $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-fPIC -fvisibility=hidden -Iinclude -Isrc -D_GNU_SOURCE -pthread $(CFLAGS)
LIBS := -lssl -lcrypto -lz -lnghttp2 -lhiredis -pthread
CLI_LIBS := -lyaml # `serve --config`: the command only, not the library
LDFLAGS_ALL := $(LDSAN) $(LDFLAGS)

LIB_SRCS := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRCS := $(sort $(wildcard src/cli/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(shell find tests/unit -name '*.c'))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

.PHONY: all lib test unit check-deps run install clean fuzz bench headline format
all: lib $(BUILD)/switchyard $(EXAMPLE_BINS) $(BENCH_BINS) $(UNIT_BINS)
lib: $(BUILD)/libswitchyard.a $(BUILD)/libswitchyard.so $(BUILD)/switchyard.pc

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libswitchyard.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libswitchyard.so: $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libswitchyard.so.0 -o $@ $^ $(LDFLAGS_ALL) $(LIBS)

$(BUILD)/switchyard.pc: switchyard.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' $< > $@

$(BUILD)/switchyard: $(CLI_OBJS) $(BUILD)/libswitchyard.a
	$(CC) -o $@ $(CLI_OBJS) $(BUILD)/libswitchyard.a $(LDFLAGS_ALL) $(LIBS) $(CLI_LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libswitchyard.a tests/unit/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/libswitchyard.a $(LDFLAGS_ALL) $(LIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libswitchyard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libswitchyard.a $(LDFLAGS_ALL) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libswitchyard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libswitchyard.a $(LDFLAGS_ALL) $(LIBS)

# Install the Debian packages the build and the tests need (only those missing).
check-deps:
	@scripts/deps.sh

unit: all
	@tests/run --unit-only --build $(BUILD)

test: check-deps
	$(MAKE) -j2 all
	@tests/run --build $(BUILD)

run: check-deps
	$(MAKE) -j2 all
	$(BUILD)/switchyard serve --listen 127.0.0.1:8080 --root demo

bench: check-deps
	$(MAKE) -j2 all
	bench/run.sh

# The headline table (bench/headline.sh): ~8 minutes; ROUNDS, DURATION, BEFORE from the
# environment.
headline: check-deps
	$(MAKE) -j2 all
	NO_BUILD=1 bench/headline.sh

install: lib $(BUILD)/switchyard
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/libswitchyard.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libswitchyard.so $(DESTDIR)$(PREFIX)/lib/libswitchyard.so.0
	ln -sf libswitchyard.so.0 $(DESTDIR)$(PREFIX)/lib/libswitchyard.so
	install -m 644 include/switchyard.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' switchyard.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/switchyard.pc
	install -m 755 $(BUILD)/switchyard $(DESTDIR)$(PREFIX)/bin/

# libFuzzer targets (clang): one per parser or server state machine; each runs FUZZ_TIME
# seconds on its corpus (fuzz/corpus/<target>, not in git), which starts from the target's
# seeds in fuzz/seeds/<target> when there are any.
FUZZ_TIME ?= 30
FUZZ_SRCS := $(sort $(wildcard fuzz/*_fuzz.c))
fuzz:
	@command -v clang >/dev/null || apt-get install -y -qq clang libclang-rt-14-dev
	@mkdir -p build/fuzz
	@set -e; for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -Iinclude -Isrc -D_GNU_SOURCE $$f \
	    $(LIB_SRCS) -o build/fuzz/$$n -lnghttp2 -lssl -lcrypto -lz -lhiredis -pthread; \
	  mkdir -p fuzz/corpus/$$n; \
	  if [ -d fuzz/seeds/$$n ]; then cp -n fuzz/seeds/$$n/* fuzz/corpus/$$n/; fi; \
	  echo "== $$n ($(FUZZ_TIME)s)"; \
	  if ! build/fuzz/$$n -max_total_time=$(FUZZ_TIME) -print_final_stats=1 fuzz/corpus/$$n \
	      > build/fuzz/$$n.log 2>&1; then tail -n 40 build/fuzz/$$n.log; exit 1; fi; \
	  grep -E 'number_of_executed_units' build/fuzz/$$n.log; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
