/* The seccomp filter of an `ns` sandbox, installed by sbx-init (pid 1) once it
 * has built the root and dropped capabilities, so every command it runs
 * inherits it. Modelled on Docker's default profile, written as a deny list:
 * the calls below fail with EPERM (clone3 with ENOSYS), everything else is
 * allowed; x32 and other non-native ABIs kill the process. */
#ifndef SBX_INIT_SECCOMP_H
#define SBX_INIT_SECCOMP_H

#include <stddef.h>

/* Installs the filter on the calling thread (no_new_privs must be set or the
 * caller must hold CAP_SYS_ADMIN; libseccomp sets no_new_privs itself).
 * Returns 0, or -1 with errno set and in errbuf what failed (without the
 * errno text). */
int sbx_seccomp_install(char *errbuf, size_t len);

/* Writes the compiled BPF program to fd (the build turns it into
 * seccomp_bpf.h, which sbx-init loads with one prctl: compiling the filter
 * with libseccomp in every sandbox's init cost milliseconds per create). */
int sbx_seccomp_export(int fd, char *errbuf, size_t len);

#endif
