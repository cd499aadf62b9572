/* Registry pulls (images/ctl `import NAME docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`):
 * the reference checked before anything runs, and the reason skopeo gives
 * when a pull fails, out of its last stderr line. Pure (the fuzz target
 * drives both); images.c runs skopeo and imports the layout it writes. */
#ifndef SBX_PULL_H
#define SBX_PULL_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"

#define PULL_REF_MAX 512  /* the whole docker:// reference */
#define PULL_HOST_MAX 253
#define PULL_REPO_MAX 255
#define PULL_TAG_MAX 128

struct pull_ref {
	char host[PULL_HOST_MAX + 1]; /* with :PORT when given */
	char repo[PULL_REPO_MAX + 1];
	char tag[PULL_TAG_MAX + 1];   /* "" with a digest, or none (skopeo's latest) */
	char digest[72];              /* sha256:HEX, or "" */
};

/* s: the SOURCE after "docker://". 0, or -EINVAL with the sentence. The host
 * must be one (a dot, a port or localhost): a bare NAME/REPO would be Docker
 * Hub's to skopeo, which no import line asks for without saying so. */
int pull_parse_ref(const char *s, struct pull_ref *ref, struct err *e);
/* skopeo (logrus) writes `time="..." level=fatal msg="REASON"`: line becomes
 * REASON, its \" and \\ undone; another line is kept as it is. Never longer. */
void pull_reason(char *line, size_t cap);

#endif
