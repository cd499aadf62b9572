/* Persistence: each sandbox's state and config as JSON in
 * STATE/sandboxes/NAME/sandbox.json, replaced atomically on every
 * transition (read back at start-up by restart.c). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "context.h"
#include "journal.h"

int sbx_config_json(const struct sbx *s, struct buf *b)
{
	json_t *j = journal_config_json(s->node.name, &s->cfg);
	if (!j)
		return -ENOMEM;
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	int r = buf_printf(b, "%s\n", text);
	free(text);
	return r;
}

/* Called with s->lock held. */
int journal_write(struct sbx *s)
{
	return journal_write_in(s, s->vm.dir);
}

/* The journal into DIR (the state dir, or the hidden one sbx_commit makes it
 * in before it is renamed into place). Called with s->lock held. */
int journal_write_in(struct sbx *s, const char *dir)
{
	json_t *j = json_pack("{s:i, s:s, s:o, s:i, s:I, s:s, s:i, s:s, s:I}",
			      "version", JOURNAL_VERSION,
			      "state", journal_state_name(atomic_load(&s->state)),
			      "config", journal_config_json(s->node.name, &s->cfg), "pid", (int)s->vm.pid,
			      "pid_start", (json_int_t)s->vm.pid_start, "reason", s->reason,
			      "exit_code", s->exit_code, "error", s->error,
			      "starts", (json_int_t)s->t.starts);
	if (!j)
		return -ENOMEM;
	char leaf[sizeof(s->vm.cg.leaf)];
	snprintf(leaf, sizeof(leaf), "%s-%s", vmm_host()->tag, s->node.name);
	if (s->vm.cg.leaf[0] && (s->pool || strcmp(s->vm.cg.leaf, leaf) != 0))
		json_object_set_new(j, "cgroup", json_string(s->vm.cg.leaf));
	for (const struct journal_section *sec = journal_sections; sec->key; sec++)
		json_object_set_new(j, sec->key, sec->json(s));
	json_object_set_new(j, "times", journal_times_json(&s->t));
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/sandbox.json", dir);
	int r = write_file_atomic(path, text, strlen(text), false);
	free(text);
	if (r < 0)
		log_err("sandbox %s: cannot write %s: %s", s->node.name, path, strerror(-r));
	else
		journal_commit_soon(s->eng);
	return r;
}

/* Group commit: a journal write is an atomic rename at once (a daemon crash
 * loses nothing, the page cache survives it); one syncfs a few ms later makes
 * every write of that window durable against power loss, off the create path. */
#define COMMIT_DELAY_USEC 5000

void journal_commit_soon(struct engine *eng)
{
	pthread_mutex_lock(&eng->commit.lock);
	if (!eng->commit.dirty) {
		eng->commit.dirty = true;
		pthread_cond_signal(&eng->commit.cond);
	}
	pthread_mutex_unlock(&eng->commit.lock);
}

/* A claimed pool member's journal (its new name and times; the member's,
 * already in the renamed state dir, re-adopts it until then) is written here,
 * a few ms after the claim: the claimed sandbox's first command, which
 * mostly comes at once, then has its lock and the CPU (written at once, by a
 * worker, it held the lock for the ~0.5 ms the first exec's open and write
 * waited for). */
void journal_write_later(struct sbx *s)
{
	struct engine *eng = s->eng;
	pthread_mutex_lock(&eng->commit.lock);
	s->journal_next = eng->commit.later;
	eng->commit.later = s;
	if (!eng->commit.dirty) {
		eng->commit.dirty = true;
		pthread_cond_signal(&eng->commit.cond);
	}
	pthread_mutex_unlock(&eng->commit.lock);
}

/* The commit thread: journal_write_later's list, before the sync. */
static void write_later(struct sbx *s)
{
	while (s) {
		struct sbx *next = s->journal_next;
		pthread_mutex_lock(&s->lock);
		s->journal_next = NULL;
		if (!s->removing) { /* a removal's own writes said the rest */
			uint64_t t0 = now_usec();
			journal_write(s);
			s->t.claim_journal_usec = now_usec() - t0;
		}
		pthread_mutex_unlock(&s->lock);
		sbx_put(s);
		s = next;
	}
}

static void *commit_main(void *arg)
{
	struct engine *eng = arg;
	pthread_mutex_lock(&eng->commit.lock);
	for (;;) {
		while (!eng->commit.dirty && !eng->commit.quit)
			pthread_cond_wait(&eng->commit.cond, &eng->commit.lock);
		if (!eng->commit.dirty && eng->commit.quit)
			break;
		pthread_mutex_unlock(&eng->commit.lock);
		usleep(COMMIT_DELAY_USEC); /* gather the writes of a burst into one sync */
		pthread_mutex_lock(&eng->commit.lock);
		struct sbx *later = eng->commit.later;
		eng->commit.later = NULL;
		pthread_mutex_unlock(&eng->commit.lock);
		write_later(later); /* still dirty: their writes join this sync */
		pthread_mutex_lock(&eng->commit.lock);
		eng->commit.dirty = false;
		pthread_mutex_unlock(&eng->commit.lock);
		if (syncfs(eng->commit.fd) < 0)
			log_err("cannot sync the journal: %s", strerror(errno));
		pthread_mutex_lock(&eng->commit.lock);
	}
	pthread_mutex_unlock(&eng->commit.lock);
	return NULL;
}

int journal_commit_start(struct engine *eng)
{
	eng->commit.fd = open(eng->sandboxes_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (eng->commit.fd < 0)
		return -errno;
	return -pthread_create(&eng->commit.thread, NULL, commit_main, eng);
}

void journal_commit_stop(struct engine *eng)
{
	pthread_mutex_lock(&eng->commit.lock);
	eng->commit.quit = true;
	pthread_cond_signal(&eng->commit.cond);
	pthread_mutex_unlock(&eng->commit.lock);
	pthread_join(eng->commit.thread, NULL);
	syncfs(eng->commit.fd);
	close(eng->commit.fd);
	eng->commit.fd = -1;
}

/* The journal's text: a regular file (not a FIFO that would hold start-up,
 * not a link), of at most JOURNAL_MAX_BYTES. */
int journal_load_text(const char *path, size_t max, char **out, size_t *len, struct err *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_set(e, -errno, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(e, -EINVAL, "not a regular file");
	if ((uint64_t)st.st_size > max)
		return err_set(e, -EFBIG, "%lld bytes, more than the %zu a journal may have",
			       (long long)st.st_size, max);
	size_t cap = (size_t)st.st_size + 1, n = 0;
	_cleanup_free_ char *text = malloc(cap);
	if (!text)
		return err_set(e, -ENOMEM, "out of memory");
	for (;;) {
		ssize_t k = read(fd, text + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return err_set(e, -errno, "%s", strerror(errno));
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == cap) /* it grew since fstat: nobody but the daemon writes it */
			return err_set(e, -EBUSY, "it changed while it was read");
	}
	*out = text;
	*len = n;
	text = NULL;
	return 0;
}
