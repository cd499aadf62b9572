/* The KVM probe (see kvm.h): a child process creates a VM, maps one page of
 * code, runs it to HLT and reports over a pipe what went wrong, if anything. */
#define _GNU_SOURCE
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm.h"

#define GUEST_ADDR 0x1000
#define PROBE_PORT 0x10
#define PROBE_VALUE 42

/* In the child: the failed step and its errno on the pipe, then exit. */
static __attribute__((noreturn)) void fail(int fd, const char *step, int err)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "%s: %s", step, err ? strerror(err) : "unexpected result");
	if (n > 0 && write(fd, msg, (size_t)n) < 0)
		_exit(2);
	_exit(1);
}

static __attribute__((noreturn)) void run_guest(const char *dev, int out)
{
	static const unsigned char code[] = {0xb0, PROBE_VALUE, 0xe6, PROBE_PORT, 0xf4};
	int kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		fail(out, "open", errno);
	int v = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (v < 0)
		fail(out, "KVM_GET_API_VERSION", errno);
	if (v != KVM_API_VERSION)
		fail(out, "KVM_GET_API_VERSION (not 12)", 0);
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		fail(out, "KVM_CREATE_VM", errno);
	void *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		fail(out, "mmap", errno);
	memcpy(mem, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = GUEST_ADDR, .memory_size = 0x1000,
		.userspace_addr = (uint64_t)(uintptr_t)mem};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		fail(out, "KVM_SET_USER_MEMORY_REGION", errno);
	int cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (cpu < 0)
		fail(out, "KVM_CREATE_VCPU", errno);
	int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		fail(out, "KVM_GET_VCPU_MMAP_SIZE", size < 0 ? errno : 0);
	struct kvm_run *run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
	if (run == MAP_FAILED)
		fail(out, "mmap of the vCPU", errno);
	struct kvm_sregs sregs;
	if (ioctl(cpu, KVM_GET_SREGS, &sregs) < 0)
		fail(out, "KVM_GET_SREGS", errno);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(cpu, KVM_SET_SREGS, &sregs) < 0)
		fail(out, "KVM_SET_SREGS", errno);
	struct kvm_regs regs = {.rip = GUEST_ADDR, .rflags = 0x2};
	if (ioctl(cpu, KVM_SET_REGS, &regs) < 0)
		fail(out, "KVM_SET_REGS", errno);
	bool saw_out = false;
	for (int i = 0; i < 8; i++) {
		if (ioctl(cpu, KVM_RUN, 0) < 0)
			fail(out, "KVM_RUN", errno);
		if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.port == PROBE_PORT && run->io.size == 1 &&
		    *((unsigned char *)run + run->io.data_offset) == PROBE_VALUE) {
			saw_out = true;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT && saw_out)
			_exit(0);
		char step[64];
		snprintf(step, sizeof(step), "KVM_RUN exit reason %u", run->exit_reason);
		fail(out, step, 0);
	}
	fail(out, "KVM_RUN never reached hlt", 0);
}

int kvm_probe(const char *dev, int timeout_ms, struct err *e)
{
	if (access(dev, F_OK) < 0)
		return err_set(e, -ENOENT, "no %s on this host", dev);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(p[0]);
		close(p[1]);
		return err_set(e, r, "fork: %s", strerror(-r));
	}
	if (pid == 0) {
		close(p[0]);
		run_guest(dev, p[1]);
	}
	close(p[1]);
	/* The child's exit closes the pipe: read its sentence until then. */
	char why[256];
	size_t len = 0;
	bool timed_out = false;
	uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
	for (;;) {
		uint64_t now = now_usec();
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int r = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		ssize_t n = read(p[0], why + len, sizeof(why) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(why) - 1)
			break;
	}
	why[len] = '\0';
	close(p[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		return err_set(e, -ETIMEDOUT, "a test guest on %s did not reach hlt in %d ms", dev,
			       timeout_ms);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (!why[0])
		snprintf(why, sizeof(why), "the probe process %s %d",
			 WIFSIGNALED(status) ? "died of signal" : "exited with",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return err_set(e, -ENODEV, "a test guest on %s failed: %s", dev, why);
}
