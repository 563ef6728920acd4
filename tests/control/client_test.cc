#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cowsnap/control/client.h"
#include "support/checks.h"
#include "support/system.h"

using namespace cowsnap;
using Catch::Matchers::Contains;
using cowsnap::testing::must;
using nlohmann::json;

namespace {

// How long the scripted server waits for the client before giving up, so
// that a broken test fails instead of hanging.
constexpr int kWaitMs = 10'000;

int bound_socket(const std::string& path, bool listening) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  if (listening) REQUIRE(::listen(fd, 4) == 0);
  return fd;
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, kWaitMs) == 1;
}

// A stand-in for the server: takes one connection and, for each entry of
// `replies`, reads one request line and sends the entry's bytes back as
// they are (none, part of a line, several lines, or garbage), then hangs up.
// The request lines it read are in received() once it has finished.
class ScriptedServer {
 public:
  ScriptedServer(const std::string& path, std::vector<std::string> replies)
      : listen_fd_(bound_socket(path, true)), replies_(std::move(replies)) {
    thread_ = std::thread([this] { run(); });
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  ~ScriptedServer() {
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }

  const std::vector<std::string>& received() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  void run() {
    if (!readable(listen_fd_)) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    std::string buffer;
    for (const std::string& reply : replies_) {
      size_t nl;
      while ((nl = buffer.find('\n')) == std::string::npos) {
        char chunk[4096];
        if (!readable(fd)) break;
        const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) break;
        buffer.append(chunk, static_cast<size_t>(n));
      }
      if (nl == std::string::npos) break;
      received_.push_back(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
      if (!reply.empty() && ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) break;
    }
    ::close(fd);
  }

  int listen_fd_;
  std::vector<std::string> replies_;
  std::vector<std::string> received_;
  std::thread thread_;
};

// A success line with `body`'s fields beside the protocol's own.
std::string ok_line(json body = json::object(), std::vector<std::string> notices = {}) {
  body["ok"] = true;
  body["errno"] = 0;
  body["message"] = "";
  body["notices"] = notices;
  return body.dump() + "\n";
}

}  // namespace

TEST_CASE("control::Client::connect says which socket it could not reach, with errno") {
  cowsnap::testing::TempDir tmp;
  const std::string missing = tmp / "control.sock";
  auto none = control::Client::connect(missing);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().errnum() == ENOENT);
  CHECK_THAT(none.status().message(), Contains("cannot connect to the cowsnap server at " + missing));
  CHECK_FALSE(control::Client::server_running(tmp / ""));

  // A socket file nobody listens on: what a killed server leaves.
  const std::string stale = tmp / "stale.sock";
  ::close(bound_socket(stale, false));
  auto refused = control::Client::connect(stale);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().errnum() == ECONNREFUSED);

  auto too_long = control::Client::connect(tmp / std::string(200, 's'));
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.status().errnum() == ENAMETOOLONG);
}

TEST_CASE("control::Client::server_running is true while something answers on ROOT/control.sock") {
  cowsnap::testing::TempDir tmp;
  ScriptedServer server(control::socket_path(tmp / ""), {});
  CHECK(control::Client::server_running(tmp / ""));
}

TEST_CASE("control::Client sends one JSON line per request and parses the reply's fields") {
  cowsnap::testing::TempDir tmp;
  const std::string path = tmp / "c.sock";
  ScriptedServer server(path, {ok_line({{"seqno", 7}}, {"a notice"})});
  auto client = must(control::Client::connect(path));
  const control::Response r = must(client.call({{"op", "lvcreate"}, {"vg", "vg0"}}));
  CHECK(r.ok);
  CHECK(r.errnum == 0);
  CHECK(r.notices == std::vector<std::string>{"a notice"});
  // The protocol's own fields are not part of the body.
  CHECK(r.body == json{{"seqno", 7}});
  REQUIRE(server.received().size() == 1);
  CHECK(json::parse(server.received()[0]) == json{{"op", "lvcreate"}, {"vg", "vg0"}});
}

TEST_CASE("control::Client maps an error reply to a Status with the server's errno") {
  cowsnap::testing::TempDir tmp;
  const std::string path = tmp / "c.sock";
  const std::string busy =
      std::string(R"({"ok":false,"errno":16,"message":"LV in use","notices":["n"]})") + "\n";
  ScriptedServer server(path, {busy, busy, std::string(R"({"ok":false})") + "\n"});
  auto client = must(control::Client::connect(path));
  // call(): the failure is the Response, notices kept.
  const control::Response r = must(client.call({{"op", "lvremove"}}));
  CHECK_FALSE(r.ok);
  CHECK(r.errnum == EBUSY);
  CHECK(r.message == "LV in use");
  CHECK(r.notices == std::vector<std::string>{"n"});
  // request(): the failure is the Status.
  auto failed = client.request({{"op", "lvremove"}});
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().errnum() == EBUSY);
  CHECK(failed.status().message() == "LV in use");
  // A failure that names no errno or message is still a failure.
  auto bare = client.request({{"op", "lvremove"}});
  REQUIRE_FALSE(bare.ok());
  CHECK(bare.status().errnum() == EIO);
  CHECK(bare.status().message() == "server reported an error");
}

