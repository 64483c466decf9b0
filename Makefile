# Detour build. `make` builds build/bin/*; `make check` installs what is
# missing, builds and runs every test; `make demo` runs the demo lab.
#
# Layout: src/*.c is the library (one module per SPEC concept), cmd/PROG/*.c
# are the programs, tests/unit/test_*.c unit tests (cmocka), fuzz/fuzz_*.c
# libFuzzer targets, bench/ benchmarks.

CC      ?= gcc
BUILD   ?= build
SAN     ?=
OPT     ?= -O3
# link-time optimization: the packet walk crosses modules (datapath, proxies,
# service plane, parsers) on every packet; about 8% fewer instructions per
# packet through a chain (bench/callgrind.sh). Off for the sanitizer and
# clang builds.
LTO     ?= -flto=auto
CFLAGS  ?= $(OPT) -g
ARCH    := $(shell uname -m)
ifeq ($(ARCH),x86_64)
ARCHFLAGS := -msse4.2
endif
CFLAGS  += $(ARCHFLAGS) $(LTO)
CFLAGS  += -std=c17 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -MMD -MP $(SAN)
LDFLAGS += $(SAN) $(LTO) $(if $(LTO),$(OPT))
LDLIBS  += -lyaml -ljansson -lpthread -lm -lxdp -lbpf -lurcu-qsbr -lurcu-common -lmnl

PROGS   := detourd detourctl detour-sn detour-lab
LIB_SRC := $(wildcard src/*.c)
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
LIB     := $(BUILD)/libdetour.a
BINS    := $(PROGS:%=$(BUILD)/bin/%)
TEST_SRC := $(wildcard tests/unit/test_*.c)
TESTS   := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCHES := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

.PHONY: all deps check demo clean unit asan fuzz fuzz-smoke e2e bench clang
all: $(BINS) $(TESTS) $(BENCHES)

deps:
	@bash scripts/install-deps.sh

# Everything is rebuilt when the compiler or its flags change (a stamp file
# rewritten only when they differ from the last build's).
FLAGS_STAMP := $(BUILD)/flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/obj/%.o: src/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# XDP programs: bpf/NAME.c -> build/bpf/NAME.o (BPF target) -> build/bpf/NAME.h,
# a C array that src/io_afxdp.c embeds (the daemon needs no file at run time).
BPF_SRC := $(wildcard bpf/*.c)
BPF_HDR := $(BPF_SRC:bpf/%.c=build/bpf/%.h)
.SECONDARY: $(BPF_SRC:bpf/%.c=build/bpf/%.o)
build/bpf/%.o: bpf/%.c
	@mkdir -p $(dir $@)
	clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c $< -o $@
build/bpf/%.h: build/bpf/%.o
	cd build/bpf && xxd -i -n $*_bpf_o $*.o | sed -e 's/^unsigned char \(.*\)\[\] = {/static const unsigned char \1[] __attribute__((aligned(8))) = {/' -e 's/^unsigned int/static const unsigned int/' > $*.h.tmp && mv $*.h.tmp $*.h
$(BUILD)/obj/io_afxdp.o $(BUILD)/obj/steer_bpf.o: $(BPF_HDR)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

define prog_rule
$(1)_SRC := $$(wildcard cmd/$(1)/*.c)
$(1)_OBJ := $$($(1)_SRC:cmd/%.c=$(BUILD)/cmd/%.o)
$(BUILD)/bin/$(1): $$($(1)_OBJ) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))

$(BUILD)/cmd/%.o: cmd/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icmd -c $< -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) -lcmocka $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Sanitizer build of the library, programs and unit tests (clang or gcc).
asan:
	$(MAKE) BUILD=build-asan OPT=-O1 LTO= SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all

# The same sources with clang, warnings as errors.
clang:
	$(MAKE) BUILD=build-clang CC=clang LTO= all

# libFuzzer targets (clang): one binary per fuzz/fuzz_*.c.
FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := $(ARCHFLAGS) -std=c17 -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz: $(BPF_HDR)
	@mkdir -p $(FUZZ_BUILD)
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "  FUZZ $$n"; clang $(FUZZ_CFLAGS) -o $(FUZZ_BUILD)/$$n $$f $(filter-out src/main.c,$(LIB_SRC)) $(LDLIBS); done

unit: $(TESTS)
	@tests/run-unit.sh $(BUILD)

check: deps
	@bash tests/check.sh

demo: deps all
	@bash scripts/demo.sh

bench: $(BENCHES)
	@for b in $(BENCHES); do $$b; done

clean:
	rm -rf build build-asan build-clang build-fuzz

-include $(LIB_OBJ:.o=.d) $(wildcard $(BUILD)/cmd/*/*.d)
