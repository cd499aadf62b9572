/* Unit tests of helpers every backend shares (vmm/vmm.c): vmm_renice sets
 * every thread of a process, not its main thread alone (a warm pool's
 * member's QEMU runs its vCPUs on threads of their own), the name of a
 * guest RAM file, the trash (vmm/trash.c) closing the fd an entry is
 * put with (a removed sandbox's mount namespace) and removing the entry,
 * and vmm_spawn_exec's fds (vmm/spawn.c): the child gets those asked for
 * and nothing of a large table, and the slots they passed through let go. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../engine/common.h"
#include "../../vmm/vmm.h"
#include "unit.h"

#define CHILD_THREADS 3

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* A child with CHILD_THREADS threads beside its main one; it writes a byte
 * on ready once they all run. */
static pid_t threaded_child(int ready)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	pthread_t t;
	for (int i = 0; i < CHILD_THREADS; i++)
		if (pthread_create(&t, NULL, sleeper, NULL) != 0)
			_exit(1);
	if (write(ready, "x", 1) != 1)
		_exit(1);
	sleeper(NULL);
	_exit(0);
}

/* Threads of pid, and how many of them have nice value want. */
static int count_threads(pid_t pid, int want, int *with)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	int n = 0;
	*with = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		n++;
		errno = 0;
		int v = getpriority(PRIO_PROCESS, (id_t)atoi(de->d_name));
		*with += errno == 0 && v == want;
	}
	if (d)
		closedir(d);
	return n;
}

static void test_renice_every_thread(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = threaded_child(p[1]);
	CHECK(pid > 0);
	char c;
	CHECK(read(p[0], &c, 1) == 1);
	int with;
	CHECK(count_threads(pid, 0, &with) == CHILD_THREADS + 1);
	CHECK(vmm_renice(pid, 7) == 0);
	CHECK(count_threads(pid, 7, &with) == CHILD_THREADS + 1 && with == CHILD_THREADS + 1);
	/* Back down needs CAP_SYS_NICE (the daemon runs as root). */
	int r = vmm_renice(pid, 0);
	if (r == -EACCES || r == -EPERM)
		printf("# back to nice 0 refused here: %s\n", strerror(-r));
	else
		CHECK(r == 0 && count_threads(pid, 0, &with) == CHILD_THREADS + 1 &&
		      with == CHILD_THREADS + 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(vmm_renice(pid, 0) == -ENOENT); /* gone: its /proc dir too */
	close(p[0]);
	close(p[1]);
}

static void test_ram_path(void)
{
	struct vmm_host h = {.tag = "t1"};
	char out[PATH_MAX];
	vmm_host_set(&h);
	vmm_ram_path(".p3-7", out, sizeof(out));
	CHECK(strcmp(out, "/dev/shm/sandboxfs-t1-.p3-7.ram") == 0);
}

/* Whether the other end of the pipe whose read end is fd was closed, within ms. */
static bool closed_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	return poll(&p, 1, ms) == 1 && read(fd, &c, 1) == 0;
}

static void test_trash_held(void)
{
	char root[] = "/tmp/sbx-unit-trash.XXXXXX", trash[PATH_MAX], dir[PATH_MAX],
	     file[PATH_MAX + 8];
	CHECK(mkdtemp(root) != NULL);
	snprintf(trash, sizeof(trash), "%s/trash", root);
	snprintf(dir, sizeof(dir), "%s/sbx", root);
	snprintf(file, sizeof(file), "%s/f", dir);
	struct err e = {0};
	CHECK(vmm_trash_start(trash, &e) == 0);
	CHECK(mkdir(dir, 0700) == 0 && write_file_atomic(file, "x", 1, false) == 0);
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(vmm_trash_held(dir, p[1], &e) == 0);
	CHECK(access(dir, F_OK) < 0 && errno == ENOENT); /* its name is free at once */
	CHECK(closed_within(p[0], 10000));               /* the thread closed it */
	for (int i = 0; i < 1000 && vmm_trash_pending(); i++)
		usleep(10000);
	CHECK(vmm_trash_pending() == 0);
	close(p[0]);
	/* Nothing to put: the fd is closed all the same. */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(vmm_trash_held(dir, p[1], &e) == 0);
	CHECK(closed_within(p[0], 0));
	close(p[0]);
	vmm_trash_stop();
	/* No trash: removed here, the fd closed here. */
	CHECK(mkdir(dir, 0700) == 0 && pipe2(p, O_CLOEXEC) == 0);
	CHECK(vmm_trash_held(dir, p[1], &e) == 0);
	CHECK(closed_within(p[0], 0) && access(dir, F_OK) < 0);
	close(p[0]);
	CHECK(rmdir(trash) == 0 && rmdir(root) == 0); /* the trash left nothing */
}

