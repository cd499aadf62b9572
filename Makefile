# sandboxfs: one Makefile. `make` builds the daemon and sbx-init; `make check`
# runs every test; `make demo` sets up a fresh Debian 12 machine and runs the example.
CC      ?= cc
BUILD   := build
PKGS    := fuse3 liburcu liburcu-cds jansson libcap libmnl
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer

ENGINE_SRC := $(wildcard engine/*.c)
VMM_SRC    := $(wildcard vmm/*.c)
NET_SRC    := $(wildcard net/*.c)
FS_SRC     := fs/main.c fs/fsx.c fs/files.c
DAEMON_SRC := $(FS_SRC) $(ENGINE_SRC) $(VMM_SRC) $(NET_SRC)
HDRS       := $(wildcard engine/*.h vmm/*.h net/*.h fs/*.h)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all image check unit integration bench demo deps clean
all: $(BUILD)/sandboxfs $(BUILD)/sbx-init

$(BUILD)/sandboxfs: $(DAEMON_SRC) $(HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ $(DAEMON_SRC) $(LDLIBS)

# pid 1 of a sandbox: static, so it runs on any image.
# The seccomp filter is compiled once, at build time, to a BPF array.
$(BUILD)/gen-seccomp: vmm/init/gen-seccomp.c vmm/init/seccomp.c vmm/init/seccomp.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ vmm/init/gen-seccomp.c vmm/init/seccomp.c -lseccomp

$(BUILD)/seccomp_bpf.h: $(BUILD)/gen-seccomp
	$(BUILD)/gen-seccomp > $@.tmp && mv $@.tmp $@

$(BUILD)/sbx-init: vmm/init/sbx-init.c $(BUILD)/seccomp_bpf.h net/link.c vmm/proto.h net/net.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -I$(BUILD) -static -o $@ vmm/init/sbx-init.c net/link.c -lcap

image: $(BUILD)/images/busybox/bin/busybox

$(BUILD)/images/busybox/bin/busybox: examples/mkimage-busybox.sh
	examples/mkimage-busybox.sh $(BUILD)/images/busybox

$(BUILD)/tests/test_%: tests/unit/test_%.c $(ENGINE_SRC) $(VMM_SRC) $(NET_SRC) $(HDRS) tests/unit/unit.h
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(SAN) -O1 -o $@ $< $(ENGINE_SRC) $(VMM_SRC) $(NET_SRC) $(LDLIBS)

unit: $(UNIT_TESTS)

check: all image unit
	tests/run.sh

# QUICK=1: the short run (under a minute); results land in bench/results/.
$(BUILD)/bench/registry_bench: bench/registry_bench.c engine/registry.c engine/registry.h
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) -o $@ bench/registry_bench.c engine/registry.c $(LDLIBS)

bench: all image $(BUILD)/bench/registry_bench
	QUICK=$(QUICK) bench/run.sh

deps:
	examples/install-deps.sh

demo: deps all image
	examples/demo.sh

clean:
	rm -rf $(BUILD)
