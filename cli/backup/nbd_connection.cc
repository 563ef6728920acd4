#include "nbd_connection.h"

#include <fmt/format.h>
#include <libnbd.h>

#include <algorithm>
#include <cerrno>

namespace cowsnap::backup {

namespace {

constexpr uint64_t kMaxRequestBytes = uint64_t{32} << 20;

Status last_error(const std::string& what) {
  const int err = nbd_get_errno();
  const char* msg = nbd_get_error();
  return Status::Error(err != 0 ? err : EIO,
                       fmt::format("{}: {}", what, msg != nullptr ? msg : "libnbd error"));
}

}  // namespace

std::string NbdAddress::describe(const std::string& export_name) const {
  if (port != 0) return fmt::format("nbd://{}:{}/{}", host, port, export_name);
  return fmt::format("nbd+unix:///{}?socket={}", export_name, socket);
}

Result<std::unique_ptr<NbdConnection>> NbdConnection::open(const NbdAddress& address,
                                                           const std::string& export_name) {
  nbd_handle* h = nbd_create();
  if (h == nullptr) return last_error("nbd_create");
  std::unique_ptr<NbdConnection> c(new NbdConnection(h, address.describe(export_name)));
  // Buffers are used only once a read succeeded: libnbd need not clear
  // them first.
  if (nbd_set_pread_initialize(h, false) == -1 || nbd_set_export_name(h, export_name.c_str()) == -1 ||
      nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1) {
    return last_error(c->name_);
  }
  const int connected = address.port != 0
                            ? nbd_connect_tcp(h, address.host.c_str(), std::to_string(address.port).c_str())
                            : nbd_connect_unix(h, address.socket.c_str());
  if (connected == -1) return last_error(fmt::format("cannot connect to {}", c->name_));
  const int64_t size = nbd_get_size(h);
  if (size < 0) return last_error(c->name_);
  c->size_bytes_ = static_cast<uint64_t>(size);
  const int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
  c->max_request_ = max > 0 ? std::min(kMaxRequestBytes, static_cast<uint64_t>(max)) : kMaxRequestBytes;
  c->has_extents_ = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  return c;
}

NbdConnection::~NbdConnection() {
  (void)nbd_shutdown(h_, 0);
  nbd_close(h_);
}

Status NbdConnection::error(const std::string& what) const {
  return last_error(fmt::format("{}: {}", name_, what));
}

Status NbdConnection::pread(uint64_t offset, std::span<uint8_t> buf) {
  if (nbd_pread(h_, buf.data(), buf.size(), offset, 0) == -1) {
    return error(fmt::format("read {}+{}", offset, buf.size()));
  }
  return Status::Ok();
}

Status NbdConnection::pwrite(uint64_t offset, std::span<const uint8_t> buf) {
  if (nbd_pwrite(h_, buf.data(), buf.size(), offset, 0) == -1) {
    return error(fmt::format("write {}+{}", offset, buf.size()));
  }
  return Status::Ok();
}

Status NbdConnection::zero(uint64_t offset, uint64_t length) {
  while (length > 0) {
    const uint64_t n = std::min(length, max_request_);
    if (nbd_zero(h_, n, offset, 0) == -1) return error(fmt::format("write zeroes {}+{}", offset, n));
    offset += n;
    length -= n;
  }
  return Status::Ok();
}

Status NbdConnection::flush() {
  if (nbd_flush(h_, 0) == -1) return error("flush");
  return Status::Ok();
}

namespace {

struct ExtentReply {
  uint64_t want_end = 0;
  uint64_t at = 0;  // the end of the runs added so far
  ExtentMap* out = nullptr;
};

int on_extents(void* user_data, const char* metacontext, uint64_t offset, uint32_t* entries,
               size_t nr_entries, int* /*error*/) {
  auto* reply = static_cast<ExtentReply*>(user_data);
  if (std::string_view(metacontext) != LIBNBD_CONTEXT_BASE_ALLOCATION) return 0;
  reply->at = offset;
  for (size_t i = 0; i + 1 < nr_entries; i += 2) {
    const uint64_t n = std::min<uint64_t>(entries[i], reply->want_end - reply->at);
    if (n == 0) break;
    // A range is skippable only when the server promises it reads as zeroes.
    reply->out->add(n, (entries[i + 1] & LIBNBD_STATE_ZERO) != 0);
    reply->at += n;
  }
  return 0;
}

}  // namespace

Status NbdConnection::extents(uint64_t offset, uint64_t length, ExtentMap& out) {
  if (!has_extents_) {
    out.add(length, false);
    return Status::Ok();
  }
  const uint64_t end = offset + length;
  while (offset < end) {
    // Requests are 32-bit; stay well below.
    const uint64_t n = std::min<uint64_t>(end - offset, uint64_t{1} << 30);
    ExtentReply reply{offset + n, offset, &out};
    if (nbd_block_status(h_, n, offset, nbd_extent_callback{on_extents, &reply, nullptr}, 0) == -1) {
      return error(fmt::format("block status {}+{}", offset, n));
    }
    if (reply.at <= offset)
      return Status::Error(EPROTO, fmt::format("{}: block status made no progress", name_));
    offset = reply.at;
  }
  return Status::Ok();
}

}  // namespace cowsnap::backup
