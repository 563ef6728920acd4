#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cowsnap/control/client.h"
#include "cowsnap/server/control_server.h"
#include "support/checks.h"
#include "support/system.h"

using namespace cowsnap;
using Catch::Matchers::Contains;
using cowsnap::server::ControlServer;
using cowsnap::testing::must;
using nlohmann::json;

namespace {

// A handler with one behaviour per op: "echo" sends the request back in
// "request", "fail" is an EBUSY error, "throw"/"oom" let an exception out,
// "count" counts its calls.
struct TestHandler {
  std::atomic<int> calls{0};

  control::Response operator()(const json& request) {
    calls.fetch_add(1);
    const std::string op = request.value("op", std::string());
    if (op == "fail") return control::Response::from_status(Status::Error(EBUSY, "busy here"));
    if (op == "throw") throw std::runtime_error("boom");
    if (op == "oom") throw std::bad_alloc();
    control::Response r;
    r.body["request"] = request;
    r.notices.push_back("handled " + op);
    return r;
  }
};

// A started ControlServer on a socket in a scratch directory, with its
// logged errors.
struct TestServer {
  cowsnap::testing::TempDir tmp;
  std::string path = tmp / "control.sock";
  TestHandler handler;
  std::shared_ptr<std::vector<std::string>> errors = std::make_shared<std::vector<std::string>>();
  std::unique_ptr<ControlServer> server;

  TestServer() {
    server = must(ControlServer::listen(
        path, [this](const json& request) { return handler(request); },
        [log = errors](const std::string& m) { log->push_back(m); }));
    REQUIRE(server->start().ok());
  }
};

// A raw connection: bytes in, lines out, with no client-side framing or
// checks, to send what the real client never would.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() { ::close(fd_); }

