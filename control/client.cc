#include "cowsnap/control/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cowsnap::control {

using nlohmann::json;

Result<Client> Client::connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Status::Error(ENAMETOOLONG, fmt::format("control socket path too long: {}", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    Status s = Status::FromErrno(fmt::format("cannot connect to the cowsnap server at {}", path));
    ::close(fd);
    return s;
  }
  return Client(fd);
}

bool Client::server_running(const std::string& root_dir) { return connect_root(root_dir).ok(); }

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    buffer_ = std::move(other.buffer_);
    other.fd_ = -1;
  }
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Status Client::send_line(const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("sending to the cowsnap server");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> Client::read_line() {
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (buffer_.size() > kMaxLineBytes)
      return Status::Error(EPROTO, "response from the cowsnap server too long");
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("reading from the cowsnap server");
    }
    if (n == 0) return Status::Error(ECONNRESET, "the cowsnap server closed the control connection");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Result<Response> Client::call(const json& req) {
  if (fd_ < 0) return Status::Error(ENOTCONN, "control client is not connected");
  std::string request_line;
  try {
    request_line = req.dump() + "\n";
  } catch (const json::type_error&) {
    // A name from the command line that is not UTF-8 cannot be sent (the
    // CLI refuses such names first; this is the backstop).
    return Status::Error(EINVAL,
                         "the request holds bytes that are not UTF-8 (names must be [a-zA-Z0-9+_.-])");
  }
  COWSNAP_RETURN_IF_ERROR(send_line(request_line));
  COWSNAP_ASSIGN_OR_RETURN(std::string line, read_line());
  COWSNAP_ASSIGN_OR_RETURN(json j, parse_line(line));
  return response_from_json(j);
}

Result<Response> Client::request(const json& req) {
  COWSNAP_ASSIGN_OR_RETURN(Response r, call(req));
  if (!r.ok) return r.status();
  return r;
}

Result<std::vector<LvState>> Client::lvs() {
  COWSNAP_ASSIGN_OR_RETURN(Response r, request({{"op", "lvs"}}));
  std::vector<LvState> out;
  if (!r.body.contains("lvs") || !r.body["lvs"].is_array()) {
    return Status::Error(EPROTO, "the cowsnap server's lvs response has no \"lvs\" array");
  }
  for (const json& item : r.body["lvs"]) {
    COWSNAP_ASSIGN_OR_RETURN(LvState s, lv_state_from_json(item));
    out.push_back(std::move(s));
  }
  return out;
}

Result<Response> Client::lvcreate(const std::string& vg, const std::string& lv, uint64_t size_bytes) {
  return request({{"op", "lvcreate"}, {"vg", vg}, {"lv", lv}, {"size_bytes", size_bytes}});
}

Result<Response> Client::lvcreate_extents(const std::string& vg, const std::string& lv, uint64_t extents,
                                          bool read_only) {
  json req = {{"op", "lvcreate"}, {"vg", vg}, {"lv", lv}, {"extents", extents}};
  if (read_only) req["read_only"] = true;
  return request(req);
}

Result<Response> Client::lvcreate_snapshot(const std::string& vg, const std::string& origin,
                                           const std::string& snap, uint64_t size_bytes,
                                           uint64_t chunk_sectors) {
  json req = {
      {"op", "lvcreate_snapshot"}, {"vg", vg}, {"origin", origin}, {"lv", snap}, {"size_bytes", size_bytes}};
  if (chunk_sectors != 0) req["chunk_sectors"] = chunk_sectors;
  return request(req);
}

Result<Response> Client::lvcreate_snapshot_extents(const std::string& vg, const std::string& origin,
                                                   const std::string& snap, uint64_t extents,
                                                   uint64_t chunk_sectors, bool read_only) {
  json req = {
      {"op", "lvcreate_snapshot"}, {"vg", vg}, {"origin", origin}, {"lv", snap}, {"extents", extents}};
  if (chunk_sectors != 0) req["chunk_sectors"] = chunk_sectors;
  if (read_only) req["read_only"] = true;
  return request(req);
}

Result<Response> Client::lvremove(const std::string& vg, const std::string& lv, bool force) {
  return request({{"op", "lvremove"}, {"vg", vg}, {"lv", lv}, {"force", force}});
}

Result<Response> Client::lvextend(const std::string& vg, const std::string& lv, uint64_t new_size_bytes) {
  return request({{"op", "lvextend"}, {"vg", vg}, {"lv", lv}, {"size_bytes", new_size_bytes}});
}

Result<Response> Client::lvextend_extents(const std::string& vg, const std::string& lv,
                                          uint64_t new_extents) {
  return request({{"op", "lvextend"}, {"vg", vg}, {"lv", lv}, {"extents", new_extents}});
}

Result<Response> Client::refresh() { return request({{"op", "refresh"}}); }

Result<Response> Client::lvrename(const std::string& vg, const std::string& lv, const std::string& new_lv) {
  return request({{"op", "lvrename"}, {"vg", vg}, {"lv", lv}, {"new_lv", new_lv}});
}

Result<Response> Client::lvchange(const std::string& vg, const std::string& lv, bool active) {
  return request({{"op", "lvchange"}, {"vg", vg}, {"lv", lv}, {"active", active}});
}

Result<Response> Client::lvchange_monitor(const std::string& vg, const std::string& lv, bool monitor) {
  return request({{"op", "lvchange"}, {"vg", vg}, {"lv", lv}, {"monitor", monitor}});
}

Result<Response> Client::lvchange_permission(const std::string& vg, const std::string& lv, bool writable) {
  return request({{"op", "lvchange"}, {"vg", vg}, {"lv", lv}, {"permission", writable ? "rw" : "r"}});
}

Result<Response> Client::lvconvert_merge(const std::string& vg, const std::string& lv) {
  return request({{"op", "lvconvert"}, {"vg", vg}, {"lv", lv}, {"merge", true}});
}

Result<Response> Client::changed(const std::string& vg, const std::string& lv) {
  return request({{"op", "changed"}, {"vg", vg}, {"lv", lv}});
}

Result<std::string> Client::dmsetup(bool status, const std::string& vg) {
  json req = {{"op", status ? "dmsetup_status" : "dmsetup_table"}};
  if (!vg.empty()) req["vg"] = vg;
  COWSNAP_ASSIGN_OR_RETURN(Response r, request(req));
  return r.body.value("text", std::string());
}

}  // namespace cowsnap::control
