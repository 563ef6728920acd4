#include "cowsnap/vg/root.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "atomic_file.h"
#include "cowsnap/io/rbd.h"

namespace cowsnap::vg {
namespace {

constexpr std::string_view kDevicesHeader =
    "# cowsnap devices file: the PVs cowsnap scans, one path per line\n"
    "# (the role of lvm2's /etc/lvm/devices/system.devices).\n";

Status make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(fmt::format("{}: mkdir", path));
  }
  return Status::Ok();
}

}  // namespace

std::string absolute_path(const std::string& path) {
  if (is_rbd_name(path)) return path;
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}

Result<Root> Root::open(const std::string& dir) {
  if (dir.empty()) return Status::Error(EINVAL, "root directory not given");
  const std::string abs = absolute_path(dir);
  COWSNAP_RETURN_IF_ERROR(make_dir(abs));
  COWSNAP_RETURN_IF_ERROR(make_dir(abs + "/locks"));
  Root root(abs);
  struct stat st {};
  if (::stat(root.devices_file().c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno(fmt::format("{}: stat", root.devices_file()));
    COWSNAP_RETURN_IF_ERROR(write_file_atomically(root.devices_file(), std::string(kDevicesHeader)));
  }
  return root;
}

Result<std::vector<std::string>> Root::devices() const {
  std::ifstream in(devices_file());
  if (!in) return Status::FromErrno(fmt::format("{}: open", devices_file()));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    const size_t e = line.find_last_not_of(" \t\r");
    out.push_back(line.substr(b, e - b + 1));
  }
  return out;
}

Status Root::add_device(const std::string& path) const {
  const std::string abs = absolute_path(path);
  COWSNAP_ASSIGN_OR_RETURN(std::vector<std::string> list, devices());
  if (std::find(list.begin(), list.end(), abs) != list.end()) {
    return Status::Error(EEXIST, fmt::format("{} is already in the devices file", abs));
  }
  std::ifstream in(devices_file());
  std::stringstream content;
  content << in.rdbuf();
  std::string text = content.str();
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += abs + "\n";
  return write_file_atomically(devices_file(), text);
}

Status Root::remove_device(const std::string& path) const {
  const std::string abs = absolute_path(path);
  std::ifstream in(devices_file());
  if (!in) return Status::FromErrno(fmt::format("{}: open", devices_file()));
  std::string text;
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t");
    const size_t e = line.find_last_not_of(" \t\r");
    if (b != std::string::npos && line[b] != '#' && line.substr(b, e - b + 1) == abs) {
      found = true;
      continue;
    }
    text += line + "\n";
  }
  if (!found) return Status::Error(ENOENT, fmt::format("{} is not in the devices file", abs));
  return write_file_atomically(devices_file(), text);
}

Result<FileLock> Root::lock_vg(const std::string& vg_name, bool wait) const {
  return FileLock::acquire(fmt::format("{}/locks/V_{}.lock", dir_, vg_name), wait);
}

Result<FileLock> Root::lock_global(bool wait) const {
  return FileLock::acquire(dir_ + "/locks/P_global.lock", wait);
}

}  // namespace cowsnap::vg
