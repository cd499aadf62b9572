/* Proof that KVM runs guests here, before the qemu backend relies on it: a
 * /dev/kvm node proves nothing (a nested host's kvm_pvm opens, creates VMs,
 * and still runs no stock guest). */
#ifndef SBX_KVM_H
#define SBX_KVM_H

struct err;

/* Runs a tiny real-mode guest on DEV (normally /dev/kvm): one vCPU executes
 * `mov al, 42; out 0x10, al; hlt`, and the probe expects that OUT, then the
 * HLT exit. The guest runs in a child process that is killed after
 * timeout_ms, so a KVM that hangs cannot hang the caller. Returns 0 when the
 * guest ran as expected, else -errno with the reason in e. Call it from a
 * single-threaded process (it forks). */
int kvm_probe(const char *dev, int timeout_ms, struct err *e);

#endif
