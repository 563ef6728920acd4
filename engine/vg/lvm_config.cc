// lvm.conf (lvm_config.h).
#include "cowsnap/vg/lvm_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cowsnap/vg/config_tree.h"

namespace cowsnap::vg {

uint32_t LvmConfig::threshold_percent() const {
  return static_cast<uint32_t>(std::clamp<int64_t>(snapshot_autoextend_threshold, 50, 100));
}

uint64_t LvmConfig::grown_extents(uint64_t extents) const {
  const auto percent = static_cast<uint64_t>(std::max<int64_t>(snapshot_autoextend_percent, 0));
  return extents + (extents * percent + 99) / 100;
}

Result<LvmConfig> parse_lvm_config(std::string_view text, const std::string& source) {
  auto tree = parse_config(text);
  if (!tree.ok()) return tree.status().with_context(source);
  LvmConfig config;
  const ConfigSection* activation = tree->find_section("activation");
  if (activation == nullptr) return config;
  auto read_int = [&](std::string_view key, int64_t& into) -> Status {
    const ConfigValue* v = activation->find_value(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_int()) {
      return Status::Error(EINVAL, fmt::format("{}: activation/{} must be an integer", source, key));
    }
    into = v->as_int();
    return Status::Ok();
  };
  COWSNAP_RETURN_IF_ERROR(read_int("snapshot_autoextend_threshold", config.snapshot_autoextend_threshold));
  COWSNAP_RETURN_IF_ERROR(read_int("snapshot_autoextend_percent", config.snapshot_autoextend_percent));
  COWSNAP_RETURN_IF_ERROR(read_int("monitoring", config.monitoring));
  return config;
}

Result<LvmConfig> load_lvm_config(const std::string& root_dir) {
  const std::string path = root_dir + "/lvm.conf";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) return LvmConfig{};
  std::ifstream in(path);
  if (!in) return Status::Error(EIO, fmt::format("{}: cannot be read", path));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::Error(EIO, fmt::format("{}: cannot be read", path));
  return parse_lvm_config(text.str(), path);
}

}  // namespace cowsnap::vg