/* The thread waits for puts to be quiet before a pass, bounded: a steady
 * stream of puts (one each 5 ms, quieter never) still has its entries
 * removed while it goes on. */
static void test_trash_stream(void)
{
	char root[] = "/tmp/sbx-unit-trash.XXXXXX", trash[PATH_MAX], dir[PATH_MAX];
	CHECK(mkdtemp(root) != NULL);
	snprintf(trash, sizeof(trash), "%s/trash", root);
	snprintf(dir, sizeof(dir), "%s/sbx", root);
	struct err e = {0};
	CHECK(vmm_trash_start(trash, &e) == 0);
	int puts = 0;
	for (uint64_t end = now_usec() + 4000000; now_usec() < end; puts++) {
		CHECK(mkdir(dir, 0700) == 0 && vmm_trash(dir, &e) == 0);
		usleep(5000);
	}
	/* Passes ran during the stream (one waiting for quiet would not have):
	 * what is left is about the last second's puts, not all of them. */
	uint64_t left = vmm_trash_pending();
	CHECK(puts > 100 && left < (uint64_t)puts * 3 / 4);
	vmm_trash_stop();
	CHECK(vmm_trash_pending() == 0);
	CHECK(rmdir(trash) == 0 && rmdir(root) == 0);
}

/* Reads fd into buf up to a newline (bounded). */
static void read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (n + 1 < cap && !memchr(buf, '\n', n) && poll(&p, 1, 10000) == 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
}

static void test_spawn_fds(void)
{
	vmm_spawn_init(); /* the slots, while the table is small */
	int many[300], out[2], hold[2], null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 300; i++) /* inheritable: a child that got them would show them */
		many[i] = dup(null_fd);
	CHECK(many[299] >= 300 && pipe2(out, O_CLOEXEC) == 0 && pipe2(hold, O_CLOEXEC) == 0);
	char *argv[] = {"sh", "-c", "cd /proc/self/fd && echo *", NULL};
	struct vmm_exec x = {.path = "/bin/sh", .argv = argv,
			     .fds = {null_fd, out[1], out[1], hold[1]}, .nfds = 4};
	for (int round = 0; round < 2; round++) { /* the same block's slots again */
		struct clone_args ca;
		memset(&ca, 0, sizeof(ca));
		ca.exit_signal = SIGCHLD;
		pid_t pid = vmm_spawn_exec(&ca, &x);
		CHECK(pid > 0);
		if (round == 1) {
			close(out[1]);
			close(hold[1]);
		}
		char buf[256];
		int st = -1;
		read_all(out[0], buf, sizeof(buf));
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		/* Its 4 fds, and the one its glob read the directory with. */
		CHECK(strcmp(buf, "0 1 2 3 4\n") == 0 || (printf("# child's fds: %s", buf), 0));
	}
	/* Only the child held the write ends: nothing of the daemon's does. */
	CHECK(closed_within(hold[0], 5000));
	close(out[0]);
	close(hold[0]);
	for (int i = 0; i < 300; i++)
		close(many[i]);
	close(null_fd);
}

int main(void)
{
	RUN(test_renice_every_thread);
	RUN(test_ram_path);
	RUN(test_trash_held);
	RUN(test_trash_stream);
	RUN(test_spawn_fds);
	UNIT_DONE("vmm");
}
