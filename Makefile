# sandboxfs: one Makefile. `make` builds the daemon and sbx-init; `make check`
# runs every test; `make demo` sets up a fresh Debian 12 machine and runs the example.
CC      ?= cc
BUILD   := build
PKGS    := fuse3 liburcu liburcu-cds jansson libcap libmnl zlib libzstd
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Deferred (=, not :=): on a fresh machine `make demo` installs the -dev
# packages before anything links, so pkg-config must be asked at link time.
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer

ENGINE_SRC := $(wildcard engine/*.c)
VMM_SRC    := $(wildcard vmm/*.c)
NET_SRC    := $(wildcard net/*.c)
FS_SRC     := $(wildcard fs/*.c)
LIB_SRC    := $(ENGINE_SRC) $(VMM_SRC) $(NET_SRC)
DAEMON_SRC := $(FS_SRC) $(LIB_SRC)

# Each source is compiled once per flavour, with its header dependencies
# tracked (-MMD): build/obj/ for the daemon, build/obj-san/ (ASan/UBSan) for
# the unit tests, which link the engine as one static library.
OBJ        := $(BUILD)/obj
SAN_OBJ    := $(BUILD)/obj-san
SAN_LIB    := $(BUILD)/libsbx-san.a
DEPFLAGS    = -MMD -MP

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all image check unit integration bench demo deps clean stress tsan
# Objects made by pattern chains (the unit tests') are kept, not deleted as intermediates.
.SECONDARY:
all: $(BUILD)/sandboxfs $(BUILD)/sbx-init

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(SAN_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -O1 $(DEPFLAGS) -c -o $@ $<

$(BUILD)/sandboxfs: $(DAEMON_SRC:%.c=$(OBJ)/%.o)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(SAN_LIB): $(LIB_SRC:%.c=$(SAN_OBJ)/%.o)
	rm -f $@
	ar rcs $@ $^

-include $(shell find $(BUILD)/obj $(BUILD)/obj-san -name '*.d' 2>/dev/null)

# pid 1 of a sandbox: static, so it runs on any image.
# The seccomp filter is compiled once, at build time, to a BPF array.
$(BUILD)/gen-seccomp: vmm/init/gen-seccomp.c vmm/init/seccomp.c vmm/init/seccomp.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ vmm/init/gen-seccomp.c vmm/init/seccomp.c -lseccomp

$(BUILD)/seccomp_bpf.h: $(BUILD)/gen-seccomp
	$(BUILD)/gen-seccomp > $@.tmp && mv $@.tmp $@

$(BUILD)/sbx-init: vmm/init/sbx-init.c vmm/init/ids.c vmm/init/ids.h vmm/init/warm_script.h $(BUILD)/seccomp_bpf.h \
		net/link.c vmm/proto.h net/net.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -I$(BUILD) -static -o $@ vmm/init/sbx-init.c vmm/init/ids.c net/link.c -lcap

image: $(BUILD)/images/busybox/bin/busybox

# The realistic image: Debian 12 with python3 (mmdebstrap, from the host's
# apt sources). make check tries it and goes on without it when the archive
# cannot be reached (the tests that need it skip, saying why).
.PHONY: image-debian
image-debian: $(BUILD)/images/debian.stamp

$(BUILD)/images/debian.stamp: examples/mkimage-debian.sh
	examples/mkimage-debian.sh $(BUILD)/images/debian
	touch $@

$(BUILD)/images/busybox/bin/busybox: examples/mkimage-busybox.sh
	examples/mkimage-busybox.sh $(BUILD)/images/busybox

$(BUILD)/tests/test_%: $(SAN_OBJ)/tests/unit/test_%.o $(SAN_LIB)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(SAN) -O1 -o $@ $^ $(LDLIBS)

# The inode scheme is the FUSE layer's, but knows no FUSE: its test links it alone.
$(BUILD)/tests/test_inode: $(SAN_OBJ)/fs/inode.o

unit: $(UNIT_TESTS)

# The qemu guest (see the guest section at the end) when /boot has a kernel.
GUEST := $(BUILD)/guest
GUEST_FOR_CHECK := $(if $(wildcard /boot/vmlinuz-*),guest)
check: all image unit fuzz-replay $(GUEST_FOR_CHECK)
	-$(MAKE) image-debian
	tests/run.sh

# The long versions of the stress tests (make check runs short ones): 10 000
# race operations, a 60 s kill-and-restart load, a burst of 200, 60 s of
# hostile load beside well-behaved sandboxes (its latency table is printed and
# written to build/stress/hostile.md); then the kill suite again, until it
# ran KILL_RUNS times in a row (each run's count shows; any failure fails).
KILL_RUNS ?= 10
stress: all image
	RACE_OPS=10000 KILL_SECONDS=60 BURST_N=200 STRESS_SECONDS=60 \
		tests/run-bats.sh tests/stress/*.bats
	for i in $$(seq 2 $(KILL_RUNS)); do echo "# kill suite, run $$i of $(KILL_RUNS)"; \
		KILL_SECONDS=60 tests/run-bats.sh tests/stress/kill.bats || exit 1; done

# A ThreadSanitizer build of the daemon (build/tsan/sandboxfs, its sbx-init
# beside it): for races the ASan unit tests cannot see, such as a lock taken
# on freed memory inside glibc (what 9635e40 fixed). Run it as the daemon
# under a stress; TSAN_OPTIONS=halt_on_error=0 keeps it going.
tsan: $(BUILD)/sbx-init
	@mkdir -p $(BUILD)/tsan
	$(CC) $(CFLAGS) -O1 -fsanitize=thread -o $(BUILD)/tsan/sandboxfs $(DAEMON_SRC) $(LDLIBS)
	cp $(BUILD)/sbx-init $(BUILD)/tsan/sbx-init

# QUICK=1: the short run (under a minute); results land in bench/results/.
$(BUILD)/bench/registry_bench: bench/registry_bench.c engine/registry.c engine/registry.h
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) -o $@ bench/registry_bench.c engine/registry.c $(LDLIBS)

bench: all image $(BUILD)/bench/registry_bench
	QUICK=$(QUICK) bench/run.sh

deps:
	examples/install-deps.sh

# deps runs first, alone, whatever -j says: nothing else can build before it.
demo:
	examples/install-deps.sh
	$(MAKE) all image
	examples/demo.sh $(SBX_FLAGS)

clean:
	rm -rf $(BUILD)

# ---- networking smoke test (tests/net/) --------------------------------------
# Not part of `make check`: it needs root and creates (then removes) a bridge,
# veth pairs and network namespaces of its own, with random sbx* names and a
# private subnet; it never sends traffic to an address it did not create.
#   make netcheck                      # build the driver, run the smoke test
NETTOOL := $(BUILD)/tests/net/nettool

$(NETTOOL): tests/net/nettool.c engine/util.c engine/common.h $(NET_SRC) $(wildcard net/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ tests/net/nettool.c engine/util.c $(NET_SRC) $(LDLIBS)

.PHONY: netcheck
netcheck: $(NETTOOL)
	NETTOOL=$(NETTOOL) tests/net/netlink_smoke.sh

# ---- qemu backend guest (vmm/guest/, vmm/agent/) -----------------------------
# The qemu backend boots build/guest/vmlinux (Debian's linux-image-amd64 kernel,
# uncompressed so QEMU boots it through PVH) with build/guest/initrd.gz (the
# busybox image plus the static guest agent build/sbx-agent as /init).
# `make check` builds it when /boot has a Debian kernel; without one the qemu
# tests skip themselves.
AGENT_SRC := vmm/agent/sbx-agent.c vmm/agent/files.c vmm/init/ids.c net/link.c
$(BUILD)/sbx-agent: $(AGENT_SRC) vmm/agent/agent_proto.h vmm/agent/agent.h vmm/init/ids.h vmm/init/warm_script.h net/net.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -static -o $@ $(AGENT_SRC)

$(GUEST)/vmlinux: vmm/guest/mkvmlinux.sh
	@mkdir -p $(GUEST)
	vmm/guest/mkvmlinux.sh $@

$(GUEST)/initrd.gz: vmm/guest/mkinitrd.sh $(BUILD)/sbx-agent $(BUILD)/images/busybox/bin/busybox
	@mkdir -p $(GUEST)
	vmm/guest/mkinitrd.sh $(BUILD)/images/busybox $(BUILD)/sbx-agent $@

.PHONY: guest
guest: $(GUEST)/vmlinux $(GUEST)/initrd.gz

# ---- fuzzing (tests/fuzz/) ---------------------------------------------------
# libFuzzer targets for the parsers that read what a client, a sandbox or a
# guest wrote: fuzz_ctl (one write to a ctl file, either level), fuzz_options
# (names, key=value options, sizes, cpus, signals; engine/ctl.c), fuzz_event
# (sbx-init's event reports, vmm_read_event of vmm/vmm.c), fuzz_qmp (QEMU's QMP
# lines, vmm/qmp.c), fuzz_agent (the guest agent's frames and answer marker, the console line a failed boot shows,
# vmm/qemu.h), fuzz_agent_files (what the agent answers to files requests: a
# result, stat and list records, vmm/qemu_files.c), fuzz_journal (a sandbox's sandbox.json as a restarted daemon
# reads it, journal_parse of engine/journal_json.c), fuzz_tar (an image
# layer's tar stream, engine/tar.c), fuzz_oci (an OCI layout's index,
# manifest and image config JSON, an oci-archive's tar, a docker-archive's
# manifest.json and tar, engine/oci.c), fuzz_ids (a sandbox's /etc/passwd
# and /etc/group as sbx-init and sbx-agent read them for user=,
# vmm/init/ids.c), fuzz_files (the request line of NAME/files,
# ctl_files_request of engine/ctl.c) and fuzz_dns (a sandbox's DNS query and
# the upstream's answer as the daemon's forwarder reads them, rule names;
# net/dns.c). Seed corpora in
# tests/fuzz/corpus/<target>/ (inputs that once crashed stay there as
# regressions, and become unit tests).
#   make fuzz            # clang -fsanitize=fuzzer,address,undefined; each target
#                        # runs FUZZ_SECONDS (default 60); new inputs go to
#                        # build/fuzz/corpus/<target>/, crashes to build/fuzz/crash-*
#   make fuzz-replay     # no clang needed: the targets built with $(CC) and ASan/UBSan
#                        # plus tests/fuzz/replay.c run every corpus file once
#                        # (and build/fuzz/corpus/ too, when a fuzz run left one)
FUZZ_TARGETS := ctl options event qmp agent agent_files journal job tar oci ids files pull dns
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
# Each target links only the sources its parser needs (FUZZ_SRC_<target>).
# ctl.c parses rate= with net_parse_rate (net/shape.c): the net sources link
# standalone with util.c (as tests/net/nettool does). vmm.c links with the
# stubs in fuzz_event.c; qmp.c with util.c; the agent's framing is inline in
# vmm/qemu.h; the journal's reader with ctl.c (names, rules) and its sources;
# the tar reader with util.c (sentences); the OCI parsers with tar.c, sha256.c and ctl.c (users);
# the registry reference and skopeo's reasons (pull.c) with util.c.
FUZZ_SRC_ctl     := engine/ctl.c engine/util.c $(NET_SRC)
FUZZ_SRC_options := $(FUZZ_SRC_ctl)
FUZZ_SRC_event   := vmm/vmm.c engine/util.c
FUZZ_SRC_qmp     := vmm/qmp.c engine/util.c
FUZZ_SRC_agent   :=
FUZZ_SRC_agent_files := vmm/qemu_files.c engine/util.c
FUZZ_SRC_journal := engine/journal_json.c $(FUZZ_SRC_ctl)
FUZZ_SRC_job     := $(FUZZ_SRC_journal)
FUZZ_SRC_tar     := engine/tar.c engine/util.c
FUZZ_SRC_oci     := engine/oci.c engine/tar.c engine/sha256.c $(FUZZ_SRC_ctl)
FUZZ_SRC_ids     := vmm/init/ids.c
FUZZ_SRC_files   := $(FUZZ_SRC_ctl)
FUZZ_SRC_pull    := engine/pull.c engine/util.c
FUZZ_SRC_dns     := net/dns.c
FUZZ_HDRS    := $(wildcard engine/*.h) $(wildcard net/*.h) $(wildcard vmm/*.h) \
		vmm/agent/agent_proto.h vmm/init/ids.h

define FUZZ_RULES
$$(BUILD)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $$(FUZZ_SRC_$(1)) $$(FUZZ_HDRS)
	@mkdir -p $$(BUILD)/fuzz
	$$(FUZZ_CC) -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined $$(shell pkg-config --cflags $$(PKGS) 2>/dev/null) \
		-o $$@ $$< $$(FUZZ_SRC_$(1)) $$(LDLIBS)

$$(BUILD)/tests/replay_fuzz_$(1): tests/fuzz/fuzz_$(1).c tests/fuzz/replay.c $$(FUZZ_SRC_$(1)) $$(FUZZ_HDRS)
	@mkdir -p $$(BUILD)/tests
	$$(CC) $$(CFLAGS) $$(SAN) -fno-sanitize-recover=undefined -O1 -o $$@ $$< \
		tests/fuzz/replay.c $$(FUZZ_SRC_$(1)) $$(LDLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))

.PHONY: fuzz fuzz-replay
fuzz: $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$t; \
		echo "fuzz $$t: $(FUZZ_SECONDS) s (log: $(BUILD)/fuzz/$$t.log)"; \
		rc=0; $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4200 \
			-artifact_prefix=$(BUILD)/fuzz/crash-$$t- -print_final_stats=1 \
			$(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t >$(BUILD)/fuzz/$$t.log 2>&1 || rc=$$?; \
		grep -E '^stat::(number_of_executed_units|new_units_added)|^SUMMARY|contract broken|^artifact_prefix|Test unit written' \
			$(BUILD)/fuzz/$$t.log || true; \
		test $$rc -eq 0; \
	done

fuzz-replay: $(patsubst %,$(BUILD)/tests/replay_fuzz_%,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		$(BUILD)/tests/replay_fuzz_$$t tests/fuzz/corpus/$$t \
			$$(test -d $(BUILD)/fuzz/corpus/$$t && echo $(BUILD)/fuzz/corpus/$$t); \
	done

# ---- the fresh-machine test (tests/fresh/) -----------------------------------
# The honest test of the two commands above: builds a minimal Debian 12 root
# with mmdebstrap, clones the committed HEAD into it (uncommitted changes are
# not tested), runs `make demo` then `make check` there in private namespaces,
# prints both results and removes everything it made (KEEP=1 keeps the root).
# Not part of `make check`: it needs root and Debian's archive, and takes about
# 25 minutes on 2 cores. See the head of tests/fresh/run.sh.
.PHONY: fresh
fresh:
	tests/fresh/run.sh
