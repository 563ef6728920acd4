// lock.h beyond pv_lock_test.cc: FileLock's own contract (create, refuse,
// wait, release, move), try_existing's modes, PvLock's wait for a holder
// of the same root, and claim_pvs_for_edit taking all PVs or none.
#include "cowsnap/vg/lock.h"

#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "cowsnap/vg/root.h"
#include "support/system.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::TempDir;
using Clock = std::chrono::steady_clock;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A child process (another pid, so another flock owner as /proc/locks
// shows it) holding a PV for a root until told to let go. Before its lock
// goes it writes 'r', so the parent can tell whether it got the PV only
// after the child let go.
class HoldingChild {
 public:
  // How the child lets go: dropping its PvLock as a command does when it
  // ends, or exiting with it held as a killed server does (the kernel then
  // closes the PV and ROOT/locks/pv_owner in its own order).
  enum class LetGo { kRelease, kExit };

  HoldingChild(const std::string& pv, const std::string& root, int linger_ms = 0, LetGo how = LetGo::kExit) {
    int up[2];
    int down[2];
    REQUIRE(::pipe(up) == 0);
    REQUIRE(::pipe(down) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(up[0]);
      ::close(down[1]);
      std::optional<PvLock> lock;
      if (auto taken = PvLock::acquire(pv, root, 0); taken.ok()) lock = std::move(taken).value();
      char c = lock ? 'y' : 'n';
      if (::write(up[1], &c, 1) != 1) ::_exit(1);
      (void)::read(down[0], &c, 1);  // a byte, or EOF when the parent is gone
      std::this_thread::sleep_for(std::chrono::milliseconds(linger_ms));
      c = 'r';
      if (::write(up[1], &c, 1) != 1) ::_exit(1);
      if (how == LetGo::kRelease) lock.reset();
      ::_exit(0);
    }
    ::close(up[1]);
    ::close(down[0]);
    up_ = up[0];
    down_ = down[1];
    char c = 0;
    REQUIRE(::read(up_, &c, 1) == 1);
    REQUIRE(c == 'y');
  }
  HoldingChild(const HoldingChild&) = delete;
  HoldingChild& operator=(const HoldingChild&) = delete;
  ~HoldingChild() {
    let_go();
    ::close(up_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  [[nodiscard]] pid_t pid() const { return pid_; }
  void let_go() {
    if (down_ < 0) return;
    const char c = 'g';
    (void)::write(down_, &c, 1);
    ::close(down_);
    down_ = -1;
  }
  // Has the child written 'r' (it is letting go, or has)?
  bool letting_go() const {
    pollfd p{up_, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1) return false;
    char c = 0;
    return ::read(up_, &c, 1) == 1 && c == 'r';
  }

 private:
  pid_t pid_ = -1;
  int up_ = -1;
  int down_ = -1;
};

struct Roots {
  TempDir dir;
  std::string pv_a = dir / "a.img";
  std::string pv_b = dir / "b.img";
  std::string root_a = dir / "rootA";
  std::string root_b = dir / "rootB";
  Roots() {
    std::ofstream(pv_a).put('a');
    std::ofstream(pv_b).put('b');
    REQUIRE(Root::open(root_a).ok());
    REQUIRE(Root::open(root_b).ok());
  }
};

TEST_CASE("FileLock: acquire creates the file 0600 and a second acquire is refused until release",
          "[vg][lock]") {
  TempDir dir;
  const std::string path = dir / "V_vg";
  REQUIRE_FALSE(exists(path));
  auto first = FileLock::acquire(path);
  REQUIRE(first.ok());
  CHECK(first->held());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto second = FileLock::acquire(path, false);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().errnum() == EWOULDBLOCK);
  CHECK(second.status().message() == path + ": locked by another process");

  first->release();
  CHECK_FALSE(first->held());
  first->release();  // twice is harmless
  auto third = FileLock::acquire(path, false);
  REQUIRE(third.ok());
  CHECK(third->held());
}

TEST_CASE("FileLock: the lock goes with the object, and moves with it", "[vg][lock]") {
  TempDir dir;
  const std::string a = dir / "a";
  const std::string b = dir / "b";
  { auto scoped = FileLock::acquire(a); }
  CHECK(FileLock::acquire(a, false).ok());

  FileLock moved;
  CHECK_FALSE(moved.held());
  {
    auto original = FileLock::acquire(a).value();
    moved = std::move(original);
    CHECK_FALSE(original.held());  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  }
  // The original went out of scope: the lock lives on in `moved`.
  CHECK(moved.held());
  CHECK(FileLock::acquire(a, false).status().errnum() == EWOULDBLOCK);

  // Assigning over a held lock releases what it held.
  FileLock on_b = FileLock::acquire(b).value();
  on_b = std::move(moved);
  CHECK(FileLock::acquire(b, false).ok());
  CHECK(FileLock::acquire(a, false).status().errnum() == EWOULDBLOCK);

  FileLock constructed(std::move(on_b));
  CHECK(constructed.held());
  constructed.release();
  CHECK(FileLock::acquire(a, false).ok());
}

TEST_CASE("FileLock: a waiting acquire returns only once the holder lets go", "[vg][lock]") {
  TempDir dir;
  const std::string path = dir / "V_vg";
  auto holder = FileLock::acquire(path).value();
  std::atomic<bool> released{false};
  std::atomic<bool> got{false};
  bool released_first = false;
  std::thread waiter([&] {
    auto lock = FileLock::acquire(path, true);
    released_first = released.load();
    got = lock.ok();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(got.load());
  released = true;
  holder.release();
  waiter.join();
  CHECK(got.load());
  CHECK(released_first);
}

TEST_CASE("FileLock: try_existing never creates, and shares only with shared holders", "[vg][lock]") {
  TempDir dir;
  const std::string missing = dir / "missing.img";
  auto none = FileLock::try_existing(missing, true);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().errnum() == ENOENT);
  CHECK(none.status().message().rfind(missing + ": open lock file", 0) == 0);
  CHECK_FALSE(exists(missing));

  const std::string pv = dir / "pv.img";
  std::ofstream(pv).put('x');
  ::chmod(pv.c_str(), 0400);  // opened read-only: a read-only PV can be locked too
  {
    auto s1 = FileLock::try_existing(pv, false);
    auto s2 = FileLock::try_existing(pv, false);
    REQUIRE(s1.ok());
    REQUIRE(s2.ok());
    auto ex = FileLock::try_existing(pv, true);
    REQUIRE_FALSE(ex.ok());
    CHECK(ex.status().errnum() == EWOULDBLOCK);
  }
  auto ex = FileLock::try_existing(pv, true);
  REQUIRE(ex.ok());
  CHECK(FileLock::try_existing(pv, false).status().errnum() == EWOULDBLOCK);
  CHECK(FileLock::try_existing(pv, true).status().errnum() == EWOULDBLOCK);
}

TEST_CASE("PvLock: a missing PV or a root without locks/ is an error, not a lock", "[vg][lock]") {
  Roots t;
  auto missing = PvLock::acquire(t.dir / "nope.img", t.root_a, 0);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().errnum() == ENOENT);
  auto no_root = PvLock::acquire(t.pv_a, t.dir / "not-a-root", 0);
  REQUIRE_FALSE(no_root.ok());
  CHECK(no_root.status().errnum() == ENOENT);
  CHECK_FALSE(find_pv_holder(t.pv_a).has_value());
  CHECK_FALSE(find_pv_holder(t.dir / "nope.img").has_value());

  auto held = PvLock::acquire(t.pv_a, t.root_a, 0);
  REQUIRE(held.ok());
  CHECK(held->held());
  CHECK(held->path() == t.pv_a);
  CHECK(exists(t.root_a + "/locks/pv_owner"));
}

TEST_CASE("PvLock: a holder of the same root is waited for, however it lets go", "[vg][lock]") {
  // A hand-off has a moment when the PV is still locked but /proc no longer
  // shows who holds it, or for which root: a waiter looking then must look
  // again, not report another root. Repeated so that the moment comes.
  Roots t;
  const HoldingChild::LetGo how = GENERATE(HoldingChild::LetGo::kRelease, HoldingChild::LetGo::kExit);
  for (int i = 0; i < 25; ++i) {
    INFO("hand-off " << i << (how == HoldingChild::LetGo::kRelease ? ", released" : ", exited"));
    HoldingChild child(t.pv_a, t.root_a, 30, how);
    child.let_go();  // it lingers 30 ms, then lets go
    auto lock = PvLock::acquire(t.pv_a, t.root_a, 10000);
    INFO(lock.status().to_string());
    REQUIRE(lock.ok());
    CHECK(child.letting_go());
  }
}

TEST_CASE("PvLock: the wait for the same root ends in EBUSY naming the holder", "[vg][lock]") {
  Roots t;
  HoldingChild child(t.pv_a, t.root_a);
  const auto start = Clock::now();
  auto lock = PvLock::acquire(t.pv_a, t.root_a, 150);
  const auto waited = Clock::now() - start;
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.status().errnum() == EBUSY);
  CHECK(lock.status().message().rfind(
            "PV " + t.pv_a + " is owned by another cowsnap root (pid " + std::to_string(child.pid()) + " ",
            0) == 0);
  CHECK(waited >= std::chrono::milliseconds(150));
  CHECK_FALSE(child.letting_go());
}

TEST_CASE("PvLock: a holder of another root is not waited for", "[vg][lock]") {
  Roots t;
  HoldingChild child(t.pv_a, t.root_b);
  const auto start = Clock::now();
  auto lock = PvLock::acquire(t.pv_a, t.root_a, 10000);
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.status().errnum() == EBUSY);
  CHECK(lock.status().message().find(", root " + t.root_b + ")") != std::string::npos);
  CHECK(Clock::now() - start < std::chrono::milliseconds(5000));
}

