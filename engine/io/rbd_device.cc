// RbdDevice's I/O and its exclusive lock. Every call is librbd's
// asynchronous API with a completion waited on, so several calls of one
// request (a gather write's pieces, then its flush) are in flight together.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cowsnap/io/rbd.h"
#include "rbd_image.h"

namespace cowsnap {
namespace {

// A completion that is released however the call ends.
class Completion {
 public:
  Completion() { (void)rbd_aio_create_completion(nullptr, nullptr, &c_); }
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion() {
    if (c_ != nullptr) rbd_aio_release(c_);
  }
  [[nodiscard]] rbd_completion_t get() const { return c_; }
  // The call's result: bytes or 0, or -errno.
  ssize_t wait() {
    (void)rbd_aio_wait_for_complete(c_);
    return rbd_aio_get_return_value(c_);
  }

 private:
  rbd_completion_t c_ = nullptr;
};

// librbd's -errno as a Status naming the image and the operation. The two
// errors that mean "not ours any more" say so.
Status rbd_error(const std::string& name, int rc, std::string_view what) {
  const int err = rc < 0 ? -rc : EIO;
  std::string why = errno_text(err);
  if (err == EROFS) {
    why += " (another client holds the image's exclusive lock)";
  } else if (err == ESHUTDOWN) {
    why += " (this client was blocklisted: another server took the image over)";
  }
  return Status::Error(err, fmt::format("{}: {}: {}", name, what, why));
}

// The librbd call `start` with a fresh completion, waited for.
template <typename Start>
Status run(const std::string& name, std::string_view what, Start start) {
  Completion c;
  if (c.get() == nullptr) return Status::Error(ENOMEM, fmt::format("{}: {}: no completion", name, what));
  if (int rc = start(c.get()); rc < 0) return rbd_error(name, rc, what);
  const ssize_t rc = c.wait();
  return rc < 0 ? rbd_error(name, static_cast<int>(rc), what) : Status::Ok();
}

// "client.4157" -> 4157; -1 when the text is not an entity name.
int64_t client_global_id(const std::string& owner) {
  constexpr std::string_view kClient = "client.";
  if (!owner.starts_with(kClient)) return -1;
  try {
    return std::stoll(owner.substr(kClient.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

RbdDevice::RbdDevice(std::string name, std::shared_ptr<Image> image, uint64_t size_bytes, bool read_only)
    : name_(std::move(name)), image_(std::move(image)), size_bytes_(size_bytes), read_only_(read_only) {}

Status RbdDevice::check_writable() const {
  return read_only_ ? Status::Error(EROFS, fmt::format("{}: opened read-only", name_)) : Status::Ok();
}

RbdDevice::~RbdDevice() {
  std::lock_guard lock(lock_mu_);
  if (lock_held_) (void)rbd_lock_release(image_->handle);
}

Status RbdDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  if (buf.empty()) return Status::Ok();
  char* data = reinterpret_cast<char*>(buf.data());  // NOLINT: librbd's char buffers
  return run(name_, fmt::format("read of {} bytes at {}", buf.size(), offset),
             [&](rbd_completion_t c) { return rbd_aio_read(image_->handle, offset, buf.size(), data, c); });
}

Status RbdDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  COWSNAP_RETURN_IF_ERROR(check_writable());
  if (buf.empty()) return Status::Ok();
  const char* data = reinterpret_cast<const char*>(buf.data());  // NOLINT: librbd's char buffers
  return run(name_, fmt::format("write of {} bytes at {}", buf.size(), offset),
             [&](rbd_completion_t c) { return rbd_aio_write(image_->handle, offset, buf.size(), data, c); });
}

Status RbdDevice::flush() {
  if (read_only_) return Status::Ok();
  return run(name_, "flush", [&](rbd_completion_t c) { return rbd_aio_flush(image_->handle, c); });
}

Status RbdDevice::write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, gather_bytes(pieces)));
  COWSNAP_RETURN_IF_ERROR(check_writable());
  std::vector<Completion> done(pieces.size());
  Status first_error;
  size_t started = 0;
  uint64_t at = offset;
  for (const std::span<const uint8_t>& piece : pieces) {
    if (piece.empty()) {
      ++started;
      continue;
    }
    const char* data = reinterpret_cast<const char*>(piece.data());  // NOLINT: librbd's char buffers
    if (int rc = rbd_aio_write(image_->handle, at, piece.size(), data, done[started].get()); rc < 0) {
      first_error = rbd_error(name_, rc, fmt::format("write of {} bytes at {}", piece.size(), at));
      break;
    }
    ++started;
    at += piece.size();
  }
  at = offset;
  for (size_t i = 0; i < started; ++i) {
    if (pieces[i].empty()) continue;
    const ssize_t rc = done[i].wait();
    if (rc < 0 && first_error.ok()) {
      first_error = rbd_error(name_, static_cast<int>(rc),
                              fmt::format("write of {} bytes at {}", pieces[i].size(), at));
    }
    at += pieces[i].size();
  }
  COWSNAP_RETURN_IF_ERROR(first_error);
  return flush();
}

Status RbdDevice::write_zeroes(uint64_t offset, uint64_t length) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  COWSNAP_RETURN_IF_ERROR(check_writable());
  if (length == 0) return Status::Ok();
  return run(name_, fmt::format("write zeroes of {} bytes at {}", length, offset), [&](rbd_completion_t c) {
    return rbd_aio_write_zeroes(image_->handle, offset, length, c, 0, 0);
  });
}

