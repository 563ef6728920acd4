#include "control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "control/client.h"

namespace cowsnap::server {

namespace {

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Status::Error(ENAMETOOLONG, fmt::format("control socket path too long ({} bytes, at most {}): {}",
                                                   path.size(), sizeof(addr.sun_path) - 1, path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Waits until `fd` is readable or stop_fd fires. False on stop.
bool wait_readable(int fd, int stop_fd) {
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if ((fds[1].revents & POLLIN) != 0) return false;
    if (fds[0].revents != 0) return true;
  }
}

bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(const std::string& path, Handler handler,
                                                             Logger log_error) {
  COWSNAP_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(path));
  if (control::Client::connect(path).ok()) {
    return Status::Error(EADDRINUSE, fmt::format("another cowsnap server is already running on {}", path));
  }
  // Nobody answers: a socket file left by a killed server.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(fmt::format("cannot remove stale control socket {}", path));
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    Status s = Status::FromErrno(fmt::format("cannot bind control socket {}", path));
    ::close(fd);
    return s;
  }
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd, 16) != 0) {
    Status s = Status::FromErrno(fmt::format("cannot listen on control socket {}", path));
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  const int stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    Status s = Status::FromErrno("eventfd");
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  return std::unique_ptr<ControlServer>(
      new ControlServer(path, fd, stop_fd, std::move(handler), std::move(log_error)));
}

ControlServer::~ControlServer() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

Status ControlServer::start() {
  try {
    accept_thread_ = std::thread([this] { accept_loop(); });
  } catch (const std::system_error& e) {
    return Status::Error(e.code().value(), fmt::format("cannot start the control thread: {}", e.what()));
  }
  return Status::Ok();
}

void ControlServer::stop() {
  {
    std::lock_guard lock(sessions_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  const uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof(one)) < 0) log_error_("control socket: cannot signal stop");
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Session> sessions;
  {
    std::lock_guard lock(sessions_mu_);
    sessions.swap(sessions_);
  }
  for (Session& s : sessions) {
    if (s.thread.joinable()) s.thread.join();
  }
  ::unlink(path_.c_str());
}

bool ControlServer::peer_allowed(int fd) const {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == 0 || cred.uid == ::geteuid();
}

void ControlServer::reap_locked() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->done.load(std::memory_order_acquire)) {
      if (it->thread.joinable()) it->thread.join();
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

void ControlServer::accept_loop() {
  while (wait_readable(listen_fd_, stop_fd_)) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        log_error_(Status::FromErrno("control socket: accept").message());
      }
      continue;
    }
    if (!peer_allowed(fd)) {
      log_error_("control socket: refused a client with another uid");
      (void)send_all(fd,
                     control::to_json(
                         control::Response::from_status(Status::Error(
                             EACCES, "permission denied: the control socket serves its owner and root only")))
                             .dump() +
                         "\n");
      ::close(fd);
      continue;
    }
    std::lock_guard lock(sessions_mu_);
    reap_locked();
    Session& s = sessions_.emplace_back();
    s.fd = fd;
    try {
      s.thread = std::thread([this, &s] { serve(s); });
    } catch (const std::system_error&) {
      ::close(fd);
      sessions_.pop_back();
    }
  }
}

void ControlServer::serve(Session& session) {
  std::string buffer;
  bool open = true;
  while (open && wait_readable(session.fd, stop_fd_)) {
    char chunk[65536];
    const ssize_t n = ::recv(session.fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    for (size_t nl; open && (nl = buffer.find('\n')) != std::string::npos;) {
      const std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.empty()) continue;
      auto request = control::parse_line(line);
      const control::Response response =
          request.ok() ? handler_(*request) : control::Response::from_status(request.status());
      open = send_all(session.fd, control::to_json(response).dump() + "\n");
    }
    if (buffer.size() > control::kMaxLineBytes) {
      (void)send_all(
          session.fd,
          control::to_json(control::Response::from_status(Status::Error(EPROTO, "control request too long")))
                  .dump() +
              "\n");
      break;
    }
  }
  ::close(session.fd);
  session.done.store(true, std::memory_order_release);
}

}  // namespace cowsnap::server
