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
	{.name = "wait", .mode = 0444, .wait = sbx_wait_change},
	{.name = "error", .mode = 0444, .show = sbx_show_error},
	{.name = "log", .mode = 0444, .show = sbx_show_log},
	{.name = "exec", .mode = 0600, .session = true},
	{.name = "root", .mode = 0777, .link = sbx_root_link},
};
const size_t fsx_sbx_nfiles = sizeof(fsx_sbx_files) / sizeof(fsx_sbx_files[0]);