Result<bool> RbdDevice::owns_lock() {
  int owner = 0;
  if (int rc = rbd_is_exclusive_lock_owner(image_->handle, &owner); rc < 0) {
    return rbd_error(name_, rc, "exclusive lock state");
  }
  return owner != 0;
}

namespace {

struct LockOwner {
  std::string name;  // "client.4157"
  bool watching = false;
  std::string address;
};

Result<std::vector<std::string>> lock_owners(const std::string& name, rbd_image_t image) {
  rbd_lock_mode_t mode{};
  std::vector<char*> owners(8, nullptr);
  size_t count = owners.size();
  if (int rc = rbd_lock_get_owners(image, &mode, owners.data(), &count); rc < 0) {
    if (rc == -ENOENT) return std::vector<std::string>{};
    return rbd_error(name, rc, "list the exclusive lock's owners");
  }
  std::vector<std::string> out(owners.begin(), owners.begin() + static_cast<std::ptrdiff_t>(count));
  rbd_lock_get_owners_cleanup(owners.data(), count);
  return out;
}

// The owner and whether it still watches the image's header, which a live
// client does and a dead one stops doing once its watch times out
// (osd_client_watch_timeout after its last ping).
Result<LockOwner> describe_owner(const std::string& name, rbd_image_t image, const std::string& owner) {
  LockOwner o;
  o.name = owner;
  o.address = owner;
  std::vector<rbd_image_watcher_t> watchers(64);
  size_t count = watchers.size();
  if (int rc = rbd_watchers_list(image, watchers.data(), &count); rc < 0) {
    return rbd_error(name, rc, "list the image's watchers");
  }
  // librbd names an owner by its client address ("127.0.0.1:0/912154785");
  // an entity name ("client.4157") is matched by id.
  const int64_t id = client_global_id(owner);
  for (size_t i = 0; i < count; ++i) {
    if (owner == watchers[i].addr || (id >= 0 && watchers[i].id == id)) {
      o.watching = true;
      o.address = watchers[i].addr;
      o.name = fmt::format("client.{}", watchers[i].id);
    }
  }
  rbd_watchers_list_cleanup(watchers.data(), count);
  return o;
}

}  // namespace

Status RbdDevice::acquire_exclusive_lock(TakeOver take_over) {
  COWSNAP_RETURN_IF_ERROR(check_writable());
  std::lock_guard lock(lock_mu_);
  if (lock_held_) {
    COWSNAP_ASSIGN_OR_RETURN(bool owner, owns_lock());
    if (owner) return Status::Ok();
    lock_held_ = false;
  }
  int rc = rbd_lock_acquire(image_->handle, RBD_LOCK_MODE_EXCLUSIVE);
  if (rc == 0) {
    lock_held_ = true;
    return Status::Ok();
  }
  if (rc != -EROFS && rc != -EBUSY) return rbd_error(name_, rc, "acquire the exclusive lock");
  COWSNAP_ASSIGN_OR_RETURN(std::vector<std::string> owners, lock_owners(name_, image_->handle));
  if (owners.empty()) return rbd_error(name_, rc, "acquire the exclusive lock");
  const std::string& owner_name = owners.front();
  COWSNAP_ASSIGN_OR_RETURN(LockOwner owner, describe_owner(name_, image_->handle, owner_name));
  if (take_over == TakeOver::kNo) {
    return Status::Error(EBUSY,
                         fmt::format("{}: in use by another server: {} owns its exclusive lock{} (if that "
                                     "server is dead, serve with --take-over)",
                                     name_, owner.name,
                                     owner.watching ? fmt::format(" and is alive at {}", owner.address)
                                                    : ", and its watch has lapsed"));
  }
  if (take_over == TakeOver::kDeadOwner && owner.watching) {
    // A killed owner still looks alive until its watch times out; wait
    // that long for it, no longer.
    const std::string configured = ceph_conf_value(image_->cluster->handle, "osd_client_watch_timeout");
    const int timeout_s = configured.empty() ? 30 : std::max(1, std::atoi(configured.c_str()));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s + 5);
    while (owner.watching && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      COWSNAP_ASSIGN_OR_RETURN(owner, describe_owner(name_, image_->handle, owner_name));
    }
    if (owner.watching) {
      return Status::Error(EBUSY, fmt::format("{}: not taken over: its owner {} is alive at {} (it still "
                                              "watches the image after {} s); --force breaks a live "
                                              "owner's lock",
                                              name_, owner.name, owner.address, timeout_s + 5));
    }
  }
  // Breaking blocklists the old owner (rbd_blocklist_on_break_lock), so a
  // write it still has in flight cannot land after ours.
  rc = rbd_lock_break(image_->handle, RBD_LOCK_MODE_EXCLUSIVE, owner_name.c_str());
  if (rc < 0 && rc != -ENOENT)
    return rbd_error(name_, rc, fmt::format("break {}'s exclusive lock", owner_name));
  rc = rbd_lock_acquire(image_->handle, RBD_LOCK_MODE_EXCLUSIVE);
  if (rc < 0)
    return rbd_error(name_, rc, fmt::format("acquire the exclusive lock after breaking {}'s", owner_name));
  lock_held_ = true;
  return Status::Ok();
}

}  // namespace cowsnap
