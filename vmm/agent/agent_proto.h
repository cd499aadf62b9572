/* The daemon <-> guest agent protocol of the qemu backend: binary frames over
 * a byte stream (a virtio-serial port in the guest, a socket in the daemon
 * that QEMU's chardev holds the other end of). A frame is a fixed header and
 * `len` bytes of payload; both ends are little-endian x86-64. */
#ifndef SBX_AGENT_PROTO_H
#define SBX_AGENT_PROTO_H

#include <stdint.h>

/* 3: terminals (tty= on AG_JOB, AG_WINSZ, AG_VEOF, AG_PID's "PID PTS") and
 * user= on AG_EXEC and AG_JOB. The daemon reads it from every hello and
 * sends none of these to an agent of before (which would run the command
 * as root without a terminal, and drop the frames it does not know). */
/* 4: files (AG_FILE, AG_FDATA, AG_FEND, AG_FRES): the host's NAME/files
 * requests, served in the guest's root. */
#define AGENT_VERSION 4
#define AGENT_VERSION_TTY 3
/* AG_FORK's "resume" (the same machine: hostname, clock, reseed) came during
 * 2; every agent of 3 knows it (a warm pool's member claimed by a create). */
#define AGENT_VERSION_RESUME 3
#define AGENT_VERSION_FILES 4
/* The largest payload of a frame to the agent. */
#define AGENT_PAYLOAD_MAX 8192
/* The largest payload of a put's AG_FDATA to an agent of AGENT_VERSION_FILES
 * (which reads frames of up to AGENT_OUT_MAX): fewer, larger writes and
 * reads in a guest whose every system call is slow under TCG. */
#define AGENT_FDATA_MAX AGENT_OUT_MAX
/* The largest payload of a frame from the agent: a whole frame is one write
 * of at most 32 KiB, what the guest's virtio-serial driver queues as one
 * buffer (an agent of before sends AGENT_PAYLOAD_MAX at most). */
#define AGENT_OUT_MAX (32 * 1024 - 16)
/* Flow control per command, as SSH channels do: the agent sends at most this
 * many output bytes of a command that the daemon has not credited back, so a
 * reader that stalls one command never stalls the channel (other commands,
 * stop, kill). The agent chooses it (its initial credit; an agent of before
 * had 64 KiB): the daemon credits back exactly what it passed on. */
#define AGENT_WINDOW (256 * 1024)
/* The same for a job's stdin, the other way: the daemon sends at most this
 * many bytes the agent has not credited back. */
#define AGENT_IN_WINDOW (64 * 1024)

/* The ids of files requests have this bit (an exec's never do). */
#define AGENT_FILE_ID (1ull << 63)

/* Bytes the host sends before AG_FORK: input that a restored agent had half
 * read from its old host is dropped up to and including them. */
#define AGENT_SYNC "\xff\xfe" "sbx-agent-sync" "\xfe\xff"
#define AGENT_SYNC_LEN 18

struct agent_hdr {
	uint8_t type;
	uint8_t pad[3];
	uint32_t len; /* payload bytes after the header */
	uint64_t id;  /* exec id; 0 when the frame is not about one command */
};

