/* Network setup for sandboxes. Until bridged networking lands, a sandbox's
 * network namespace has only loopback, brought up by its init. */
#ifndef SBX_NET_H
#define SBX_NET_H

/* Brings `lo` up in the calling process's network namespace. */
int net_lo_up(void);

#endif
