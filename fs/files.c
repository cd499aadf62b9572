/* The file tree of DESIGN.md as tables: adding a file is adding a row. */
#include "fsx.h"

const struct fsx_file fsx_top_files[] = {
	{.name = "ctl", .mode = 0200, .write_top = engine_ctl},
	{.name = "stats", .mode = 0444, .show_top = engine_show_stats},
	{.name = "error", .mode = 0444, .show_top = engine_show_error},
	{.name = "events", .mode = 0444, .show_top = engine_show_events, .pollable = true},
	{.name = "metrics", .mode = 0444, .show_top = engine_show_metrics},
};
const size_t fsx_top_nfiles = sizeof(fsx_top_files) / sizeof(fsx_top_files[0]);

const struct fsx_file fsx_sbx_files[] = {
	{.name = "ctl", .mode = 0200, .write = sbx_ctl},
	{.name = "status", .mode = 0444, .show = sbx_show_status},
	{.name = "stats", .mode = 0444, .show = sbx_show_stats},
	{.name = "config", .mode = 0444, .show = sbx_show_config},
	{.name = "events", .mode = 0444, .show = sbx_show_events, .pollable = true},
	{.name = "wait", .mode = 0444, .show = sbx_show_events, .wait = true},
	{.name = "error", .mode = 0444, .show = sbx_show_error},
	{.name = "log", .mode = 0444, .show = sbx_show_log},
	{.name = "net", .mode = 0444, .show = sbx_show_net},
	{.name = "exec", .mode = 0600, .session = true},
	{.name = "run", .mode = 0600, .clone = sbx_job_start},
	{.name = "root", .mode = 0777, .link = sbx_root_link},
};
const size_t fsx_sbx_nfiles = sizeof(fsx_sbx_files) / sizeof(fsx_sbx_files[0]);

/* A warm pool (/sbx/pools/NAME/): what it makes, how many, how it goes. */
const struct fsx_file fsx_pool_files[] = {
	{.name = "spec", .mode = 0644, .show_pool = warm_show_spec, .write_pool = warm_write_spec},
	{.name = "size", .mode = 0644, .show_pool = warm_show_size, .write_pool = warm_write_size},
	{.name = "status", .mode = 0444, .show_pool = warm_show_status},
	{.name = "error", .mode = 0444, .show_pool = warm_show_error},
};
const size_t fsx_pool_nfiles = sizeof(fsx_pool_files) / sizeof(fsx_pool_files[0]);

/* /sbx/images/: its ctl takes `import NAME SOURCE`. */
const struct fsx_file fsx_images_files[] = {
	{.name = "ctl", .mode = 0200, .write_top = images_ctl},
};
const size_t fsx_images_nfiles = sizeof(fsx_images_files) / sizeof(fsx_images_files[0]);

/* An image (/sbx/images/NAME/): what it is, and how its import goes. */
const struct fsx_file fsx_image_files[] = {
	{.name = "config", .mode = 0444, .show_image = image_show_config},
	{.name = "status", .mode = 0444, .show_image = image_show_status},
	{.name = "progress", .mode = 0444, .show_image = image_show_progress},
	{.name = "error", .mode = 0444, .show_image = image_show_error},
};
const size_t fsx_image_nfiles = sizeof(fsx_image_files) / sizeof(fsx_image_files[0]);

const struct fsx_job_file fsx_job_files[] = {
	{.name = "cmd", .mode = 0444, .kind = JF_SHOW},
	{.name = "pid", .mode = 0444, .kind = JF_SHOW},
	{.name = "status", .mode = 0444, .kind = JF_SHOW},
	{.name = "exit_code", .mode = 0444, .kind = JF_SHOW},
	{.name = "reason", .mode = 0444, .kind = JF_SHOW},
	{.name = "stdout", .mode = 0444, .kind = JF_STREAM, .stream = 0},
	{.name = "stderr", .mode = 0444, .kind = JF_STREAM, .stream = 1},
	{.name = "stdin", .mode = 0200, .kind = JF_STDIN},
	{.name = "ctl", .mode = 0200, .kind = JF_CTL},
};
const size_t fsx_job_nfiles = sizeof(fsx_job_files) / sizeof(fsx_job_files[0]);
