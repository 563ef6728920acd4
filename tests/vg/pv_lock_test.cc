// PV ownership across roots (vg/lock.h): real files, a real second process
// (fork), the kernel's flock and /proc/locks.
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>

#include <catch2/catch.hpp>

#include "cowsnap/io/devices.h"
#include "cowsnap/vg/lock.h"
#include "cowsnap/vg/root.h"
#include "support/system.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::TempDir;

// Runs `check` in a child process (another flock owner, another pid) and
// returns its exit code: 0 when it held.
int in_child(const std::function<int()>& check) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(check());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

struct TwoRoots {
  TempDir dir;
  std::string pv = dir / "pv0.img";
  std::string root_a = dir / "rootA";
  std::string root_b = dir / "rootB";
  TwoRoots() {
    std::ofstream(pv).put('x');
    REQUIRE(Root::open(root_a).ok());
    REQUIRE(Root::open(root_b).ok());
  }
};

TEST_CASE("a PV lock survives other descriptors of the PV closing, and names its holder") {
  TwoRoots t;
  auto lock = PvLock::acquire(t.pv, t.root_a);
  REQUIRE(lock.ok());
  // The engine opens and closes the same file for I/O: a POSIX fcntl lock
  // would be gone now.
  for (int i = 0; i < 3; ++i) REQUIRE(FileDevice::open(t.pv, FileDevice::Options{}).ok());
  const std::string expected =
      "PV " + t.pv + " is owned by another cowsnap root (pid " + std::to_string(::getpid()) + " ";
  const int rc = in_child([&] {
    auto other = PvLock::acquire(t.pv, t.root_b, 0);
    if (other.ok()) return 1;
    if (other.status().errnum() != EBUSY) return 2;
    const std::string m = other.status().message();
    if (m.rfind(expected, 0) != 0) return 3;
    if (m.find(", root " + t.root_a + ")") == std::string::npos) return 4;
    auto holder = find_pv_holder(t.pv);
    if (!holder || holder->pid != ::getppid() || holder->root != t.root_a) return 5;
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("an edit passes a PV its own root holds, and is refused one another root holds") {
  TwoRoots t;
  auto lock = PvLock::acquire(t.pv, t.root_a);
  REQUIRE(lock.ok());
  CHECK(in_child([&] {
          auto same = claim_pvs_for_edit(std::vector<std::string>{t.pv}, t.root_a);
          return same.ok() && same->empty() ? 0 : 1;
        }) == 0);
  CHECK(in_child([&] {
          auto other = claim_pvs_for_edit(std::vector<std::string>{t.pv}, t.root_b);
          return !other.ok() && other.status().errnum() == EBUSY ? 0 : 1;
        }) == 0);
}

TEST_CASE("once the owner lets go, another root takes the PV") {
  TwoRoots t;
  {
    auto lock = PvLock::acquire(t.pv, t.root_a);
    REQUIRE(lock.ok());
  }
  CHECK_FALSE(find_pv_holder(t.pv).has_value());
  CHECK(in_child([&] {
          auto taken = PvLock::acquire(t.pv, t.root_b, 0);
          return taken.ok() && taken->held() ? 0 : 1;
        }) == 0);
}

}  // namespace
}  // namespace cowsnap::vg
