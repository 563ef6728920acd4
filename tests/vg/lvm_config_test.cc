// lvm.conf's autoextend settings, read as lvm2 2.03 reads them.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cowsnap/vg/lvm_config.h"

using namespace cowsnap;
using namespace cowsnap::vg;

TEST_CASE("lvm.conf: autoextend settings, defaults and lvm2's limits", "[lvm-config]") {
  auto c = parse_lvm_config(
      "activation {\n snapshot_autoextend_threshold = 70\n snapshot_autoextend_percent = 20\n}\n",
      "lvm.conf");
  REQUIRE(c.ok());
  CHECK(c->autoextend());
  CHECK(c->threshold_percent() == 70);
  CHECK(c->grown_extents(8) == 10);  // 8 + 20% = 9.6, rounded up
  CHECK(c->grown_extents(1) == 2);

  auto defaults = parse_lvm_config("# nothing\nglobal { umask = 63 }\n", "lvm.conf");
  REQUIRE(defaults.ok());
  CHECK_FALSE(defaults->autoextend());  // threshold 100: off
  CHECK(defaults->snapshot_autoextend_percent == 20);

  auto low = parse_lvm_config("activation { snapshot_autoextend_threshold = 10 }", "lvm.conf");
  REQUIRE(low.ok());
  CHECK(low->threshold_percent() == 50);
  auto no_growth = parse_lvm_config(
      "activation { snapshot_autoextend_threshold = 70 snapshot_autoextend_percent = 0 }", "lvm.conf");
  REQUIRE(no_growth.ok());
  CHECK_FALSE(no_growth->autoextend());
}

TEST_CASE("lvm.conf: bad input is refused naming the file and the problem", "[lvm-config]") {
  auto syntax = parse_lvm_config("activation {\n snapshot_autoextend_threshold = \n", "ROOT/lvm.conf");
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.status().errnum() == EINVAL);
  CHECK(syntax.status().message().find("ROOT/lvm.conf") != std::string::npos);
  CHECK(syntax.status().message().find("line") != std::string::npos);
  auto type = parse_lvm_config("activation { snapshot_autoextend_percent = \"twenty\" }", "ROOT/lvm.conf");
  REQUIRE_FALSE(type.ok());
  CHECK(type.status().message() ==
        "ROOT/lvm.conf: activation/snapshot_autoextend_percent must be an integer");
}

TEST_CASE("lvm.conf: read from the root, defaults without one", "[lvm-config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("cowsnap-lvmconf-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto none = load_lvm_config(dir.string());
  REQUIRE(none.ok());
  CHECK_FALSE(none->autoextend());
  std::ofstream(dir / "lvm.conf") << "activation {\n\tsnapshot_autoextend_threshold = 80\n}\n";
  auto some = load_lvm_config(dir.string());
  REQUIRE(some.ok());
  CHECK(some->threshold_percent() == 80);
  std::filesystem::remove_all(dir);
}
