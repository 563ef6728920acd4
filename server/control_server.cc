#include "cowsnap/server/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cowsnap/control/client.h"

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

// One response line. Messages may quote the client's bytes (a parser
// error), which need not be UTF-8: those are replaced (U+FFFD), as dump()
// would otherwise throw.
std::string encode(const control::Response& response) {
  return control::to_json(response).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string encode_error(int errnum, const std::string& message) {
  return encode(control::Response::from_status(Status::Error(errnum, message)));
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
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd, SOMAXCONN) != 0) {
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
  started_in_ = ::getpid();
  try {
    accept_thread_ = std::thread([this] { accept_loop(); });
  } catch (const std::system_error& e) {
    return Status::Error(e.code().value(), fmt::format("cannot start the control thread: {}", e.what()));
  }
  return Status::Ok();
}

void ControlServer::stop() {
  // Another process serves this socket (we are nbdkit's parent, exiting
  // after the fork): the stop eventfd and the file are the child's too.
  if (started_in_ != ::getpid()) return;
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
  // A thread must not end by an exception (std::terminate would take nbdkit
  // and every export down); bad_alloc is the only one expected here.
  try {
    accept_clients();
  } catch (const std::exception& e) {
    log_error_(fmt::format("control socket: stopped accepting clients: {}", e.what()));
  }
}

void ControlServer::accept_clients() {
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
      (void)send_all(
          fd, encode_error(EACCES, "permission denied: the control socket serves its owner and root only"));
      ::close(fd);
      continue;
    }
    std::lock_guard lock(sessions_mu_);
    reap_locked();
    try {
      Session& s = sessions_.emplace_back();
      s.fd = fd;
      s.thread = std::thread([this, &s] { serve(s); });
    } catch (const std::exception& e) {
      (void)send_all(fd,
                     encode_error(EAGAIN, fmt::format("the server cannot take a client now: {}", e.what())));
      ::close(fd);
      if (!sessions_.empty() && sessions_.back().fd == fd && !sessions_.back().thread.joinable())
        sessions_.pop_back();
    }
  }
}

ControlServer::PausePoint ControlServer::pause_point_from_env() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts
  const char* env = std::getenv("COWSNAP_TEST_PAUSE_AT");
  if (env == nullptr) return {};
  std::string_view spec(env);
  PausePoint p;
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos) return {};
  p.op = std::string(spec.substr(0, colon));
  spec.remove_prefix(colon + 1);
  const size_t second = spec.find(':');
  p.after = spec.substr(0, second) == "after";
  if (second != std::string_view::npos) p.nth = std::atoi(std::string(spec.substr(second + 1)).c_str());
  return p;
}

int ControlServer::pause_ticket(const nlohmann::json& request) const {
  if (pause_.op.empty()) return 0;
  auto op = request.find("op");
  if (op == request.end() || !op->is_string() || op->get<std::string>() != pause_.op) return 0;
  return pause_seen_.fetch_add(1) + 1;
}

void ControlServer::maybe_pause(int ticket, bool after) const {
  if (ticket == 0 || ticket != pause_.nth || pause_.after != after) return;
  log_error_(fmt::format("COWSNAP_TEST_PAUSE_AT: pausing {} {}", after ? "after" : "before", pause_.op));
  std::this_thread::sleep_for(std::chrono::hours(1));
}

control::Response ControlServer::answer(const std::string& line) const {
  try {
    // parse_line refuses lines nested too deeply to copy or dump safely.
    auto request = control::parse_line(line);
    if (!request.ok()) return control::Response::from_status(request.status());
    const int ticket = pause_ticket(*request);
    maybe_pause(ticket, false);
    control::Response response = handler_(*request);
    maybe_pause(ticket, true);
    return response;
  } catch (const std::bad_alloc&) {
    return control::Response::from_status(Status::Error(ENOMEM, "out of memory"));
  } catch (const std::exception& e) {
    return control::Response::from_status(Status::Error(EIO, fmt::format("internal error: {}", e.what())));
  } catch (...) {
    return control::Response::from_status(Status::Error(EIO, "internal error"));
  }
}

void ControlServer::serve(Session& session) {
  try {
    serve_lines(session.fd);
  } catch (const std::exception& e) {
    log_error_(fmt::format("control socket: client dropped: {}", e.what()));
  }
  ::close(session.fd);
  session.done.store(true, std::memory_order_release);
}

void ControlServer::serve_lines(int fd) {
  std::string buffer;
  std::vector<char> chunk(64 * 1024);
  for (;;) {
    // Every complete line gets one reply, in order.
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (nl == start) continue;  // blank lines are ignored
      if (!send_all(fd, encode(answer(buffer.substr(start, nl - start))))) return;
    }
    buffer.erase(0, start);
    if (buffer.size() > kMaxRequestBytes) {
      // Without a newline in sight there is no line to answer: say why and
      // hang up rather than buffer without bound.
      (void)send_all(
          fd, encode_error(EPROTO, fmt::format("control request longer than {} bytes", kMaxRequestBytes)));
      return;
    }
    if (!wait_readable(fd, stop_fd_)) return;
    const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client left (mid-line or not): nothing to answer
    buffer.append(chunk.data(), static_cast<size_t>(n));
  }
}

}  // namespace cowsnap::server
