/* Users and groups of a sandbox's (or a guest's) own /etc/passwd and
 * /etc/group, for the programs that start its commands: sbx-init (ns) and
 * sbx-agent (qemu). Their bytes are the sandbox's: read bounded, parsed
 * iteratively, never trusted to hold numbers where numbers go. */
#ifndef SBX_IDS_H
#define SBX_IDS_H

#include <stdbool.h>
#include <stddef.h>

/* The most of a file that is read; what follows is not looked at. */
#define ID_FILE_MAX (1 << 20)

/* In buf (NUL-terminated, split in place): the line whose field 0 is name,
 * or (name NULL) whose field 2 is id; its first nf fields go to f (NULL
 * past the line's last). 0, or -1 when no line matches. */
int id_find(char *buf, const char *name, long id, char **f, int nf);
/* A uid or gid as the files write it: 1 to 10 digits, below 2^32 - 1. */
bool id_num(const char *s, long *out);
/* In a command's child: becomes user (USER, UID, USER:GROUP or UID:GID;
 * user is split in place), with "HOME=..." from /etc/passwd in home ("/"
 * when it has no entry for a UID). Anything the files do not know, or a
 * change that fails, ends the child (exit 126) with a sentence on its
 * stderr that starts with who. */
void id_become(const char *who, char *user, char *home, size_t home_cap);

#endif
