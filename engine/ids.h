/* The ids the engine hands out, and their bounds in one place: the FUSE layer
 * packs each kind of id into a range of inode numbers (fs/inode.c checks at
 * build time that every range fits), so a bound here is a size there. */
#ifndef SBX_IDS_H
#define SBX_IDS_H

/* Sandbox ids count from 1 and are never reused while the daemon runs; a
 * sandbox owns the 2^20 inode numbers from id << 20, below the images' at
 * 2^62. (At a million creates a second, the bound is 50 days away.) */
#define SBX_ID_MAX ((1ull << 42) - 1)
/* Job ids of a sandbox run from 1 to this and are never reused: a job and
 * its file take 19 bits of its sandbox's range. */
#define SBX_JOB_ID_MAX 0x7fffu
/* Snapshot numbers of a sandbox (one per snapshot made, never reused): they
 * lie between its snapshots/ directory and its jobs. */
#define SBX_SNAP_SEQ_MAX 0x7efffu
/* Warm pool and image ids are never reused while the daemon runs; each
 * pool and image owns 16 inode numbers by its id. */
#define WARM_POOL_ID_MAX 0xefffu
#define IMAGE_ID_MAX 0xffffffu

#endif
