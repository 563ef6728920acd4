// One libnbd connection to an export of the running server, as the backup
// commands use it. Every libnbd error becomes a Status with libnbd's errno
// (EIO when it has none) and message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"

struct nbd_handle;

namespace cowsnap::backup {

// Where the server listens: a Unix socket (cowsnap serve's default is
// ROOT/nbd.sock) or a TCP port on `host`.
struct NbdAddress {
  std::string socket;
  std::string host = "localhost";
  int port = 0;
  [[nodiscard]] std::string describe(const std::string& export_name) const;
};

class NbdConnection {
 public:
  // Asks for base:allocation, so extents() works where the server has it.
  static Result<std::unique_ptr<NbdConnection>> open(const NbdAddress& address,
                                                     const std::string& export_name);
  ~NbdConnection();
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;

  [[nodiscard]] uint64_t size_bytes() const { return size_bytes_; }
  // The largest request the server takes (at most 32 MiB here).
  [[nodiscard]] uint64_t max_request_bytes() const { return max_request_; }
  [[nodiscard]] bool has_extents() const { return has_extents_; }
  [[nodiscard]] nbd_handle* handle() { return h_; }
  [[nodiscard]] const std::string& name() const { return name_; }

  Status pread(uint64_t offset, std::span<uint8_t> buf);
  Status pwrite(uint64_t offset, std::span<const uint8_t> buf);
  Status zero(uint64_t offset, uint64_t length);
  Status flush();
  // The server's allocation map of [offset, offset + length), asked for as
  // often as it takes (a server may answer a prefix). Without
  // base:allocation: one data run.
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out);
  // The last libnbd error, with `what` in front.
  [[nodiscard]] Status error(const std::string& what) const;

 private:
  NbdConnection(nbd_handle* h, std::string name) : h_(h), name_(std::move(name)) {}
  nbd_handle* h_;
  std::string name_;
  uint64_t size_bytes_ = 0;
  uint64_t max_request_ = 0;
  bool has_extents_ = false;
};

}  // namespace cowsnap::backup
