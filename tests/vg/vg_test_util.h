// Helpers for the vg tests: scratch directories, shell commands, and real
// lvm2 on loop devices.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

namespace cowsnap::vg::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cowsnap-vg-XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout only
};

// Runs `cmd` with /bin/sh; stderr goes to the test's stderr.
inline CommandResult run(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// lvm2 without device-mapper and without its devices file, quiet, and
// looking at `dev` only: other tests on this machine may have loop devices
// with VGs of the same names attached.
inline std::string lvm(const std::string& args, const std::string& dev) {
  return "LVM_SUPPRESS_FD_WARNINGS=1 " + args +
         " --driverloaded n --config 'devices{use_devicesfile=0 global_filter=[\"a|^" + dev +
         "$|\",\"r|.*|\"]}' 2>/dev/null";
}

// Why real lvm2 cannot be used here, or "" when it can.
inline std::string lvm2_unavailable_reason() {
  if (::geteuid() != 0) return "not root";
  if (::access("/sbin/pvcreate", X_OK) != 0 && ::access("/usr/sbin/pvcreate", X_OK) != 0) {
    return "lvm2 tools (pvcreate) not installed";
  }
  if (run("losetup -f >/dev/null 2>&1").exit_code != 0) return "no free loop device";
  return "";
}

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Skips the test (with a warning) when lvm2 cannot be used, or fails it
// under CI=true where it must run.
#define COWSNAP_REQUIRE_LVM2()                                                             \
  do {                                                                                     \
    const std::string why_ = ::cowsnap::vg::testing::lvm2_unavailable_reason();            \
    if (!why_.empty()) {                                                                   \
      if (::cowsnap::vg::testing::in_ci()) FAIL("lvm2 interop test cannot run: " << why_); \
      WARN("SKIPPED: lvm2 interop test needs root, lvm2 and loop devices: " << why_);      \
      return;                                                                              \
    }                                                                                      \
  } while (false)

// A loop device over a file, detached on destruction.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& file) {
    CommandResult r = run("losetup -f --show '" + file + "'");
    REQUIRE(r.exit_code == 0);
    dev_ = r.output.substr(0, r.output.find('\n'));
    REQUIRE(!dev_.empty());
  }
  ~LoopDevice() { detach(); }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  void detach() {
    if (!dev_.empty()) {
      run("losetup -d '" + dev_ + "'");
      dev_.clear();
    }
  }
  [[nodiscard]] const std::string& dev() const { return dev_; }

 private:
  std::string dev_;
};

}  // namespace cowsnap::vg::testing
