/* The daemon <-> sbx-init protocol: one text message per SOCK_SEQPACKET
 * datagram over the socketpair the daemon hands to init at clone time (no
 * socket path to dial, no retries). The first byte is the message type. */
#ifndef SBX_PROTO_H
#define SBX_PROTO_H

#define PROTO_MSG_MAX 8192
#define PROTO_ENV_MAX 32 /* env= options of one command (CTL_ENV_MAX) */
#define PROTO_FD 3 /* init's end of the socketpair */
/* In the sandbox's state dir: where init listens for a restarted daemon. */
#define PROTO_SOCK_NAME "init.sock"

/* daemon -> init */
#define MSG_GO 'G'        /* "G": init is in its cgroup, finish the sandbox (its
			   * root was built meanwhile); "GN": and wait for
			   * MSG_NET before ready (the daemon sets up the
			   * network meanwhile) */
#define MSG_NET 'N'       /* "N": the sandbox's network is set up */
#define MSG_STOP 'S'      /* "S<seconds>": SIGTERM everything, SIGKILL after seconds, exit */
#define MSG_EXEC 'X'      /* "X<id>[@USER] <command line>" (USER as the image config's:
			   * USER, UID, USER:GROUP, UID:GID; none: root), then
			   * options, each after a NUL: "cwd=DIR" (absolute),
			   * "env=NAME=VALUE" (at most PROTO_ENV_MAX); an init
			   * that predates them reads up to the first NUL only
			   * + fds (SCM_RIGHTS): one for stdout and
			   * stderr (exec), or three: stdin, stdout, stderr (a job), or
			   * four: a terminal's job, its slave three times, then its
			   * master, which init holds until nothing is left to read */
#define MSG_EXEC_KILL 'K' /* "K<id> <signal>" */
/* A warm shell: a `/bin/sh` forked, set up and exec'd ahead as an exec's
 * would be (no options), waiting for its command line on a pipe of its own,
 * so that the next exec costs no fork nor exec. */
#define MSG_WARM 'W'      /* "W[@USER]" + three fds (SCM_RIGHTS), stdin, stdout
			   * and stderr, as a job's: keep a warm shell on them
			   * (one replaced is killed). Sent only to an init that
			   * knows it: one this daemon started, or one that said
			   * MSG_WARM_WANTED */
#define MSG_EXEC_WARM 'Y' /* "Y<id>[j] <command line>" (no newline in it): the
			   * warm shell runs it as exec id (reports as MSG_EXEC's),
			   * its stderr in its stdout and stdin /dev/null as an
			   * exec's, or with j, as job id on its three fds; with
			   * none left, init runs it as MSG_EXEC would, on the
			   * fds of the last MSG_WARM */

/* init -> daemon */
#define MSG_READY 'R'     /* "R": the sandbox is built and running */
#define MSG_FAIL 'F'      /* "F<errno> <sentence>": setup failed, init exits */
#define MSG_EXEC_EXIT 'E' /* "E<id> <exit code> <signal or 0>"; queued while no daemon;
			   * the qemu backend's reader adds " lost" for a command
			   * it gave up (its agent stopped reading) */
#define MSG_EXEC_PID 'P'  /* "P<id> <pid in the sandbox>"; the qemu backend's reader
			   * adds " <pts>", a terminal's number in the guest (-1: none),
			   * and " e" or " j" for an exec or a job its agent's warm
			   * shell took (once a command; the engine counts it) */
#define MSG_WARM_WANTED 'w' /* "w3": a new daemon connected and an earlier one
			     * had asked for a warm shell (one waiting was
			     * killed): send MSG_WARM again. "3": its three fds
			     * are taken; a bare "w" comes from an older init,
			     * which takes one, and gets none (runs cold) */

#endif
