/* libFuzzer target: the guest agent's byte stream as the qemu backend reads it.
 *
 * The input (after its first byte) is what the agent writes on its channel:
 * frames (struct agent_hdr, then `len` bytes of payload; agent_proto.h), and
 * around a restore the answer marker (" fork NONCE", " resync NONCE") after
 * bytes of no frame. The first byte is the size of each read and how many
 * times the rest repeats in the stream (see below). The stream goes, read by read, into a buffer of the size of struct qemu_vm's,
 * and is taken apart with the pure helpers of vmm/qemu.h that qemu_agent.c
 * reads through: qagent_take_frame (as the reader thread and
 * qagent_wait_hello do) and qagent_take_answer (as qagent_wait_answer does).
 * Besides the sanitizers, it asserts, against an independent walk over the
 * whole stream:
 *   - the frames come out whole, in order, with the header and payload the
 *     stream holds, the payload NUL-terminated, the rest of the buffer kept;
 *   - "need more" and -EPROTO leave the buffer alone; -EPROTO only for a
 *     header that announces more than AGENT_OUT_MAX bytes;
 *   - a full buffer always holds a whole frame or garbage (the channel never
 *     stalls for want of room);
 *   - the answer marker is found where it first occurs in the stream, however
 *     the reads split it, and framing resumes right after it;
 *   - every frame's payload read as an AG_PID's (qagent_pid_report): a
 *     terminal's number -1 or 0 to 2^20, warm only for a payload that ends
 *     in " w"; and the agent's three forms, from the input's first bytes,
 *     read back exactly;
 *   - the version a hello states (qagent_hello_version: a hello frame's
 *     payload, the words before an answer marker, any bytes) is 0 to 9999,
 *     and "sbx-agent 3" right before the marker reads as 3.
 *   - the same bytes as a console's tail (qemu_console_reason, the line a
 *     failed start shows): one NUL-terminated line shorter than its room,
 *     no control character, the bytes after the last "sbx-agent: fatal: "
 *     (a naive search finds it) or else of the last line, in order.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm/qemu.h"

#define MUST(cond)                                                                         \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_agent: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                       \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define CAP sizeof(((struct qemu_vm *)0)->in)
#define HDR sizeof(struct agent_hdr)

static char in[CAP], before[CAP];
static char payload[AGENT_OUT_MAX + 1];

/* Frames: feeds the stream read by read and takes every whole frame, checking
 * each against the stream at the offset where the independent walk is. */
static void frames(const char *s, size_t len, size_t chunk)
{
	size_t in_len = 0, fed = 0, walk = 0; /* walk: stream offset of in[0] */
	for (;;) {
		struct agent_hdr h;
		memcpy(before, in, in_len);
		size_t was = in_len;
		memset(payload, 0x5a, sizeof(payload));
		int r = qagent_take_frame(in, &in_len, &h, payload);
		MUST(r == 1 || r == 0 || r == -EPROTO);
		if (r == 1) {
			struct agent_hdr want;
			MUST(len - walk >= HDR);
			memcpy(&want, s + walk, HDR);
			MUST(h.type == want.type && h.len == want.len && h.id == want.id);
			MUST(h.len <= AGENT_OUT_MAX && len - walk - HDR >= h.len);
			MUST(memcmp(payload, s + walk + HDR, h.len) == 0 && payload[h.len] == '\0');
			int v = qagent_hello_version(payload, h.len);
			MUST(v >= 0 && v <= 9999);
			int pid, pts;
			bool warm = qagent_pid_report(payload, &pid, &pts);
			size_t pl = strlen(payload);
			MUST(pts >= -1 && pts < (1 << 20));
			MUST(!warm || (pl >= 2 && strcmp(payload + pl - 2, " w") == 0));
			MUST(in_len == was - HDR - h.len);
			MUST(memcmp(in, before + HDR + h.len, in_len) == 0);
			walk += HDR + h.len;
			continue;
		}
		MUST(in_len == was && memcmp(in, before, in_len) == 0);
		MUST(walk + in_len == fed);
		if (r < 0) { /* garbage: the reader gives the channel up */
			uint32_t l;
			memcpy(&l, s + walk + offsetof(struct agent_hdr, len), sizeof(l));
			MUST(was >= HDR && l > AGENT_OUT_MAX);
			return;
		}
		/* Need more: there is room for it, and it is not in the stream yet
		 * or the stream ends inside a frame. */
		MUST(in_len < CAP);
		if (fed == len) {
			if (len - walk >= HDR) {
				struct agent_hdr want;
				memcpy(&want, s + walk, HDR);
				MUST(want.len <= AGENT_OUT_MAX && len - walk - HDR < want.len);
			}
			return;
		}
		size_t n = len - fed < chunk ? len - fed : chunk;
		if (n > CAP - in_len)
			n = CAP - in_len;
		memcpy(in + in_len, s + fed, n);
		in_len += n;
		fed += n;
	}
}

