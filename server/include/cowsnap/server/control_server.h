// The control socket of a running server: ROOT/control.sock, JSON lines
// (see control/protocol.h), one thread per client connection.
//
// Lifecycle: listen() before the host process forks into the background,
// so a second server on the same root fails at start-up; start() after the
// fork, because threads do not survive fork; stop() at shutdown. (nbdkit:
// get_ready, after_fork, cleanup.)
//
// Threads: the handler runs on the client threads, concurrently for
// different clients (one request at a time per client), so it must be
// thread-safe itself; VolumeService::handle is. The logger may be called
// from any of these threads. Neither is called after stop() returns.
//
// Security: the socket file is made mode 0600 right after bind, and every
// peer is checked with SO_PEERCRED (our uid or root), which also covers the
// moment between bind and chmod.
//
// Robustness: input never ends the server. Every non-blank line gets
// exactly one reply, in order: the handler's, or an error (EPROTO for bytes
// that are not a JSON request, invalid UTF-8 included; EIO/ENOMEM for an
// exception the handler let out). A line longer than kMaxRequestBytes gets
// an EPROTO reply and the connection is closed. A client that sends nothing,
// or leaves mid-line, costs one idle thread and blocks no one.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cowsnap/common/status.h"
#include "cowsnap/control/protocol.h"

namespace cowsnap::server {

class ControlServer {
 public:
  // Longest request line: requests are a few hundred bytes; the bound keeps
  // a client that never sends '\n' from growing the buffer without end.
  static constexpr size_t kMaxRequestBytes = size_t{1} << 20;

  using Handler = std::function<control::Response(const nlohmann::json&)>;
  using Logger = std::function<void(const std::string&)>;

  // Binds and listens on `path`. A stale socket file (no server answers) is
  // replaced; EADDRINUSE when a live server answers there.
  static Result<std::unique_ptr<ControlServer>> listen(const std::string& path, Handler handler,
                                                       Logger log_error);

  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  ~ControlServer();

  // Starts the accept thread. The process that calls it owns the socket:
  // stop() there ends the sessions and removes the file. In a process that
  // only listened (nbdkit's parent, which forks and exits running static
  // destructors) stop() does nothing: the socket is the child's.
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

  // A test hook, for fault-injection tests only: COWSNAP_TEST_PAUSE_AT=
  // OP:before[:N] or OP:after[:N] (OP a protocol op, e.g.
  // lvcreate_snapshot) makes the session that runs the Nth (default first)
  // OP request sleep (an hour) right before the handler, or right after it
  // returned and before the reply is sent, so that a test can SIGKILL the
  // server at that point deterministically (a clean stop would wait for
  // the sleeper). Read once, at listen(); unset, it costs one compare per
  // request.
  struct PausePoint {
    std::string op;
    bool after = false;
    int nth = 1;
  };
  static PausePoint pause_point_from_env();
  // The request's number among OP requests (1, 2, ...); 0 when it is not
  // OP or no hook is set.
  int pause_ticket(const nlohmann::json& request) const;
  void maybe_pause(int ticket, bool after) const;

  ControlServer(std::string path, int listen_fd, int stop_fd, Handler handler, Logger log_error)
      : path_(std::move(path)),
        listen_fd_(listen_fd),
        stop_fd_(stop_fd),
        handler_(std::move(handler)),
        log_error_(std::move(log_error)),
        pause_(pause_point_from_env()) {}

  // Thread bodies: catch everything, so no exception ends a thread.
  void accept_loop();
  void serve(Session& session);
  void accept_clients();
  // Reads lines from `fd` and answers each until the client leaves, stop(),
  // or a line exceeds kMaxRequestBytes.
  void serve_lines(int fd);
  // The reply to one line: an error for anything that is not a request,
  // and for any exception the handler lets out. Never throws.
  [[nodiscard]] control::Response answer(const std::string& line) const;
  // Joins finished sessions. REQUIRES: sessions_mu_ held.
  void reap_locked();
  [[nodiscard]] bool peer_allowed(int fd) const;

  const std::string path_;
  int listen_fd_;
  int stop_fd_;  // an eventfd: readable once stop() was called
  const Handler handler_;
  const Logger log_error_;
  const PausePoint pause_;
  mutable std::atomic<int> pause_seen_{0};  // OP requests counted so far
  std::thread accept_thread_;
  pid_t started_in_ = 0;  // the process whose start() ran; 0 before
  std::mutex sessions_mu_;
  std::list<Session> sessions_;  // guarded by sessions_mu_
  bool stopped_ = false;
};

}  // namespace cowsnap::server
