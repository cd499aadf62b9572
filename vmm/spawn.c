/* Spawning a process into new namespaces from a multi-threaded daemon, the
 * way posix_spawn does it: clone3 with CLONE_VM|CLONE_VFORK on a small stack
 * of its own, so the daemon's address space is shared, not copied (measured:
 * a fork-style clone3 of the daemon took several ms; page-table copies grow
 * with the daemon's size). The child only sets up fds and execs. */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm.h"

#define SPAWN_STACK_SIZE (64 * 1024)

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

/* Runs in the child, on its own stack, sharing the daemon's memory until
 * execve: raw syscalls only, nothing that takes a lock or touches errno. Its
 * own fd table (no CLONE_FILES): it gets the fds asked for and nothing else
 * the daemon holds or inherited, close-on-exec or not. */
static int exec_child(void *p)
{
	const struct vmm_exec *x = p;
	static char *const envp[] = {NULL};
	sigset_t none;
	sigemptyset(&none);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(long));
	for (int i = 0; i < x->nfds; i++) {
		if (x->fds[i] == i) /* dup2 onto itself would keep O_CLOEXEC */
			syscall(SYS_fcntl, i, F_SETFD, 0);
		else
			syscall(SYS_dup2, x->fds[i], i);
	}
	syscall(SYS_close_range, (unsigned)x->nfds, ~0u, 0u);
	syscall(SYS_execve, x->path, x->argv, envp);
	return 127;
}

pid_t vmm_spawn_exec(struct clone_args *ca, const struct vmm_exec *x)
{
	return vmm_spawn(ca, exec_child, (void *)x);
}
