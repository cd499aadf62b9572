/* The file tree of DESIGN.md as tables: one row per kind of node, and for
 * each kind of file one row per file. Adding a file is adding a row (and, for
 * a new kind of file, its ops); adding a family is adding kinds. */
#include "node.h"

#define ROWS(t) .rows = t, .nrows = ARRAY_SIZE(t)

static const struct fsx_file top_files[] = {
	{.name = "ctl", .mode = 0600, .ops = &fsx_ctl_ops, .top.write = engine_ctl},
	{.name = "stats", .mode = 0444, .ops = &fsx_show_ops, .top.show = engine_show_stats},
	{.name = "error", .mode = 0444, .ops = &fsx_show_ops, .top.show = engine_show_error},
	{.name = "events", .mode = 0444, .ops = &fsx_events_ops, .top.show = engine_show_events},
	{.name = "metrics", .mode = 0444, .ops = &fsx_show_ops, .top.show = engine_show_metrics},
};

static const struct fsx_file sbx_files[] = {
	{.name = "ctl", .mode = 0600, .ops = &fsx_ctl_ops, .sbx.write = sbx_ctl},
	{.name = "status", .mode = 0444, .ops = &fsx_sized_ops, .sbx.show = sbx_show_status},
	{.name = "stats", .mode = 0444, .ops = &fsx_show_ops, .sbx.show = sbx_show_stats},
	{.name = "config", .mode = 0444, .ops = &fsx_show_ops, .sbx.show = sbx_show_config},
	{.name = "events", .mode = 0444, .ops = &fsx_events_ops, .sbx.show = sbx_show_events},
	{.name = "wait", .mode = 0644, .ops = &fsx_wait_ops, .sbx.show = sbx_show_events},
	{.name = "error", .mode = 0444, .ops = &fsx_show_ops, .sbx.show = sbx_show_error},
	{.name = "log", .mode = 0444, .ops = &fsx_show_ops, .sbx.show = sbx_show_log},
	{.name = "net", .mode = 0444, .ops = &fsx_show_ops, .sbx.show = sbx_show_net},
	{.name = "exec", .mode = 0600, .ops = &fsx_session_ops},
	{.name = "run", .mode = 0600, .ops = &fsx_clone_ops, .sbx.clone = sbx_job_start},
	{.name = "root", .mode = 0777, .ops = &fsx_link_ops, .sbx.link = sbx_root_link},
	{.name = "files", .mode = 0600, .ops = &fsx_files_ops},
};

/* A job (/sbx/NAME/jobs/N/): what sbx_job_show shows by name, its output,
 * its input and its commands. */
static const struct fsx_file job_files[] = {
	{.name = "cmd", .mode = 0444, .ops = &fsx_show_ops},
	{.name = "pid", .mode = 0444, .ops = &fsx_job_pid_ops},
	{.name = "status", .mode = 0444, .ops = &fsx_show_ops},
	{.name = "exit_code", .mode = 0444, .ops = &fsx_show_ops},
	{.name = "reason", .mode = 0444, .ops = &fsx_show_ops},
	{.name = "stdout", .mode = 0444, .ops = &fsx_stream_ops, .job.stream = 0},
	{.name = "stderr", .mode = 0444, .ops = &fsx_stream_ops, .job.stream = 1},
	{.name = "stdin", .mode = 0200, .ops = &fsx_stdin_ops},
	{.name = "ctl", .mode = 0600, .ops = &fsx_ctl_ops, .job.write = sbx_job_ctl},
};

/* A warm pool (/sbx/pools/NAME/): what it makes, how many, how it goes. */
static const struct fsx_file pool_files[] = {
	{.name = "spec", .mode = 0644, .ops = &fsx_setting_ops, .pool = {warm_show_spec, warm_write_spec}},
	{.name = "size", .mode = 0644, .ops = &fsx_setting_ops, .pool = {warm_show_size, warm_write_size}},
	{.name = "status", .mode = 0444, .ops = &fsx_show_ops, .pool.show = warm_show_status},
	{.name = "error", .mode = 0444, .ops = &fsx_show_ops, .pool.show = warm_show_error},
};

