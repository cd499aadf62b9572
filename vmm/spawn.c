/* Spawning a process into new namespaces from a multi-threaded daemon, the
 * way posix_spawn does it: clone3 with CLONE_VM|CLONE_VFORK on a small stack
 * of its own, so the daemon's address space is shared, not copied (measured:
 * a fork-style clone3 of the daemon took several ms; page-table copies grow
 * with the daemon's size). The child only sets up fds and execs.
 *
 * Nor is the daemon's fd table copied: it holds a few fds per sandbox (5 000
 * at 1 000 live), and a child with a copy of it paid for every entry twice,
 * at the copy and at the close of all it does not keep (a spawn took 1.0 ms
 * at 5 000 fds against 0.3 ms at 10, measured on its own). The child shares
 * the table (CLONE_FILES) and unshares it with close_range's
 * CLOSE_RANGE_UNSHARE, which copies only the fds below the range: the
 * spawn's fds are first dup'd onto slots, low fds reserved at the daemon's
 * start, so that the copy is the few fds below the slots' end. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm.h"

#define SPAWN_STACK_SIZE (64 * 1024)
/* Spawns whose fds can be on slots at once; more wait for a block. */
#define SPAWN_BLOCKS 4

static struct {
	pthread_once_t once;
	int null_fd;   /* what a slot holds between spawns; -1: no slots */
	unsigned end;  /* one above the highest slot */
	int fd[SPAWN_BLOCKS][VMM_EXEC_FDS];
	pthread_mutex_t lock[SPAWN_BLOCKS];
} slots = {.once = PTHREAD_ONCE_INIT, .null_fd = -1};

/* The slots: /dev/null on the lowest free fds at or above VMM_EXEC_FDS (a
 * slot is never a number the child sets from another slot). */
static void slots_make(void)
{
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC), max = -1;
	for (int b = 0; b < SPAWN_BLOCKS; b++) {
		pthread_mutex_init(&slots.lock[b], NULL);
		for (int i = 0; i < VMM_EXEC_FDS; i++) {
			int fd = null_fd < 0 ? -1 : fcntl(null_fd, F_DUPFD_CLOEXEC, VMM_EXEC_FDS);
			if (fd < 0) {
				log_warn("no spawn slots (%s): a spawn copies the daemon's fd table",
					 strerror(errno));
				if (null_fd >= 0)
					close(null_fd);
				return; /* the slots made stay open, unused */
			}
			slots.fd[b][i] = fd;
			max = fd > max ? fd : max;
		}
	}
	slots.end = (unsigned)max + 1;
	slots.null_fd = null_fd;
}

void vmm_spawn_init(void)
{
	pthread_once(&slots.once, slots_make);
}

#if defined(__x86_64__)
/* glibc has no clone3 wrapper that runs a function on a new stack; the child
 * must not return into the caller's frame, so it calls fn and exits here. */
static long clone3_call(struct clone_args *ca, int (*fn)(void *), void *arg)
{
	long ret;
	register int (*r12)(void *) __asm__("r12") = fn;
	register void *r13 __asm__("r13") = arg;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "mov %%eax, %%edi\n\t"
			 "mov $60, %%eax\n\t" /* exit */
			 "syscall\n\t"
			 "hlt\n\t"
			 "1:\n\t"
			 : "=a"(ret)
			 : "a"((long)SYS_clone3), "D"(ca), "S"(sizeof(*ca)), "r"(r12), "r"(r13)
			 : "rcx", "r11", "memory");
	return ret;
}
#endif

