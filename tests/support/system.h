// Test helpers: a private scratch directory, shell commands, and loop
// devices over scratch files.
#pragma once

#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

namespace cowsnap::testing {

// A private directory under $TMPDIR (or /tmp), removed with its contents
// when the test ends.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/cowsnap-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// True when the environment says CI=true: tests that need root or loop
// devices must run there, so missing prerequisites are failures.
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// `s` quoted for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;  // -1: could not run, or killed by a signal
  std::string output;  // stdout only; stderr goes to the test's stderr
};

// Runs `cmd` with /bin/sh.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Why this process cannot attach loop devices, or "" when it can try.
inline std::string loop_devices_unavailable_reason() {
  std::string why;
  const auto add = [&why](const std::string& s) { why += (why.empty() ? "" : "; ") + s; };
  if (::geteuid() != 0) add("not running as root (euid " + std::to_string(::geteuid()) + ")");
  if (::access("/dev/loop-control", F_OK) != 0) add("/dev/loop-control is missing (loop driver not loaded?)");
  if (run_command("command -v losetup >/dev/null 2>&1").exit_code != 0) add("losetup (util-linux) not found");
  return why;
}

// A loop device over a file, attached with `losetup -f --show` and always
// detached (`losetup -d`) on destruction, also when the test fails.
// While attached it holds the device open with LO_FLAGS_AUTOCLEAR set, so
// the kernel detaches it even if the process is killed before the
// destructor runs. `losetup -d` runs while that descriptor is still open,
// so the device number cannot be reused by someone else before the command
// acts on it; the detach completes when the last descriptor closes (close
// every FileDevice on it before the guard goes away).
class LoopDevice {
 public:
  // The attached device, or nullopt with `error` saying why it failed.
  static std::optional<LoopDevice> attach(const std::string& file, std::string* error) {
    // Until autoclear is set, dying would leave the device attached: hold
    // back SIGINT, SIGTERM and SIGHUP (not SIGKILL) until then.
    const SignalsDeferred deferred;
    const CommandResult r = run_command("losetup -f --show " + shell_quote(file));
    const std::string dev = r.output.substr(0, r.output.find('\n'));
    if (r.exit_code != 0 || dev.rfind("/dev/", 0) != 0) {
      // Attached after all but unparsable output? Never leave it behind.
      run_command("losetup -n -O NAME -j " + shell_quote(file) + " | xargs -r -n1 losetup -d");
      *error = "`losetup -f --show " + file + "` exited " + std::to_string(r.exit_code) + " printing '" +
               r.output + "'";
      return std::nullopt;
    }
    LoopDevice loop(dev);
    loop.hold_with_autoclear();
    return loop;
  }
  LoopDevice(LoopDevice&& other) noexcept : dev_(std::move(other.dev_)), holder_fd_(other.holder_fd_) {
    other.dev_.clear();
    other.holder_fd_ = -1;
  }
  LoopDevice& operator=(LoopDevice&&) = delete;
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  ~LoopDevice() { detach(); }

  // Idempotent; reports (but cannot throw from a destructor) a failure.
  void detach() {
    if (!dev_.empty()) {
      const CommandResult r = run_command("losetup -d " + shell_quote(dev_));
      if (r.exit_code != 0) {
        std::fprintf(stderr, "warning: `losetup -d %s` exited %d%s\n", dev_.c_str(), r.exit_code,
                     holder_fd_ >= 0 ? " (autoclear detaches it on close)" : ": loop device leaked");
      }
      dev_.clear();
    }
    if (holder_fd_ >= 0) {
      ::close(holder_fd_);
      holder_fd_ = -1;
    }
  }
  [[nodiscard]] const std::string& dev() const { return dev_; }

 private:
  explicit LoopDevice(std::string dev) : dev_(std::move(dev)) {}

  class SignalsDeferred {
   public:
    SignalsDeferred() {
      sigset_t block;
      sigemptyset(&block);
      sigaddset(&block, SIGINT);
      sigaddset(&block, SIGTERM);
      sigaddset(&block, SIGHUP);
      ::pthread_sigmask(SIG_BLOCK, &block, &old_);
    }
    ~SignalsDeferred() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
    SignalsDeferred(const SignalsDeferred&) = delete;
    SignalsDeferred& operator=(const SignalsDeferred&) = delete;

   private:
    sigset_t old_{};
  };

  // Best effort: without it only the destructor detaches the device.
  void hold_with_autoclear() {
    holder_fd_ = ::open(dev_.c_str(), O_RDONLY | O_CLOEXEC);
    struct loop_info64 info {};
    if (holder_fd_ < 0 || ::ioctl(holder_fd_, LOOP_GET_STATUS64, &info) != 0) {
      std::fprintf(stderr, "warning: cannot hold %s open: %s\n", dev_.c_str(), std::strerror(errno));
      return;
    }
    info.lo_flags |= LO_FLAGS_AUTOCLEAR;
    if (::ioctl(holder_fd_, LOOP_SET_STATUS64, &info) != 0) {
      std::fprintf(stderr, "warning: cannot set autoclear on %s: %s\n", dev_.c_str(), std::strerror(errno));
    }
  }

  std::string dev_;
  int holder_fd_ = -1;
};

// The loop devices (`losetup -j`) still backed by `file`, one per line.
inline std::string loop_devices_backed_by(const std::string& file) {
  return run_command("losetup -n -O NAME -j " + shell_quote(file)).output;
}

}  // namespace cowsnap::testing
