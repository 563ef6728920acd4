// RbdDevice against a real cluster ($CEPH_CONF; ctest starts one, see
// tests/ceph/CMakeLists.txt): I/O, durability calls, zeroing, sharing in a
// process, the exclusive lock, and bad names.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cowsnap/io/devices.h"
#include "cowsnap/io/rbd.h"

namespace cowsnap {
namespace {

// An image name unique to this process and case.
std::string image_name(const std::string& what) {
  return "rbd:rbd/test-rbd-" + std::to_string(::getpid()) + "-" + what;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

constexpr uint64_t kMiB = uint64_t{1} << 20;

}  // namespace

TEST_CASE("rbd names: pool/image and pool/namespace/image; anything else is refused") {
  auto a = parse_rbd_name("rbd:pool/img");
  REQUIRE(a.ok());
  CHECK(a->pool == "pool");
  CHECK(a->name_space.empty());
  CHECK(a->image == "img");
  auto b = parse_rbd_name("rbd:pool/ns/img");
  REQUIRE(b.ok());
  CHECK(b->name_space == "ns");
  for (const char* bad :
       {"rbd:", "rbd:pool", "rbd:pool/", "rbd:/img", "rbd:a/b/c/d", "rbd:p/i@snap", "p/i"}) {
    INFO(bad);
    auto r = parse_rbd_name(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == EINVAL);
    CHECK(r.status().message().find("not an RBD image name") != std::string::npos);
  }
}

TEST_CASE("rbd device: created on demand; reads what was written; zeroes; flushes") {
  const std::string name = image_name("io");
  REQUIRE(device_exists(name).value() == false);
  auto missing = open_device(name, {});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().errnum() == ENOENT);
  CHECK(missing.status().message().find("does not exist in pool rbd") != std::string::npos);

  auto dev = open_device(name, {.create_size_bytes = 16 * kMiB});
  REQUIRE(dev.ok());
  CHECK((*dev)->size_bytes() == 16 * kMiB);
  CHECK((*dev)->describe() == name);
  CHECK(device_exists(name).value());

  std::vector<uint8_t> zero(kMiB), got(kMiB);
  REQUIRE((*dev)->read(0, got).ok());
  CHECK(got == zero);

  const auto a = pattern(3 * kMiB / 2, 1);
  REQUIRE((*dev)->write(kMiB / 2, a).ok());
  std::vector<uint8_t> back(a.size());
  REQUIRE((*dev)->read(kMiB / 2, back).ok());
  CHECK(back == a);

  // Gather: three pieces back to back, durable on return.
  const auto p1 = pattern(4096, 9), p2 = pattern(512, 10), p3 = pattern(65536, 11);
  std::vector<std::span<const uint8_t>> pieces{p1, p2, p3};
  REQUIRE((*dev)->write_gather_durable(8 * kMiB, pieces).ok());
  std::vector<uint8_t> all(p1.size() + p2.size() + p3.size());
  REQUIRE((*dev)->read(8 * kMiB, all).ok());
  std::vector<uint8_t> want(p1);
  want.insert(want.end(), p2.begin(), p2.end());
  want.insert(want.end(), p3.begin(), p3.end());
  CHECK(all == want);
  REQUIRE((*dev)->flush().ok());

  // Zeroes and discards read back as zeroes, also on partial objects.
  REQUIRE((*dev)->write_zeroes(kMiB / 2 + 100, 1000).ok());
  std::vector<uint8_t> z(1000);
  REQUIRE((*dev)->read(kMiB / 2 + 100, z).ok());
  CHECK(z == std::vector<uint8_t>(1000, 0));
  REQUIRE((*dev)->discard(8 * kMiB + 4096, 512).ok());
  std::vector<uint8_t> d(512);
  REQUIRE((*dev)->read(8 * kMiB + 4096, d).ok());
  CHECK(d == std::vector<uint8_t>(512, 0));

  // Out of range: EINVAL, nothing done.
  std::vector<uint8_t> one(1);
  auto past = (*dev)->write(16 * kMiB, one);
  CHECK(past.errnum() == EINVAL);
  CHECK((*dev)->read(16 * kMiB - 1, one).ok());
}

TEST_CASE("rbd device: one process shares one open image; read-only opens cannot write") {
  const std::string name = image_name("share");
  auto rw = RbdDevice::open(name, {.create_size_bytes = 4 * kMiB});
  REQUIRE(rw.ok());
  auto again = RbdDevice::open(name, {});
  REQUIRE(again.ok());
  CHECK(again->get() == rw->get());
  auto ro_while_rw = RbdDevice::open(name, {.read_only = true});
  REQUIRE(ro_while_rw.ok());
  CHECK(ro_while_rw->get() == rw->get());
  rw->reset();
  again->reset();
  ro_while_rw->reset();
  auto ro = RbdDevice::open(name, {.read_only = true});
  REQUIRE(ro.ok());
  CHECK((*ro)->read_only());
  const auto a = pattern(512, 3);
  CHECK((*ro)->write(0, a).errnum() == EROFS);
}

TEST_CASE("rbd device: the exclusive lock is held explicitly, idempotently, and released on close") {
  const std::string name = image_name("lock");
  auto dev = RbdDevice::open(name, {.create_size_bytes = 4 * kMiB});
  REQUIRE(dev.ok());
  REQUIRE((*dev)->acquire_exclusive_lock(TakeOver::kNo).ok());
  CHECK((*dev)->owns_lock().value());
  REQUIRE((*dev)->acquire_exclusive_lock(TakeOver::kNo).ok());
  const auto a = pattern(4096, 5);
  REQUIRE((*dev)->write(0, a).ok());
  CHECK((*dev)->owns_lock().value());
  dev->reset();
  auto reopened = RbdDevice::open(name, {});
  REQUIRE(reopened.ok());
  CHECK_FALSE((*reopened)->owns_lock().value());
}

TEST_CASE("rbd device: unknown pools and bad names are errors naming them") {
  auto pool = open_device("rbd:no-such-pool/x", {.create_size_bytes = kMiB});
  REQUIRE_FALSE(pool.ok());
  CHECK(pool.status().errnum() == ENOENT);
  CHECK(pool.status().message().find("pool no-such-pool does not exist") != std::string::npos);
  auto exists = device_exists("rbd:no-such-pool/x");
  REQUIRE_FALSE(exists.ok());
  auto bad = open_device("rbd:justpool", {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().errnum() == EINVAL);
}

}  // namespace cowsnap
