/* The file tree of DESIGN.md as tables: adding a file is adding a row. */
#include "fsx.h"

const struct fsx_file fsx_top_files[] = {
	{.name = "ctl", .mode = 0200, .write_top = engine_ctl},
	{.name = "stats", .mode = 0444, .show_top = engine_show_stats},
	{.name = "error", .mode = 0444, .show_top = engine_show_error},
	{.name = "events", .mode = 0444, .show_top = engine_show_events, .pollable = true},
	{.name = "images", .mode = 0444, .show_top = engine_show_images},
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
