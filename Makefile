# sectorlab: build, test and run.  `make help` lists the targets.
#
# Layout: src/<module>.c pairs with include/sectorlab/<module>.h.  Everything
# except src/ui_*.c and src/main.c builds into build/libsectorlab.a, which the
# program, the tests and the benchmarks all link.

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
WERROR  ?= 0
BUILD   ?= build

PKGS     := ncursesw openblas libpng zlib cmocka
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ifeq ($(WERROR),1)
WARN += -Werror
endif

ALL_CFLAGS := $(WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -Iinclude $(PKG_CFLAGS) \
	-DSECTORLAB_DATADIR='"$(PREFIX)/share/sectorlab/data"' \
	-DSECTORLAB_LESSONDIR='"$(PREFIX)/share/sectorlab/lessons"' $(EXTRA_CFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -ldsdp -lpthread -lm $(EXTRA_LDFLAGS)

CORE_SRC := $(filter-out src/ui_%.c src/cmd_%.c src/main.c,$(wildcard src/*.c))
APP_SRC  := $(wildcard src/ui_*.c src/cmd_*.c) src/main.c
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard tests/bench_*.c)

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
APP_OBJ  := $(APP_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      := $(BUILD)/libsectorlab.a
PROG     := $(BUILD)/sectorlab

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

.SECONDARY:

.PHONY: all run test sanitize tsan bench lint deps deps-test data install clean help fuzz fuzz-build

all: $(PROG)

help:
	@echo "make deps      install the Debian packages sectorlab needs (apt-get)"
	@echo "make deps-test also python3-torch, the interop tests' peer (CI runs them)"
	@echo "make           build $(PROG)"
	@echo "make run       build and open the lab on the embedded MNIST sample"
	@echo "make test      build and run the test suite (WERROR=1 for -Werror)"
	@echo "make sanitize  the test suite under AddressSanitizer + UBSan"
	@echo "make tsan      the threaded tests under ThreadSanitizer"
	@echo "make fuzz      fuzz every reader of outside bytes (FUZZ_SECONDS each, or FUZZ_RUNS executions; FUZZ_TARGETS picks)"
	@echo "make bench     speed benchmarks"
	@echo "make lint      check the core stays free of curses"
	@echo "make data      download full MNIST and CIFAR-10 into data/mnist/, data/cifar-10-batches-bin/"
	@echo "make install   install the program under PREFIX (default /usr/local)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The installed data and lesson directories are compiled into cmd_util.o and
# cmd_lab.o: rebuild them when PREFIX changes.
$(BUILD)/prefix.stamp: FORCE
	@mkdir -p $(BUILD); echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' > $@
$(BUILD)/src/cmd_util.o $(BUILD)/src/cmd_lab.o: $(BUILD)/prefix.stamp
FORCE:

$(LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(PROG): $(APP_OBJ) $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(APP_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/testutil.o $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/tests/testutil.o $(LIB) $(LDLIBS)

# Tests of a command-layer module link its object too (the library holds
# only the core).
$(BUILD)/tests/test_cmd_progress: $(BUILD)/tests/test_cmd_progress.o \
		$(BUILD)/tests/testutil.o $(BUILD)/src/cmd_progress.o $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

# The lab's latency benchmark drives the screens themselves: it links the
# interface's objects (all but main).
BENCH_APP_OBJ := $(filter-out $(BUILD)/src/main.o,$(APP_OBJ))
$(BUILD)/tests/bench_ui: $(BUILD)/tests/bench_ui.o $(BUILD)/tests/testutil.o $(BENCH_APP_OBJ) $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/tests/testutil.o $(BENCH_APP_OBJ) $(LIB) \
		$(LDLIBS)

run: $(PROG)
	./$(PROG)

test: $(PROG) $(TEST_BIN)
	@sh tests/run.sh $(TEST_BIN)

sanitize:
	$(MAKE) BUILD=build/sanitize CC=clang CFLAGS="$(SAN_FLAGS)" \
		EXTRA_LDFLAGS="-fsanitize=address,undefined" test

# ThreadSanitizer over the code that shares memory between threads: the
# training worker with its snapshots and cancel flag (test_train), the lab's lanes
# side by side (test_lab), the
# network's thread team (test_nn), tasks (test_task) and the gallery's work on
# them (test_gallery).
TSAN_TESTS := test_train test_nn test_lab test_task test_gallery
tsan:
	$(MAKE) BUILD=build/tsan CC=clang CFLAGS="-O1 -g -fsanitize=thread" \
		EXTRA_LDFLAGS="-fsanitize=thread" $(TSAN_TESTS:%=build/tsan/tests/%)
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
		sh tests/run.sh $(TSAN_TESTS:%=build/tsan/tests/%)

bench: $(PROG) $(BENCH_BIN)
	@for b in $(BENCH_BIN); do ./$$b || exit 1; done

# Fuzzing (libFuzzer, clang): every reader of outside bytes, FUZZ_SECONDS each.
# Seeds live in tests/fuzz/seed/<target>/; what the fuzzer finds stays in
# build/fuzz/corpus/.  A crash leaves its input in build/fuzz/ for a regression test.
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?=
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIMIT   := $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%)
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all

fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang CFLAGS="$(FUZZ_FLAGS)" fuzz-build
	@for n in $(FUZZ_TARGETS); do t=fuzz_$$n; opts=; \
		case $$n in args) opts=-close_fd_mask=3;; config) opts=-close_fd_mask=2;; esac; \
		mkdir -p build/fuzz/corpus/$$n; \
		echo "== $$t ($(FUZZ_LIMIT))"; \
		(cd build/fuzz && ./$$t corpus/$$n ../../tests/fuzz/seed/$$n \
			$(FUZZ_LIMIT) -timeout=10 -rss_limit_mb=2048 \
			$$opts -print_final_stats=1 2>&1 | tee fuzz_$$n.log | \
			grep -E '^(stat::number_of_executed_units|stat::peak_rss|#[0-9]+.DONE|Done|==[0-9]+==ERROR|SUMMARY)' ) || exit 1; \
	done

fuzz-build: $(FUZZ_BIN)

FUZZ_APP_OBJ := $(filter-out $(BUILD)/src/main.o,$(APP_OBJ))
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(LIB) $(FUZZ_APP_OBJ)
	$(CC) $(ALL_CFLAGS) -Itests/fuzz -fsanitize=fuzzer,address,undefined -o $@ $< \
		$(FUZZ_APP_OBJ) $(LIB) $(LDLIBS)

lint:
	@bad=$$(grep -lE '#include *[<"](n)?curses' src/*.c include/sectorlab/*.h | grep -v '^src/ui_' || true); \
	if [ -n "$$bad" ]; then echo "curses outside src/ui_*.c: $$bad"; exit 1; fi; \
	echo "lint: the core is free of curses"

deps:
	@sh .ci/deps.sh

deps-test:
	@sh .ci/deps.sh test

data:
	@sh data/fetch.sh data

install: $(PROG)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sectorlab/data \
		$(DESTDIR)$(PREFIX)/share/sectorlab/lessons
	install -m 755 $(PROG) $(DESTDIR)$(PREFIX)/bin/sectorlab
	install -m 644 data/*.gz $(DESTDIR)$(PREFIX)/share/sectorlab/data/
	install -m 644 assets/lessons/*.conf $(DESTDIR)$(PREFIX)/share/sectorlab/lessons/

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
