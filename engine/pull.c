/* Registry references and skopeo's reasons (pull.h). A reference is user
 * input and a reason carries what a registry answered: both are parsed by
 * hand, bounded, with no allocation. */
#define _GNU_SOURCE
#include "pull.h"

#include <stdio.h>
#include <string.h>

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* HOST[:PORT]: DNS labels (letters, digits, inner '-') joined by dots. */
static int parse_host(const char *s, size_t n, struct err *e)
{
	const char *colon = memchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;
	bool label_start = true, dot = false;
	if (hn == 0)
		return err_set(e, -EINVAL, "the registry reference has no host");
	for (size_t i = 0; i < hn; i++) {
		char c = s[i];
		if (c == '.') {
			if (label_start || s[i - 1] == '-')
				return err_set(e, -EINVAL, "the registry host '%.*s' has an empty or bad "
					       "label", (int)hn, s);
			label_start = dot = true;
		} else if (alnum(c) || (c == '-' && !label_start)) {
			label_start = false;
		} else {
			return err_set(e, -EINVAL, "the registry host '%.*s' has a character a host "
				       "name cannot have ('%c'; IPv6 addresses are not supported)",
				       (int)hn, s, c);
		}
	}
	if (label_start || s[hn - 1] == '-')
		return err_set(e, -EINVAL, "the registry host '%.*s' ends badly", (int)hn, s);
	if (colon) {
		size_t pn = n - hn - 1;
		unsigned long port = 0;
		if (pn == 0 || pn > 5 || strspn(colon + 1, "0123456789") < pn)
			return err_set(e, -EINVAL, "the registry port '%.*s' is not a number",
				       (int)pn, colon + 1);
		for (size_t i = 0; i < pn; i++)
			port = port * 10 + (unsigned long)(colon[1 + i] - '0');
		if (port == 0 || port > 65535)
			return err_set(e, -EINVAL, "the registry port %lu is not 1 to 65535", port);
	}
	if (!dot && !colon && !(hn == 9 && !memcmp(s, "localhost", 9)))
		return err_set(e, -EINVAL, "'%.*s' is not a registry host (give one with a dot, a "
			       "port, or localhost: docker://HOST[:PORT]/REPO[:TAG|@DIGEST])",
			       (int)hn, s);
	return 0;
}

/* REPO: components of [a-z0-9] joined by '.', '_', "__" or dashes, split by '/'. */
static int parse_repo(const char *s, size_t n, struct err *e)
{
	size_t i = 0;
	if (n == 0)
		return err_set(e, -EINVAL, "the registry reference names no repository");
	while (i < n) {
		if (!lower_alnum(s[i]))
			goto bad;
		while (i < n && lower_alnum(s[i]))
			i++;
		if (i == n)
			break;
		if (s[i] == '/') {
			i++;
			if (i == n)
				goto bad;
			continue;
		}
		size_t sep = i;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += i + 1 < n && s[i + 1] == '_' ? 2 : 1;
		else
			while (i < n && s[i] == '-')
				i++;
		if (i == sep || i == n || !lower_alnum(s[i]))
			goto bad;
	}
	return 0;
bad:
	return err_set(e, -EINVAL, "the repository '%.*s' is not lowercase letters and digits "
		       "joined by '.', '_', '__', '-' and '/' (at byte %zu)", (int)n, s, i + 1);
}

static int parse_tag(const char *s, struct err *e)
{
	size_t n = strlen(s);
	if (n == 0 || n > PULL_TAG_MAX || !(alnum(s[0]) || s[0] == '_'))
		goto bad;
	for (size_t i = 1; i < n; i++)
		if (!alnum(s[i]) && !strchr("_.-", s[i]))
			goto bad;
	return 0;
bad:
	return err_set(e, -EINVAL, "the tag '%.140s' is not 1 to %d of [A-Za-z0-9_.-] (not "
		       "starting with '.' or '-')", s, PULL_TAG_MAX);
}

static int parse_digest(const char *s, struct err *e)
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64 ||
	    strspn(s + 7, "0123456789abcdef") != 64)
		return err_set(e, -EINVAL, "the digest '%.100s' is not sha256: and 64 lowercase hex "
			       "digits", s);
	return 0;
}

int pull_parse_ref(const char *s, struct pull_ref *ref, struct err *e)
{
	memset(ref, 0, sizeof(*ref));
	size_t n = strnlen(s, PULL_REF_MAX + 1);
	if (n > PULL_REF_MAX)
		return err_set(e, -EINVAL, "the registry reference is longer than %d bytes",
			       PULL_REF_MAX);
	const char *slash = strchr(s, '/');
	if (!slash)
		return err_set(e, -EINVAL, "'%.200s' is not HOST[:PORT]/REPO[:TAG|@DIGEST]", s);
	size_t hn = (size_t)(slash - s);
	if (hn > PULL_HOST_MAX)
		return err_set(e, -EINVAL, "the registry host is longer than %d bytes", PULL_HOST_MAX);
	int r = parse_host(s, hn, e);
	if (r < 0)
		return r;
	const char *repo = slash + 1, *at = strchr(repo, '@');
	const char *end = at ? at : repo + strlen(repo);
	const char *colon = memrchr(repo, ':', (size_t)(end - repo));
	if (at && colon)
		return err_set(e, -EINVAL, "give a tag or a digest, not both ('%.200s')", s);
	if (colon)
		end = colon;
	size_t rn = (size_t)(end - repo);
	if (rn > PULL_REPO_MAX)
		return err_set(e, -EINVAL, "the repository is longer than %d bytes", PULL_REPO_MAX);
	if ((r = parse_repo(repo, rn, e)) < 0 || (colon && (r = parse_tag(colon + 1, e)) < 0) ||
	    (at && (r = parse_digest(at + 1, e)) < 0))
		return r;
	memcpy(ref->host, s, hn);
	memcpy(ref->repo, repo, rn);
	if (colon)
		snprintf(ref->tag, sizeof(ref->tag), "%s", colon + 1);
	if (at)
		snprintf(ref->digest, sizeof(ref->digest), "%s", at + 1);
	return 0;
}

void pull_reason(char *line, size_t cap)
{
	size_t n = strnlen(line, cap);
	if (n == cap)
		return; /* not a string: left alone (the caller always gives one) */
	char *m = strstr(line, "msg=\"");
	if (!m || (m != line && m[-1] != ' '))
		return;
	char *w = line;
	for (const char *p = m + 5; *p && *p != '"'; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		*w++ = *p; /* w never passes p: the output is shorter */
	}
	*w = '\0';
}
