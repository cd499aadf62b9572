/* What a guest agent answers to files requests (agent_proto.h AG_FRES and
 * the records of stat and list), read as hostile input: pure functions
 * (no fd, no lock) that tests/fuzz/fuzz_agent.c links alone. The sentences
 * are the daemon's, the ones engine/files.c gives on ns; the guest only
 * names what failed, and its names and link targets are escaped. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "qemu.h"
#include "vmm.h"

/* Digits (base 8 or 10, at most 22, signed: a leading '-') up to sep:
 * the character after sep, or NULL. */
static const char *number(const char *p, const char *end, int base, bool sign, char sep,
			  int64_t *v)
{
	bool neg = sign && p < end && *p == '-';
	uint64_t x = 0;
	int digits = 0;
	for (p += neg; p < end && *p >= '0' && *p < '0' + base; p++) {
		if (++digits > 22 || x > (UINT64_MAX - 9) / (uint64_t)base)
			return NULL;
		x = x * (uint64_t)base + (uint64_t)(*p - '0');
	}
	if (!digits || p >= end || *p != sep || x > INT64_MAX)
		return NULL;
	*v = neg ? -(int64_t)x : (int64_t)x;
	return p + 1;
}

/* What failed (the agent's word) and the daemon's sentence: about the
 * path, then why (as engine/files.c says it on ns). */
static const struct {
	const char *word, *fmt;
} failed[] = {
	{"path", "%s: %s"},
	{"tmp", "cannot make a file in the directory of %s: %s"},
	{"write", "writing %s: %s; nothing was put"},
	{"rename", "cannot put %s: %s; nothing was put"},
	{"mkdir", "cannot make %s: %s"},
	{"mode", "cannot set the mode of %s: %s"},
	{"read", "reading %s: %s"},
};

int qfiles_result(const char *p, size_t n, const char *shown, uint64_t *size, struct err *e)
{
	/* p[n] is the NUL qagent_take_frame puts after a payload. */
	int64_t err = 0, sz = 0;
	const char *end = p + n, *w = number(p, end, 10, false, ' ', &err);
	if (w) {
		const char *sp = memchr(w, ' ', (size_t)(end - w));
		w = number(w, (sp ? sp : end) + 1, 10, false, sp ? ' ' : '\0', &sz);
	}
	if (!w)
		return err_set(e, -EPROTO, "the guest agent's answer about %s is malformed", shown);
	if (err == 0) {
		*size = (uint64_t)sz;
		return 0;
	}
	int r = err > 0 && err < 4096 ? -(int)err : -EIO;
	const char *why = strerror(-r);
	char word[16] = "";
	unsigned long fs = 0;
	char type = '?';
	if (w <= end)
		sscanf(w, "%15s", word);
	else
		w = end;
	if (!strcmp(word, "isdir"))
		return err_set(e, r, "%s is a directory: get reads a regular file (list shows a "
			       "directory)", shown);
	if (!strcmp(word, "type") && sscanf(w, "type %c", &type) == 1 && strchr("fdlcbps", type))
		return err_set(e, r, "%s is not a regular file (type %c): get reads regular files "
			       "only", shown, type);
	if (!strcmp(word, "fs") && sscanf(w, "fs %lx", &fs) == 1)
		return err_set(e, r, "%s is on a file system of type 0x%lx (procfs, sysfs...): files "
			       "moves the sandbox's own files only (its root, a tmpfs)", shown, fs);
	for (size_t i = 0; i < ARRAY_SIZE(failed); i++)
		if (!strcmp(word, failed[i].word))
			return err_set(e, r, failed[i].fmt, shown, why);
	if (!strcmp(word, "big") && r == -E2BIG)
		return err_set(e, r, "%s has more than %d entries: list stops there", shown,
			       VMM_FILES_LIST_MAX);
	if (!strcmp(word, "busy"))
		return err_set(e, r, "the guest agent serves as many files requests as it can "
			       "already: try again when one is done");
	return err_set(e, r, "the guest agent failed on %s: %s", shown, why);
}

static bool type_ok(char t)
{
	return t && strchr("fdlcbps", t);
}

/* One stat record (raw[0, n) is exactly it): the lines of stat. */
static int stat_answer(const char *p, const char *end, struct buf *out)
{
	int64_t v[6];
	const char *name;
	if (end - p < 2 || !type_ok(p[0]) || p[1] != ' ' || end[-1] != '\0')
		return -EPROTO;
	char t = p[0];
	p += 2;
	if (!(p = number(p, end, 8, false, ' ', &v[0])) || v[0] > 07777)
		return -EPROTO;
	for (int i = 1; i < 5; i++)
		if (!(p = number(p, end, 10, false, ' ', &v[i])))
			return -EPROTO;
	if (!(name = number(p, end, 10, true, ' ', &v[5])) || v[2] > UINT32_MAX || v[3] > UINT32_MAX)
		return -EPROTO;
	size_t tl = strlen(name); /* ends at end[-1], the NUL */
	if (name + tl != end - 1 || tl >= PATH_MAX || (tl > 0) != (t == 'l'))
		return -EPROTO;
	if (buf_printf(out, "type %c\nmode %04o\nsize %" PRIu64 "\nuid %u\ngid %u\nnlink %" PRIu64
		       "\nmtime %lld\n", t, (unsigned)v[0], (uint64_t)v[1], (unsigned)v[2],
		       (unsigned)v[3], (uint64_t)v[4], (long long)v[5]) < 0)
		return -ENOMEM;
	if (t == 'l') {
		char esc[4 * PATH_MAX];
		str_escape_name(esc, sizeof(esc), name);
		if (buf_printf(out, "target %s\n", esc) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* List records, each "T MODE SIZE MTIME NAME" NUL: list's lines. */
static int list_answer(const char *p, const char *end, struct buf *out)
{
	char esc[4 * NAME_MAX + 1];
	for (size_t count = 0; p < end; count++) {
		int64_t mode, size, mtime;
		const char *rec_end = memchr(p, '\0', (size_t)(end - p)), *name;
		if (!rec_end || count >= VMM_FILES_LIST_MAX)
			return -EPROTO;
		if (rec_end - p < 2 || !type_ok(p[0]) || p[1] != ' ')
			return -EPROTO;
		char t = p[0];
		if (!(p = number(p + 2, rec_end, 8, false, ' ', &mode)) || mode > 07777 ||
		    !(p = number(p, rec_end, 10, false, ' ', &size)) ||
		    !(name = number(p, rec_end, 10, true, ' ', &mtime)))
			return -EPROTO;
		size_t nl = (size_t)(rec_end - name);
		if (nl == 0 || nl > NAME_MAX || memchr(name, '/', nl) || !strcmp(name, ".") ||
		    !strcmp(name, ".."))
			return -EPROTO;
		str_escape_name(esc, sizeof(esc), name);
		if (buf_printf(out, "%c %04o %" PRIu64 " %lld %s\n", t, (unsigned)mode,
			       (uint64_t)size, (long long)mtime, esc) < 0)
			return -ENOMEM;
		p = rec_end + 1;
	}
	return 0;
}

int qfiles_answer(bool list, const char *raw, size_t n, const char *shown, struct buf *out,
		  struct err *e)
{
	int r = list ? list_answer(raw, raw + n, out) : stat_answer(raw, raw + n, out);
	if (r == -ENOMEM)
		return err_set(e, r, "out of memory");
	if (r < 0)
		return err_set(e, r, "the guest agent's %s of %s is malformed", list ? "list" : "stat",
			       shown);
	return 0;
}