TEST_CASE("control::Client reads replies however the bytes arrive") {
  cowsnap::testing::TempDir tmp;
  const std::string path = tmp / "c.sock";
  // Two replies in one send: the second is kept for the second call, which
  // the server then leaves unanswered.
  ScriptedServer server(path, {ok_line({{"n", 1}}) + ok_line({{"n", 2}}), ""});
  auto client = must(control::Client::connect(path));
  CHECK(must(client.call({{"op", "a"}})).body.at("n") == 1);
  CHECK(must(client.call({{"op", "b"}})).body.at("n") == 2);
  CHECK(server.received().size() == 2);
}

TEST_CASE("control::Client refuses a reply that is not a response") {
  cowsnap::testing::TempDir tmp;
  const std::string path = tmp / "c.sock";

  SECTION("not JSON") {
    ScriptedServer server(path, {"hello\n"});
    auto r = must(control::Client::connect(path)).call({{"op", "lvs"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == EPROTO);
  }
  SECTION("no \"ok\"") {
    ScriptedServer server(path, {"{\"errno\":0}\n"});
    auto r = must(control::Client::connect(path)).call({{"op", "lvs"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == EPROTO);
    CHECK_THAT(r.status().message(), Contains("bad response from the server"));
  }
  SECTION("an errno that is not an int") {
    ScriptedServer server(path, {std::string(R"({"ok":false,"errno":"EBUSY"})") + "\n"});
    auto r = must(control::Client::connect(path)).call({{"op", "lvs"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == EPROTO);
  }
  SECTION("the server hangs up before the reply") {
    ScriptedServer server(path, {""});
    auto r = must(control::Client::connect(path)).call({{"op", "lvs"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == ECONNRESET);
    CHECK_THAT(r.status().message(), Contains("closed the control connection"));
  }
  SECTION("the server hangs up mid-line") {
    ScriptedServer server(path, {"{\"ok\":tr"});
    auto r = must(control::Client::connect(path)).call({{"op", "lvs"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == ECONNRESET);
  }
  SECTION("an lvs reply without its array") {
    ScriptedServer server(path, {ok_line()});
    auto r = must(control::Client::connect(path)).lvs();
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == EPROTO);
    CHECK_THAT(r.status().message(), Contains("no \"lvs\" array"));
  }
}

TEST_CASE("control::Client's typed requests: the fields sent and the replies read") {
  cowsnap::testing::TempDir tmp;
  const std::string path = tmp / "c.sock";
  control::LvState snap;
  snap.vg = "vg0";
  snap.lv = "s";
  snap.active = true;
  snap.is_snapshot = true;
  snap.origin = "d";
  snap.chunk_sectors = 16;
  snap.usage = control::Usage{8192, 64, 16};
  const json lvs = {{"lvs", json::array({control::to_json(snap)})}};
  ScriptedServer server(
      path, {ok_line(lvs), ok_line(), ok_line(), ok_line(), ok_line({{"text", "t: 0 8 linear\n"}})});
  auto client = must(control::Client::connect(path));

  const std::vector<control::LvState> states = must(client.lvs());
  REQUIRE(states.size() == 1);
  CHECK(states[0].export_name() == "vg0/s");
  CHECK(states[0].origin == "d");
  REQUIRE(states[0].usage);
  CHECK(states[0].usage->allocated_sectors == 64);

  must(client.lvcreate_snapshot("vg0", "d", "s2", 4096));
  must(client.lvcreate_snapshot_extents("vg0", "d", "s3", 2, 32));
  must(client.lvremove("vg0", "s", true));
  CHECK(must(client.dmsetup(true, "vg0")) == "t: 0 8 linear\n");

  const std::vector<std::string>& sent = server.received();
  REQUIRE(sent.size() == 5);
  CHECK(json::parse(sent[0]) == json{{"op", "lvs"}});
  // chunk_sectors 0 means the server's default: not sent.
  CHECK(
      json::parse(sent[1]) ==
      json{{"op", "lvcreate_snapshot"}, {"vg", "vg0"}, {"origin", "d"}, {"lv", "s2"}, {"size_bytes", 4096}});
  CHECK(json::parse(sent[2]) == json{{"op", "lvcreate_snapshot"},
                                     {"vg", "vg0"},
                                     {"origin", "d"},
                                     {"lv", "s3"},
                                     {"extents", 2},
                                     {"chunk_sectors", 32}});
  CHECK(json::parse(sent[3]) == json{{"op", "lvremove"}, {"vg", "vg0"}, {"lv", "s"}, {"force", true}});
  CHECK(json::parse(sent[4]) == json{{"op", "dmsetup_status"}, {"vg", "vg0"}});
}

TEST_CASE("control::Client refuses to send what is not UTF-8, and a moved-from client is not connected") {
  cowsnap::testing::TempDir tmp;
  const std::string path = tmp / "c.sock";
  ScriptedServer server(path, {ok_line()});
  auto client = must(control::Client::connect(path));
  auto bad = client.call({{"op", "lvremove"}, {"lv", std::string("\xff\xfe")}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().errnum() == EINVAL);
  CHECK_THAT(bad.status().message(), Contains("not UTF-8"));

  control::Client moved = std::move(client);
  auto gone = client.call({{"op", "lvs"}});  // NOLINT(bugprone-use-after-move): the point of the check
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.status().errnum() == ENOTCONN);
  // Nothing was sent before the one good request.
  CHECK(must(moved.call({{"op", "lvs"}})).ok);
  REQUIRE(server.received().size() == 1);
  CHECK(json::parse(server.received()[0]) == json{{"op", "lvs"}});
}
