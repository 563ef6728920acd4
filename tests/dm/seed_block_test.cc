// The seed experiment at block level: a 64 MiB origin, a 32 MiB and a
// 64 MiB snapshot with 4 KiB chunks, 40 MiB written to the origin.
#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "cowsnap/report/data_percent.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;
using cowsnap::testing::pattern;

TEST_CASE("seed: the 32 MiB snapshot overflows, the 64 MiB one keeps the photograph") {
  constexpr uint64_t kMiB = 1 << 20;
  auto real = std::make_shared<MemoryDevice>(64 * kMiB, "vgsrv-b64m-real");
  REQUIRE(real->write(0, pattern(0, 64 * kMiB, 0)).ok());
  auto origin = Origin::create(real, "vgsrv-b64m-real");
  SnapshotOriginTarget b64m(origin);
  auto cow32 = std::make_shared<MemoryDevice>(32 * kMiB, "vgsrv-sb64m-cow");
  auto cow64 = std::make_shared<MemoryDevice>(64 * kMiB, "vgsrv-sb64m2-cow");
  auto sb64m = open_snapshot(origin, {cow32, "vgsrv-sb64m-cow", 'P', 8, true});
  auto sb64m2 = open_snapshot(origin, {cow64, "vgsrv-sb64m2-cow", 'P', 8, true});
  REQUIRE(sb64m.ok());
  REQUIRE(sb64m2.ok());
  CHECK((*sb64m)->status_params() == "16/65536 16");
  CHECK(report::snapshot_data_percent((*sb64m2)->usage(), true) == 0.0);

  // dd if=/dev/zero of=40M.img bs=40M: 40 MiB at 8 MiB into the origin.
  const uint64_t at = 8 * kMiB;
  REQUIRE(b64m.write(at, std::vector<uint8_t>(40 * kMiB, 0)).ok());

  // 32 MiB: 8192 chunks hold 8191 - ceil(8191/257) = 8159 data chunks < 10240.
  CHECK_FALSE((*sb64m)->valid());
  CHECK((*sb64m)->status_params() == "Invalid");
  std::vector<uint8_t> block(4096);
  CHECK((*sb64m)->read(0, block).errnum() == EIO);
  CHECK(report::snapshot_data_percent((*sb64m)->usage(), false) == 100.0);

  // 64 MiB: 10240 data chunks + 40 more metadata areas: next_free = 2 + 10240 + 40.
  REQUIRE((*sb64m2)->valid());
  CHECK((*sb64m2)->status_params() == "82256/131072 336");
  CHECK(report::snapshot_data_percent((*sb64m2)->usage(), true) == Approx(62.7563).epsilon(1e-4));
  std::vector<uint8_t> all(64 * kMiB);
  REQUIRE((*sb64m2)->read(0, all).ok());
  CHECK(byte_diff(all, pattern(0, 64 * kMiB, 0)) == "");
  REQUIRE(b64m.read(at, std::span(all).first(40 * kMiB)).ok());
  CHECK(std::all_of(all.begin(), all.begin() + 40 * kMiB, [](uint8_t b) { return b == 0; }));

  // Reopened from the devices: the same verdicts.
  auto origin2 = Origin::create(real, "vgsrv-b64m-real");
  auto again32 = open_snapshot(origin2, {cow32, "vgsrv-sb64m-cow", 'P', 8, false});
  auto again64 = open_snapshot(origin2, {cow64, "vgsrv-sb64m2-cow", 'P', 8, false});
  REQUIRE(again32.ok());
  REQUIRE(again64.ok());
  CHECK_FALSE((*again32)->valid());
  CHECK((*again32)->read(0, block).errnum() == EIO);
  CHECK((*again64)->status_params() == "82256/131072 336");
  REQUIRE((*again64)->read(0, all).ok());
  CHECK(byte_diff(all, pattern(0, 64 * kMiB, 0)) == "");
}