  // False when the server hung up before all of it was taken.
  bool send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // The next reply line, parsed; a null json when the server closed the
  // connection first.
  json reply() {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return json::parse(line);
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return nullptr;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace

TEST_CASE("ControlServer: a request and its reply over the socket, in order, many per connection") {
  TestServer t;
  auto client = must(control::Client::connect(t.path));
  for (int i = 0; i < 5; ++i) {
    const control::Response r = must(client.call({{"op", "echo"}, {"n", i}}));
    CHECK(r.ok);
    CHECK(r.errnum == 0);
    CHECK(r.notices == std::vector<std::string>{"handled echo"});
    CHECK(r.body.at("request").at("n") == i);
  }
  // An error from the handler reaches the client with its errno.
  const control::Response failed = must(client.call({{"op", "fail"}}));
  CHECK_FALSE(failed.ok);
  CHECK(failed.errnum == EBUSY);
  CHECK(failed.message == "busy here");
  CHECK(t.handler.calls == 6);
}

TEST_CASE("ControlServer: the socket file is private to its owner") {
  TestServer t;
  struct stat st {};
  REQUIRE(::stat(t.path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("ControlServer: a malformed line gets an EPROTO reply and the connection keeps serving") {
  TestServer t;
  RawConnection raw(t.path);
  // Three lines in one send, blank lines between them ignored.
  REQUIRE(raw.send("not json at all\n\n\n[1,2]\n{\"op\":\"echo\",\"x\":1}\n"));
  const json bad = raw.reply();
  CHECK(bad.at("ok") == false);
  CHECK(bad.at("errno") == EPROTO);
  CHECK_THAT(bad.at("message").get<std::string>(), Contains("not valid JSON"));
  const json not_object = raw.reply();
  CHECK(not_object.at("errno") == EPROTO);
  CHECK(not_object.at("message") == "control message is not a JSON object");
  const json good = raw.reply();
  CHECK(good.at("ok") == true);
  CHECK(good.at("request").at("x") == 1);
  CHECK(t.handler.calls == 1);  // the bad lines never reached the handler

  // Bytes that are not UTF-8 inside a string: refused, and the reply is
  // still valid JSON.
  REQUIRE(raw.send("{\"op\":\"\xff\xfe\"}\n"));
  const json invalid = raw.reply();
  CHECK(invalid.at("ok") == false);
  CHECK(invalid.at("errno") == EPROTO);
  REQUIRE(raw.send("{\"op\":\"echo\"}\n"));
  CHECK(raw.reply().at("ok") == true);
}

TEST_CASE("ControlServer: an exception out of the handler is an error reply, not the end of the server") {
  TestServer t;
  auto client = must(control::Client::connect(t.path));
  const control::Response thrown = must(client.call({{"op", "throw"}}));
  CHECK_FALSE(thrown.ok);
  CHECK(thrown.errnum == EIO);
  CHECK(thrown.message == "internal error: boom");
  const control::Response oom = must(client.call({{"op", "oom"}}));
  CHECK(oom.errnum == ENOMEM);
  CHECK(must(client.call({{"op", "echo"}})).ok);
}

TEST_CASE("ControlServer: a line longer than the limit is refused and the connection closed") {
  TestServer t;
  {
    RawConnection raw(t.path);
    // The server may hang up before taking all of it; what counts is the
    // reply it sent first.
    (void)raw.send("{\"op\":\"echo\",\"pad\":\"" + std::string(ControlServer::kMaxRequestBytes + 4096, 'a'));
    const json reply = raw.reply();
    REQUIRE(reply.is_object());
    CHECK(reply.at("ok") == false);
    CHECK(reply.at("errno") == EPROTO);
    CHECK_THAT(reply.at("message").get<std::string>(),
               Contains("longer than " + std::to_string(ControlServer::kMaxRequestBytes) + " bytes"));
    CHECK(raw.reply().is_null());  // hung up
  }
  // A line just under the limit is still a request.
  {
    RawConnection raw(t.path);
    const std::string head = "{\"op\":\"echo\",\"pad\":\"";
    REQUIRE(raw.send(head + std::string(ControlServer::kMaxRequestBytes - head.size() - 2, 'b') + "\"}\n"));
    CHECK(raw.reply().at("ok") == true);
  }
  CHECK(t.handler.calls == 1);
}

TEST_CASE("ControlServer: many clients at once, with idle and half-sent ones blocking nobody") {
  TestServer t;
  RawConnection idle(t.path);
  RawConnection half(t.path);
  REQUIRE(half.send("{\"op\":\"ec"));

  constexpr int kClients = 32;
  constexpr int kCalls = 20;
  std::atomic<int> right{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&t, &right, c] {
      auto client = control::Client::connect(t.path);
      if (!client.ok()) return;
      for (int i = 0; i < kCalls; ++i) {
        auto r = client->call({{"op", "echo"}, {"c", c}, {"i", i}});
        if (r.ok() && r->ok && r->body["request"]["c"] == c && r->body["request"]["i"] == i)
          right.fetch_add(1);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(right == kClients * kCalls);

  // The half-sent line is answered once it is complete.
  REQUIRE(half.send("ho\"}\n"));
  CHECK(half.reply().at("ok") == true);
  CHECK(t.handler.calls == kClients * kCalls + 1);
}

TEST_CASE("ControlServer::listen refuses a path a live server answers on and replaces a stale one") {
  TestServer t;
  TestHandler other;
  auto second = ControlServer::listen(
      t.path, [&other](const json& r) { return other(r); }, [](const std::string&) {});
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().errnum() == EADDRINUSE);
  CHECK(must(control::Client::connect(t.path)).call({{"op", "echo"}})->ok);  // still the first

  // A socket file nobody listens on, as a killed server leaves behind.
  cowsnap::testing::TempDir tmp;
  const std::string stale = tmp / "stale.sock";
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, stale.c_str(), stale.size() + 1);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
    ::close(fd);
  }
  REQUIRE(::access(stale.c_str(), F_OK) == 0);
  auto replaced = must(ControlServer::listen(
      stale, [&other](const json& r) { return other(r); }, [](const std::string&) {}));
  REQUIRE(replaced->start().ok());
  CHECK(must(control::Client::connect(stale)).call({{"op", "echo"}})->ok);
  CHECK(other.calls == 1);

  // Too long for a Unix socket address.
  auto too_long = ControlServer::listen(
      tmp / std::string(200, 'x'), [&other](const json& r) { return other(r); }, [](const std::string&) {});
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.status().errnum() == ENAMETOOLONG);
}

TEST_CASE("ControlServer::stop ends every connection, removes the socket file, and is idempotent") {
  TestServer t;
  RawConnection idle(t.path);
  auto client = must(control::Client::connect(t.path));
  REQUIRE(must(client.call({{"op", "echo"}})).ok);

  t.server->stop();  // returns although `idle` never sent a byte
  CHECK(::access(t.path.c_str(), F_OK) != 0);
  CHECK(idle.reply().is_null());
  auto after = client.call({{"op", "echo"}});
  CHECK_FALSE(after.ok());
  auto refused = control::Client::connect(t.path);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().errnum() == ENOENT);
  t.server->stop();
  t.server.reset();
  CHECK(t.errors->empty());
}
