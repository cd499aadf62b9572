/* Users and groups from the sandbox's own files (ids.h): a bounded read of
 * a regular file, then one pass over its lines. Shared by sbx-init and
 * sbx-agent, both static. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ids.h"

static char id_file[ID_FILE_MAX + 1];

int id_find(char *buf, const char *name, long id, char **f, int nf)
{
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *p = line;
		for (int k = 0; k < nf; k++) {
			f[k] = p;
			p = p ? strchr(p, ':') : NULL;
			if (p)
				*p++ = '\0';
		}
		if (nf < 3 || !f[0] || !f[2])
			continue;
		long v;
		if (name ? strcmp(f[0], name) == 0 : id_num(f[2], &v) && v == id)
			return 0;
	}
	return -1;
}

/* /etc/FILE's entry, as id_find; the file read into a static buffer (one
 * child, one lookup at a time). */
static int id_lookup(const char *file, const char *name, long id, char **f, int nf)
{
	/* Only a regular file: a FIFO or a device put there would block or
	 * never end (O_NONBLOCK keeps the open itself from waiting). */
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t n;
	while (len < ID_FILE_MAX && (n = read(fd, id_file + len, ID_FILE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	id_file[len] = '\0';
	return id_find(id_file, name, id, f, nf);
}

bool id_num(const char *s, long *out)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 10 || strspn(s, "0123456789") != n)
		return false;
	long long v = strtoll(s, NULL, 10);
	if (v >= 4294967295LL)
		return false;
	*out = (long)v;
	return true;
}

/* The fields of an entry that name a number: a refusal, not a root. */
static long id_field(const char *who, const char *file, const char *user, const char *s)
{
	long v;
	if (!id_num(s, &v)) {
		dprintf(2, "%s: the entry of '%s' in the sandbox's %s has no number where "
			   "its id goes\n", who, user, file);
		_exit(126);
	}
	return v;
}

void id_become(const char *who, char *user, char *home, size_t home_cap)
{
	char *group = strchr(user, ':'), *f[7];
	if (group)
		*group++ = '\0';
	long uid, gid = 0;
	snprintf(home, home_cap, "HOME=/");
	if (id_num(user, &uid)) {
		if (id_lookup("/etc/passwd", NULL, uid, f, 7) == 0) {
			gid = id_field(who, "/etc/passwd", user, f[3]);
			snprintf(home, home_cap, "HOME=%s", f[5] && *f[5] ? f[5] : "/");
		}
	} else if (id_lookup("/etc/passwd", user, 0, f, 7) == 0) {
		uid = id_field(who, "/etc/passwd", user, f[2]);
		gid = id_field(who, "/etc/passwd", user, f[3]);
		snprintf(home, home_cap, "HOME=%s", f[5] && *f[5] ? f[5] : "/");
	} else {
		dprintf(2, "%s: user '%s' (user= or the image's User) is not in the sandbox's "
			   "/etc/passwd\n", who, user);
		_exit(126);
	}
	if (group && !id_num(group, &gid)) {
		if (id_lookup("/etc/group", group, 0, f, 4) < 0) {
			dprintf(2, "%s: group '%s' (user= or the image's User) is not in the "
				   "sandbox's /etc/group\n", who, group);
			_exit(126);
		}
		gid = id_field(who, "/etc/group", group, f[2]);
	}
	if (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0) {
		dprintf(2, "%s: cannot run as %ld:%ld: %s\n", who, uid, gid, strerror(errno));
		_exit(126);
	}
}