/* /sbx/images/: its ctl takes `import NAME SOURCE`. */
static const struct fsx_file images_files[] = {
	{.name = "ctl", .mode = 0600, .ops = &fsx_ctl_ops, .top.write = images_ctl},
};

/* An image (/sbx/images/NAME/): what it is, and how its import goes. */
static const struct fsx_file image_files[] = {
	{.name = "config", .mode = 0444, .ops = &fsx_show_ops, .image.show = image_show_config},
	{.name = "status", .mode = 0444, .ops = &fsx_show_ops, .image.show = image_show_status},
	{.name = "progress", .mode = 0444, .ops = &fsx_show_ops, .image.show = image_show_progress},
	{.name = "error", .mode = 0444, .ops = &fsx_show_ops, .image.show = image_show_error},
};

/* Each table fits the slots of its range (fs/inode.h). */
_Static_assert(ARRAY_SIZE(top_files) <= INO_TOP_FILES_MAX, "too many top-level files");
_Static_assert(ARRAY_SIZE(sbx_files) <= INO_SBX_FILES_MAX, "too many sandbox files");
_Static_assert(ARRAY_SIZE(job_files) <= INO_OBJ_FILES_MAX, "too many job files");
_Static_assert(ARRAY_SIZE(pool_files) <= INO_OBJ_FILES_MAX, "too many pool files");
_Static_assert(ARRAY_SIZE(images_files) <= INO_OBJ_FILES_MAX, "too many images/ files");
_Static_assert(ARRAY_SIZE(image_files) <= INO_OBJ_FILES_MAX, "too many image files");

static const struct fsx_entry root_dirs[] = {{"pools", INO_POOLS}, {"images", INO_IMAGES}, {0}};
static const struct fsx_entry sbx_dirs[] = {{"snapshots", INO_SNAPS}, {"jobs", INO_JOBS}, {0}};

/* Every kind of node: its family, and what a directory holds (its files,
 * its fixed subdirectories, its children by name), in readdir's order. */
const struct fsx_kind fsx_kinds[INO_NKINDS] = {
	[INO_ROOT] = {&fsx_top_family, .holds = INO_TOP_FILE, .subdirs = root_dirs,
		      .dyn = &fsx_root_dir},
	[INO_TOP_FILE] = {&fsx_top_family, ROWS(top_files)},
	[INO_POOLS] = {&fsx_top_family, .dyn = &fsx_pools_dir},
	[INO_POOL] = {&fsx_pool_family, .holds = INO_POOL_FILE},
	[INO_POOL_FILE] = {&fsx_pool_family, ROWS(pool_files)},
	[INO_IMAGES] = {&fsx_top_family, .holds = INO_IMAGES_FILE, .dyn = &fsx_images_dir},
	[INO_IMAGES_FILE] = {&fsx_top_family, ROWS(images_files)},
	[INO_IMAGE] = {&fsx_image_family, .holds = INO_IMAGE_FILE},
	[INO_IMAGE_FILE] = {&fsx_image_family, ROWS(image_files)},
	[INO_SBX] = {&fsx_sbx_family, .holds = INO_SBX_FILE, .subdirs = sbx_dirs},
	[INO_SBX_FILE] = {&fsx_sbx_family, ROWS(sbx_files)},
	[INO_SNAPS] = {&fsx_sbx_family, .dyn = &fsx_snaps_dir},
	[INO_SNAP] = {&fsx_snap_family},
	[INO_JOBS] = {&fsx_sbx_family, .dyn = &fsx_jobs_dir},
	[INO_JOB] = {&fsx_job_family, .holds = INO_JOB_FILE},
	[INO_JOB_FILE] = {&fsx_job_family, ROWS(job_files)},
};
