/* Images (/sbx/images/NAME/): the directories of --images, and images
 * imported from OCI layouts into STATE/imports (layers unpacked once, shared
 * by the images that list them). The FUSE layer's view first, then what the
 * rest of the engine asks of them. */
#ifndef SBX_IMAGES_H
#define SBX_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "ids.h"

struct engine;
struct image;
struct vmm_inst;

/* A write to /sbx/images/ctl: `import NAME SOURCE`. */
int images_ctl(struct engine *eng, const char *buf, size_t len);
/* rmdir /sbx/images/NAME: an image no sandbox (running or stopped) and no
 * warm pool uses goes, with the layers no other image lists. */
int image_rmdir(struct engine *eng, const char *name);
/* 0 when there is no such image. */
uint32_t image_lookup(struct engine *eng, const char *name);
/* image_lookup != 0, for the VM root disks' sweep (vmm_host.image_exists). */
bool image_exists(void *eng, const char *name);
/* Pinned (or NULL); release with image_put. */
struct image *image_get(struct engine *eng, uint32_t id);
void image_put(struct image *im);
uint64_t image_created_wall_usec(const struct image *im);
/* Names and ids of every image, for readdir; free both arrays. */
int image_list(struct engine *eng, char (**names)[64], uint32_t **ids, size_t *n);

int image_show_config(struct image *im, struct buf *b);
int image_show_status(struct image *im, struct buf *b);
int image_show_progress(struct image *im, struct buf *b);
int image_show_error(struct image *im, struct buf *b);

/* --- for the engine --- */

/* Start-up, before the journal is read: STATE/imports made, imported images
 * loaded, what a dead daemon left half-made removed. */
/* engine_new: the part's state (eng->images), empty. */
int images_init(struct engine *eng);
/* rmdir asks fn whether a warm pool's spec names the image (its name in pool):
 * warm.c, a part above this one, gives it at its init. */
void images_set_pool_user(struct engine *eng, bool (*fn)(struct engine *eng, const char *image,
							  char *pool, size_t cap));
int images_start(struct engine *eng);
/* Daemon exit, before the workers stop: running imports end (failed). */
void images_quiesce(struct engine *eng);
/* The image exists and overlayfs can take its path. */
int engine_image_check(struct engine *eng, const char *image, struct err *e);
/* engine_image_check, and a pin that keeps the image from rmdir
 * until the sandbox that names it is in the registry. */
int image_pin(struct engine *eng, const char *name, struct err *e);
void image_unpin(struct engine *eng, const char *name);
/* The sandbox's image as the backend stacks it: vm->image_dir, and an
 * imported image's layer dirs (vm->image_layers, top first). */
void image_resolve(struct engine *eng, const char *name, struct vmm_inst *vm);
/* The shell line that runs `line` (exec, run) in a sandbox of image: an
 * imported image's Env exported and its WorkingDir entered first, less what
 * the line's options (ro, may be NULL) set instead: a variable of env=, the
 * WorkingDir when cwd= is given. With fold (a backend that takes no cwd= or
 * env= itself), those options become the same shell text. An empty line is
 * the image's Entrypoint and Cmd (quoted word by word). A directory image
 * adds nothing. -E2BIG past cap, -EINVAL for an empty line without a default
 * command; the sentence in e. *cmd_at: where the command itself (line, or
 * the default one) starts in out. */
#define IMAGE_COMMAND_MAX 6144 /* within what a backend's message carries */
struct ctl_run_opts;
int image_command(struct engine *eng, const char *image, const char *line,
		  const struct ctl_run_opts *ro, bool fold, char *out, size_t cap, size_t *cmd_at,
		  struct err *e);

#endif
