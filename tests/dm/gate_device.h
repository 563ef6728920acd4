// A device wrapper for deterministic race tests: a call of the chosen kind
// touching a chosen byte offset stops at the gate until the test opens it,
// and a write in a chosen range can be made to fail with a chosen errno (a
// host filesystem that ran out of space).
#pragma once

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include "cowsnap/io/devices.h"

namespace cowsnap::testing {

class GateDevice final : public DeviceWrapper {
 public:
  enum class Kind { kRead, kWrite };
  using DeviceWrapper::DeviceWrapper;

  // The next call of `kind` whose range contains byte `offset` waits at the
  // gate until open().
  void arm(Kind kind, uint64_t offset) {
    std::lock_guard lock(mu_);
    armed_ = Armed{kind, offset};
    entered_ = false;
    opened_ = false;
  }
  // Whether the armed call reached the gate within `timeout`.
  bool wait_entered(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return entered_; });
  }
  void open() {
    std::lock_guard lock(mu_);
    opened_ = true;
    cv_.notify_all();
  }
  // Writes touching [from, to) fail with `errnum` (0: they pass again).
  void fail_writes(uint64_t from, uint64_t to, int errnum) {
    std::lock_guard lock(mu_);
    fail_from_ = from;
    fail_to_ = to;
    fail_errnum_ = errnum;
  }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    COWSNAP_RETURN_IF_ERROR(pass(Kind::kRead, offset, buf.size()));
    return DeviceWrapper::read(offset, buf);
  }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    COWSNAP_RETURN_IF_ERROR(pass(Kind::kWrite, offset, buf.size()));
    return DeviceWrapper::write(offset, buf);
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    COWSNAP_RETURN_IF_ERROR(pass(Kind::kWrite, offset, length));
    return DeviceWrapper::write_zeroes(offset, length);
  }

 private:
  struct Armed {
    Kind kind;
    uint64_t offset;
  };
  Status pass(Kind kind, uint64_t offset, uint64_t length) {
    std::unique_lock lock(mu_);
    if (armed_ && armed_->kind == kind && armed_->offset >= offset && armed_->offset < offset + length) {
      armed_.reset();
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return opened_; });
    }
    if (kind == Kind::kWrite && fail_errnum_ != 0 && offset < fail_to_ && offset + length > fail_from_) {
      return Status::Error(fail_errnum_, describe() + ": injected write failure (no space left on device)");
    }
    return Status::Ok();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Armed> armed_;
  bool entered_ = false;
  bool opened_ = false;
  uint64_t fail_from_ = 0, fail_to_ = 0;
  int fail_errnum_ = 0;
};

}  // namespace cowsnap::testing