/* The answer marker: fed read by read, as qagent_wait_answer does. */
static void answer(const char *s, size_t len, size_t chunk, const char *want)
{
	size_t wn = strlen(want), in_len = 0, fed = 0;
	const char *hit = memmem(s, len, want, wn);
	bool trimmed = false; /* the buffer dropped bytes before the marker */
	for (;;) {
		size_t was = in_len;
		int version = -1;
		int r = qagent_take_answer(in, &in_len, CAP, want, wn, &version);
		MUST(r == 0 || r == 1);
		if (r == 1) {
			/* Found where it first is in the stream; the rest is kept. */
			MUST(hit != NULL);
			MUST(fed - in_len == (size_t)(hit - s) + wn);
			MUST(memcmp(in, s + fed - in_len, in_len) == 0);
			MUST(version >= 0 && version <= 9999);
			if (!trimmed && hit - s >= 11 && memcmp(hit - 11, "sbx-agent 3", 11) == 0)
				MUST(version == 3);
			/* Framing resumes right after it. */
			struct agent_hdr h;
			if (in_len >= HDR && qagent_take_frame(in, &in_len, &h, payload) == 1)
				MUST(memcmp(&h, hit + wn, HDR) == 0);
			return;
		}
		MUST(in_len == was || (was == CAP && in_len == wn));
		trimmed = trimmed || in_len != was;
		MUST(in_len < CAP);
		MUST(memcmp(in, s + fed - in_len, in_len) == 0);
		if (fed == len) {
			MUST(hit == NULL || (size_t)(hit - s) + wn > len);
			return;
		}
		size_t n = len - fed < chunk ? len - fed : chunk;
		if (n > CAP - in_len)
			n = CAP - in_len;
		memcpy(in + in_len, s + fed, n);
		in_len += n;
		fed += n;
	}
}

/* The agent's AG_PID payloads (sbx-agent.c's job_start) read back: "PID",
 * a terminal's "PID PTS", a warm shell's "PID -1 w". */
static void pid_reports(const uint8_t *data, size_t size)
{
	int32_t v[2] = {0, 0};
	memcpy(v, data, size < sizeof(v) ? size : sizeof(v));
	int pts_in = v[1] & ((1 << 20) - 1), pid, pts;
	char p[64];
	snprintf(p, sizeof(p), "%d", (int)v[0]);
	MUST(!qagent_pid_report(p, &pid, &pts) && pid == v[0] && pts == -1);
	snprintf(p, sizeof(p), "%d %d", (int)v[0], pts_in);
	MUST(!qagent_pid_report(p, &pid, &pts) && pid == v[0] && pts == pts_in);
	snprintf(p, sizeof(p), "%d -1 w", (int)v[0]);
	MUST(qagent_pid_report(p, &pid, &pts) && pid == v[0] && pts == -1);
}

/* The console line against an independent search of where it starts. */
static void console(const char *s, size_t len, size_t cap)
{
	static char out[4096];
	const char *fatal = AGENT_FATAL;
	size_t fl = strlen(fatal), n = len, start = 0;
	memset(out, 'X', sizeof(out));
	qemu_console_reason(s, len, out, cap);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n')
			start = i + 1;
	for (size_t i = 0; i + fl <= n; i++)
		if (memcmp(s + i, fatal, fl) == 0)
			start = i + fl;
	size_t o = strnlen(out, cap);
	MUST(o < cap);
	for (size_t i = 0; i < o; i++) {
		unsigned char c = (unsigned char)s[start + i];
		MUST(start + i < n && c != '\n' && c != '\r');
		MUST(out[i] == (c < 0x20 || c == 0x7f ? '?' : (char)c));
	}
	/* It stops at the line's end, the data's end, or its room. */
	MUST(o + 1 == cap || start + o == n || s[start + o] == '\n' || s[start + o] == '\r');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* data[0]: the low 5 bits the size of each read (0: one byte a read),
	 * the high 3 bits how many times the rest repeats in the stream (so that
	 * the buffer fills: the stream may be longer than -max_len). */
	size_t chunk = (data[0] & 0x1f) ? (data[0] & 0x1f) * (size_t)311 : 1;
	size_t reps = 1 + (size_t)(data[0] >> 5) * 2; /* 1..15 */
	size_t len = (size - 1) * reps;
	char *s = malloc(len ? len : 1); /* exact size: ASan sees reads past it */
	MUST(s != NULL);
	for (size_t i = 0; i < reps; i++)
		memcpy(s + i * (size - 1), data + 1, size - 1);
	int v = qagent_hello_version(s, len);
	MUST(v >= 0 && v <= 9999);
	frames(s, len, chunk);
	pid_reports(data, size);
	answer(s, len, chunk, " fork 0123456789abcdef");
	answer(s, len, chunk, " resync 42");
	console(s, len, 1);
	console(s, len, 80);
	console(s, len, 4096);
	free(s);
	return 0;
}