pid_t vmm_spawn(struct clone_args *ca, int (*fn)(void *), void *arg)
{
	sigset_t all, old;
	/* No daemon signal handler may run on the child's stack before exec. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	long pid;
#if defined(__x86_64__)
	void *stack = malloc(SPAWN_STACK_SIZE);
	if (!stack) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return -ENOMEM;
	}
	ca->flags |= CLONE_VM | CLONE_VFORK;
	ca->stack = (uint64_t)(uintptr_t)stack;
	ca->stack_size = SPAWN_STACK_SIZE;
	pid = clone3_call(ca, fn, arg);
	free(stack); /* CLONE_VFORK: the child has exec'd or exited by now */
#else
	pid = syscall(SYS_clone3, ca, sizeof(*ca));
	if (pid == 0)
		_exit(fn(arg));
#endif
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return pid >= -4095 ? (pid_t)pid : -errno;
	return (pid_t)pid;
}

/* A spawn's fds on a block of slots (slot[i] becomes fd i), or none. */
struct spawn_exec {
	const struct vmm_exec *x;
	const int *slot;
};

/* Runs in the child, on its own stack, sharing the daemon's memory until
 * execve: raw syscalls only, nothing that takes a lock or touches errno. Its
 * own fd table: a copy of the fds below the slots' end (CLONE_FILES until
 * then: nothing may change in the table before it is the child's own), or
 * of all of them without slots. It gets the fds asked for and nothing else
 * the daemon holds or inherited, close-on-exec or not. */
static int exec_child(void *p)
{
	const struct spawn_exec *se = p;
	const struct vmm_exec *x = se->x;
	static char *const envp[] = {NULL};
	sigset_t none;
	sigemptyset(&none);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(long));
	if (se->slot && syscall(SYS_close_range, slots.end, ~0u, CLOSE_RANGE_UNSHARE) < 0)
		return 126; /* the table is still the daemon's */
	for (int i = 0; i < x->nfds; i++) {
		if (se->slot)
			syscall(SYS_dup2, se->slot[i], i);
		else if (x->fds[i] == i) /* dup2 onto itself would keep O_CLOEXEC */
			syscall(SYS_fcntl, i, F_SETFD, 0);
		else
			syscall(SYS_dup2, x->fds[i], i);
	}
	syscall(SYS_close_range, (unsigned)x->nfds, ~0u, 0u);
	syscall(SYS_execve, x->path, x->argv, envp);
	return 127;
}

#if defined(__x86_64__) /* only a CLONE_VFORK spawn holds its slots until the exec */
/* A free block of slots, locked (the caller's when all are taken); -1: no slots. */
static int block_take(void)
{
	if (slots.null_fd < 0)
		return -1;
	for (int b = 0; b < SPAWN_BLOCKS; b++)
		if (pthread_mutex_trylock(&slots.lock[b]) == 0)
			return b;
	int b = (int)((uintptr_t)pthread_self() / 64 % SPAWN_BLOCKS);
	pthread_mutex_lock(&slots.lock[b]);
	return b;
}

/* Block b's first n slots let go of what they held (a socket's end, a
 * pipe's), and the block is free again. */
static void block_put(int b, int n)
{
	for (int i = 0; i < n; i++)
		dup3(slots.null_fd, slots.fd[b][i], O_CLOEXEC);
	pthread_mutex_unlock(&slots.lock[b]);
}
#endif

pid_t vmm_spawn_exec(struct clone_args *ca, const struct vmm_exec *x)
{
	struct spawn_exec se = {.x = x};
#if defined(__x86_64__) /* CLONE_VFORK: the slots are the child's until it execs */
	vmm_spawn_init();
	int b = block_take();
	for (int i = 0; b >= 0 && i < x->nfds; i++) {
		if (dup3(x->fds[i], slots.fd[b][i], O_CLOEXEC) < 0) {
			int r = -errno;
			block_put(b, i);
			return r;
		}
	}
	if (b >= 0) {
		se.slot = slots.fd[b];
		ca->flags |= CLONE_FILES;
	}
#endif
	pid_t pid = vmm_spawn(ca, exec_child, &se);
#if defined(__x86_64__)
	if (b >= 0)
		block_put(b, x->nfds);
#endif
	return pid;
}
