// The control socket of a running server: ROOT/control.sock, JSON lines
// (see control/protocol.h), one thread per client connection.
//
// Lifecycle (nbdkit's): listen() in get_ready, before nbdkit forks, so a
// second server on the same root fails at start-up; start() in after_fork,
// because threads do not survive fork; stop() in cleanup.
//
// Security: the socket file is made mode 0600 right after bind, and every
// peer is checked with SO_PEERCRED (our uid or root), which also covers the
// moment between bind and chmod.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "control/protocol.h"
#include "cowsnap/status.h"

namespace cowsnap::server {

class ControlServer {
 public:
  using Handler = std::function<control::Response(const nlohmann::json&)>;
  using Logger = std::function<void(const std::string&)>;

  // Binds and listens on `path`. A stale socket file (no server answers) is
  // replaced; EADDRINUSE when a live server answers there.
  static Result<std::unique_ptr<ControlServer>> listen(const std::string& path, Handler handler,
                                                       Logger log_error);

  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  ~ControlServer();

  // Starts the accept thread.
  Status start();
  // Stops accepting, ends every client connection, joins the threads and
  // removes the socket file. Idempotent.
  void stop();

 private:
  struct Session {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  ControlServer(std::string path, int listen_fd, int stop_fd, Handler handler, Logger log_error)
      : path_(std::move(path)),
        listen_fd_(listen_fd),
        stop_fd_(stop_fd),
        handler_(std::move(handler)),
        log_error_(std::move(log_error)) {}

  void accept_loop();
  void serve(Session& session);
  // Joins finished sessions. REQUIRES: sessions_mu_ held.
  void reap_locked();
  [[nodiscard]] bool peer_allowed(int fd) const;

  const std::string path_;
  int listen_fd_;
  int stop_fd_;  // an eventfd: readable once stop() was called
  const Handler handler_;
  const Logger log_error_;
  std::thread accept_thread_;
  std::mutex sessions_mu_;
  std::list<Session> sessions_;  // guarded by sessions_mu_
  bool stopped_ = false;
};

}  // namespace cowsnap::server