/* daemon -> agent */
#define AG_EXEC 'X'     /* id, payload: the shell command line, then options, each after a
			 * NUL: "user=WHO" (USER, UID, USER:GROUP, UID:GID, looked up in the
			 * guest's /etc/passwd and /etc/group), and on AG_JOB "tty=COLSxROWS"
			 * (a pty: its slave is the job's stdin, stdout, stderr and
			 * controlling terminal, its master is read as stdout and takes
			 * AG_IN); an agent of before reads up to the first NUL only */
#define AG_KILL 'K'     /* id (0: every process of the guest), payload: signal number */
#define AG_POWEROFF 'P' /* payload: seconds between SIGTERM and SIGKILL, then power off */
#define AG_CREDIT 'C'   /* id, payload: output bytes of that command the daemon passed on */
#define AG_FORK 'F'     /* payload: "NAME SEC NSEC NONCE HEX64 clone|resume [IP/LEN GW MAC]":
			 * this guest was restored from a snapshot: take NAME as hostname,
			 * set the clock, reseed the RNG with the 32 bytes, end the sessions
			 * of the old host, and for a clone (fork) new machine-id and
			 * boot_id, and with a network eth0 takes MAC, IP/LEN and a default
			 * route via GW; then hello "... fork NONCE". It follows AGENT_SYNC,
			 * which makes the agent drop what came before. */
#define AG_RESYNC 'Y'   /* payload: NONCE. A new host (the daemon restarted): end the exec
			 * sessions (their clients are gone), hold every job's output until it
			 * is attached again; then hello "... resync NONCE". After AGENT_SYNC. */
#define AG_ATTACH 'T'   /* id, payload: "OUT ERR": the host has OUT bytes of the job's stdout
			 * and ERR of its stderr; the agent sends the rest (it keeps the last
			 * AGENT_WINDOW bytes of each), and the exit if it came meanwhile */
#define AG_ACK 'A'      /* id: the host has the job's exit; the agent forgets the job */
#define AG_JOB 'J'      /* id, payload: command line; like AG_EXEC with its own stdin and stderr */
#define AG_IN 'I'       /* id, payload: bytes for the job's stdin (at most AGENT_IN_WINDOW not
			 * yet credited back); empty: end of its stdin */
#define AG_WINSZ 'W'    /* id, payload: "COLS ROWS": a terminal's job's new size (SIGWINCH) */
#define AG_VEOF 'V'     /* id: the terminal's end-of-file character (its VEOF) into the
			 * job's input, after the AG_IN bytes that came before it */

#define AG_FILE 'G'     /* id (AGENT_FILE_ID set), payload: "VERB MODE SIZE" NUL PATH: a request
			 * of NAME/files (get, put, stat, list, mkdir; MODE octal; SIZE a
			 * put's bytes), PATH absolute, raw bytes, resolved in the guest's
			 * root. The agent answers AG_FRES. */
#define AG_FDATA 'B'    /* id: to the agent, bytes of a put (it answers AG_FRES again once
			 * the SIZE bytes are in and renamed into place); from it, bytes of a
			 * get's file or of a stat's or list's records (below), at most
			 * AGENT_WINDOW not credited back (AG_CREDIT with the id); an empty
			 * one ends them */
#define AG_FEND 'Z'     /* id: the host is done with the request; a put not complete
			 * leaves nothing */

/* agent -> daemon */
#define AG_HELLO 'H'    /* payload: "sbx-agent <version>"; the guest is ready */
#define AG_OUT 'O'      /* id, payload: bytes of the command's stdout/stderr */
#define AG_ERR 'R'      /* id, payload: bytes of a job's stderr */
#define AG_PID 'D'      /* id, payload: the command's pid in the guest, and for a terminal's
			 * job its number in the guest's devpts: "PID PTS"; for a command
			 * the agent's warm shell took "PID -1 w" (a daemon of before
			 * reads no terminal; an agent of before never says w) */
/* AG_CREDIT (agent -> daemon): id, payload: stdin bytes the job's pipe took */
#define AG_FRES 'S'     /* id, payload: "ERRNO SIZE [WHAT [ARG]]": 0 and SIZE (get: the file's
			 * bytes; stat, list: the records' bytes) that AG_FDATA brings; or
			 * the errno and what failed (a word the host turns into its
			 * sentence: path, isdir, type C, fs HEX, tmp, write, rename, mkdir,
			 * mode, read, big, busy). A put answers twice: once its temporary
			 * is made, once it is in place. Records: stat "T MODE SIZE UID GID
			 * NLINK MTIME TARGET" NUL; list "T MODE SIZE MTIME NAME" NUL per
			 * entry (T a type letter, MODE octal, names raw bytes). */
#define AG_EXIT 'E'     /* id, payload: "<exit code> <signal>" (code 128+signal when killed),
			 * after the last AG_OUT */

_Static_assert(sizeof(struct agent_hdr) + AGENT_OUT_MAX == 32 * 1024, "a frame is one 32 KiB write");
_Static_assert(AGENT_OUT_MAX >= AGENT_PAYLOAD_MAX, "the daemon reads what it sends");

#endif
