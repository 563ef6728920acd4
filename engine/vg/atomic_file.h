// Small files the volume manager keeps beside the PVs (the devices file,
// metadata archives and backups) are replaced whole or not at all.
#pragma once

#include <string>

#include "cowsnap/common/status.h"

namespace cowsnap::vg {

// Writes `content` to PATH.tmp, fsyncs it, renames it over `path` and
// fsyncs the directory, so after a crash `path` holds the old content or
// the new, never a torn mix, and the rename itself is durable.
Status write_file_atomically(const std::string& path, const std::string& content);

}  // namespace cowsnap::vg