TEST_CASE("claim_pvs_for_edit: free PVs are locked for as long as the result lives", "[vg][lock]") {
  Roots t;
  const std::map<std::string, std::string> pv_paths{{"pv0", t.pv_a}, {"pv1", t.pv_b}};
  {
    auto claimed = claim_pvs_for_edit(pv_paths, t.root_a);
    REQUIRE(claimed.ok());
    REQUIRE(claimed->size() == 2);
    CHECK((*claimed)[0].path() == t.pv_a);
    CHECK((*claimed)[1].path() == t.pv_b);
    for (const std::string& pv : {t.pv_a, t.pv_b}) {
      INFO(pv);
      auto holder = find_pv_holder(pv);
      REQUIRE(holder.has_value());
      CHECK(holder->pid == ::getpid());
      CHECK(holder->root == t.root_a);
    }
  }
  CHECK_FALSE(find_pv_holder(t.pv_a).has_value());
  CHECK_FALSE(find_pv_holder(t.pv_b).has_value());
}

TEST_CASE("claim_pvs_for_edit: one PV of another root fails the claim and frees the others", "[vg][lock]") {
  Roots t;
  HoldingChild child(t.pv_b, t.root_b);
  auto claimed = claim_pvs_for_edit(std::vector<std::string>{t.pv_a, t.pv_b}, t.root_a);
  REQUIRE_FALSE(claimed.ok());
  CHECK(claimed.status().errnum() == EBUSY);
  CHECK(claimed.status().message().rfind("PV " + t.pv_b + " is owned by another cowsnap root", 0) == 0);
  // pv_a was taken first; the failed claim must not keep it.
  CHECK_FALSE(find_pv_holder(t.pv_a).has_value());
  auto pv_a = PvLock::acquire(t.pv_a, t.root_b, 0);
  CHECK(pv_a.ok());
}

}  // namespace
}  // namespace cowsnap::vg
