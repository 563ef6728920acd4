// pvdisplay, vgdisplay, lvdisplay: lvm2's long "--- ... ---" layouts.
#pragma once

#include <string>
#include <vector>

#include "command.h"

namespace cowsnap::cli {

int run_pvdisplay(Context& ctx, const std::vector<std::string>& paths);
int run_vgdisplay(Context& ctx, const std::vector<std::string>& vg_names);
int run_lvdisplay(Context& ctx, const std::vector<std::string>& targets);

}  // namespace cowsnap::cli
