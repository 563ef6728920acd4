#include "cowsnap/vg/lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cowsnap/io/rbd.h"

namespace cowsnap::vg {

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() { release(); }

void FileLock::release() {
  if (fd_ >= 0) {
    ::close(fd_);  // closing drops the flock
    fd_ = -1;
  }
}

Result<FileLock> FileLock::open_and_lock(const std::string& path, int open_flags, int lock_op) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), open_flags | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno(fmt::format("{}: open lock file", path));
  int rc = 0;
  do {
    rc = ::flock(fd, lock_op);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Error(EWOULDBLOCK, fmt::format("{}: locked by another process", path));
    }
    errno = err;
    return Status::FromErrno(fmt::format("{}: flock", path));
  }
  return FileLock(fd);
}

Result<FileLock> FileLock::acquire(const std::string& path, bool wait) {
  return open_and_lock(path, O_RDWR | O_CREAT, LOCK_EX | (wait ? 0 : LOCK_NB));
}

Result<FileLock> FileLock::try_existing(const std::string& path, bool exclusive) {
  return open_and_lock(path, O_RDONLY, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
}

// ---- PV ownership ----

namespace {

TakeOver rbd_take_over(PvTakeOver t) {
  switch (t) {
    case PvTakeOver::kDeadOwner:
      return TakeOver::kDeadOwner;
    case PvTakeOver::kForce:
      return TakeOver::kForce;
    case PvTakeOver::kNo:
      break;
  }
  return TakeOver::kNo;
}

constexpr std::string_view kOwnerMarker = "/locks/pv_owner";

std::string owner_marker(const std::string& root_dir) { return root_dir + std::string(kOwnerMarker); }

std::string read_comm(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/comm", pid));
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// The root whose ROOT/locks/pv_owner the process keeps open, if any.
std::string holder_root(pid_t pid) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid), ec)) {
    std::error_code link_ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), link_ec).string();
    if (link_ec || target.size() <= kOwnerMarker.size()) continue;
    if (target.compare(target.size() - kOwnerMarker.size(), kOwnerMarker.size(), kOwnerMarker) == 0) {
      return target.substr(0, target.size() - kOwnerMarker.size());
    }
  }
  return {};
}

// /proc shows the holder's root with symlinks resolved.
bool same_root(const std::string& holder_root, const std::string& root_dir) {
  if (holder_root.empty()) return false;
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::weakly_canonical(root_dir, ec);
  return holder_root == (ec ? root_dir : canonical.string());
}

std::string describe(const PvHolder& h) {
  if (h.pid <= 0) return "";
  std::string out = fmt::format("pid {}", h.pid);
  if (!h.command.empty()) out += " " + h.command;
  if (!h.root.empty()) out += ", root " + h.root;
  return " (" + out + ")";
}

Status owned_elsewhere(const std::string& pv_path, const std::optional<PvHolder>& holder) {
  return Status::Error(EBUSY, fmt::format("PV {} is owned by another cowsnap root{}", pv_path,
                                          holder ? describe(*holder) : std::string()));
}

}  // namespace

std::optional<PvHolder> find_pv_holder(const std::string& pv_path) {
  struct stat st {};
  if (::stat(pv_path.c_str(), &st) != 0) return std::nullopt;
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters carry "->".
    std::istringstream fields(line);
    std::string id, kind, mode, access, dev;
    long pid = 0;
    fields >> id >> kind;
    if (kind == "->") fields >> kind;
    fields >> mode >> access >> pid >> dev;
    if (kind != "FLOCK" || !fields) continue;
    unsigned maj = 0, min = 0;
    unsigned long long ino = 0;
    if (std::sscanf(dev.c_str(), "%x:%x:%llu", &maj, &min, &ino) != 3) continue;
    if (maj != major(st.st_dev) || min != minor(st.st_dev) || ino != st.st_ino) continue;
    if (line.find("->") != std::string::npos) continue;  // a waiter, not the holder
    PvHolder h;
    h.pid = static_cast<pid_t>(pid);
    h.command = read_comm(h.pid);
    h.root = holder_root(h.pid);
    return h;
  }
  return std::nullopt;
}

Result<PvLock> PvLock::acquire(const std::string& pv_path, const std::string& root_dir, int same_root_wait_ms,
                               PvTakeOver take_over) {
  if (is_rbd_name(pv_path)) return acquire_rbd(pv_path, take_over);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(same_root_wait_ms);
  PvLock lock;
  lock.path_ = pv_path;
  // The marker first, so that whoever sees the PV's lock can find the root.
  COWSNAP_ASSIGN_OR_RETURN(
      lock.owner_, FileLock::open_and_lock(owner_marker(root_dir), O_RDWR | O_CREAT, LOCK_SH | LOCK_NB));
  constexpr auto kPoll = std::chrono::milliseconds(20);
  bool looked_again = false;
  for (;;) {
    Result<FileLock> pv = FileLock::try_existing(pv_path, true);
    if (pv.ok()) {
      lock.pv_ = std::move(pv).value();
      return lock;
    }
    if (pv.status().errnum() != EWOULDBLOCK) return pv.status();
    const std::optional<PvHolder> holder = find_pv_holder(pv_path);
    // A holder letting go can refuse the lock and then be gone from
    // /proc/locks, or still be there with ROOT/locks/pv_owner closed (a
    // dying process closes it before the PV). Look once more before taking
    // it for another root's.
    if ((!holder || holder->root.empty()) && !looked_again) {
      looked_again = true;
      std::this_thread::sleep_for(kPoll);
      continue;
    }
    looked_again = false;
    if (!holder || !same_root(holder->root, root_dir) || std::chrono::steady_clock::now() >= deadline)
      return owned_elsewhere(pv_path, holder);
    std::this_thread::sleep_for(kPoll);
  }
}

Result<PvLock> PvLock::acquire_rbd(const std::string& pv_path, PvTakeOver take_over) {
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<RbdDevice> image, RbdDevice::open(pv_path, {}));
  COWSNAP_RETURN_IF_ERROR(image->acquire_exclusive_lock(rbd_take_over(take_over)));
  PvLock lock;
  lock.path_ = pv_path;
  lock.rbd_image_ = std::move(image);
  return lock;
}

Result<std::vector<PvLock>> claim_pvs_for_edit(const std::vector<std::string>& paths,
                                               const std::string& root_dir) {
  std::vector<PvLock> held;
  held.reserve(paths.size());
  for (const std::string& path : paths) {
    if (is_rbd_name(path)) {
      COWSNAP_ASSIGN_OR_RETURN(PvLock lock, PvLock::acquire(path, root_dir, 0));
      held.push_back(std::move(lock));
      continue;
    }
    Result<PvLock> lock = PvLock::acquire(path, root_dir, 0);
    if (lock.ok()) {
      held.push_back(std::move(lock).value());
      continue;
    }
    if (lock.status().errnum() != EBUSY) return lock.status();
    // Held: by this root's server (fine, the ROOT/locks files order us), or
    // by another root.
    const std::optional<PvHolder> holder = find_pv_holder(path);
    if (!holder || !same_root(holder->root, root_dir)) return lock.status();
  }
  return held;
}

Result<std::vector<PvLock>> claim_pvs_for_edit(const std::map<std::string, std::string>& pv_paths,
                                               const std::string& root_dir) {
  std::vector<std::string> paths;
  for (const auto& [name, path] : pv_paths) paths.push_back(path);
  return claim_pvs_for_edit(paths, root_dir);
}

}  // namespace cowsnap::vg
