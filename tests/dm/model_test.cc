// Model-based randomized test: random writes, write-zeroes and discards on
// an origin and several snapshots, snapshots taken in between, everything
// closed and reopened from the devices now and then; every read is
// compared with a plain in-memory model. COWSNAP_MODEL_ITERATIONS selects a
// longer run (default 4 seeds x 400 steps). Runs in both modes: in
// write-back mode overflow happens in the background, so validity is
// compared after a flush, and reads run with copy-outs pending.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>
#include <set>

#include "cowsnap/dm/snapshot.h"
#include "cowsnap/io/devices.h"
#include "support/patterns.h"

using namespace cowsnap;
using cowsnap::testing::byte_diff;

namespace {

constexpr uint64_t kOriginBytes = 512 * 1024;

struct ModelSnapshot {
  std::shared_ptr<MemoryDevice> cow;
  char type;
  uint32_t chunk_sectors;
  std::vector<uint8_t> content;    // what the snapshot must read
  std::set<uint64_t> used_chunks;  // chunks that needed an exception
  uint64_t capacity_chunks;        // data chunks the store can hold
  bool valid = true;
  std::shared_ptr<SnapshotTarget> target;
};

uint64_t capacity(uint64_t cow_bytes, uint32_t chunk_sectors, char type) {
  const uint64_t chunk = chunk_sectors * 512ULL;
  const uint64_t s = cow_bytes / chunk;
  if (type == 'N') return s;
  const uint64_t epa = chunk / 16;
  return s - 1 - (s - 1 + epa) / (epa + 1);
}

struct Model {
  std::mt19937_64 rng;
  std::shared_ptr<MemoryDevice> real = std::make_shared<MemoryDevice>(kOriginBytes, "real");
  std::shared_ptr<Origin> origin;
  std::shared_ptr<SnapshotOriginTarget> origin_target;
  std::vector<uint8_t> origin_content = std::vector<uint8_t>(kOriginBytes, 0);
  std::vector<ModelSnapshot> snaps;
  bool write_back;

  Model(uint64_t seed, bool wb) : rng(seed), write_back(wb) { reopen(); }

  // In write-back mode, lets pending copy-outs (and the invalidations they
  // cause) happen.
  void settle() {
    if (write_back) REQUIRE(origin_target->flush().ok());
  }

  uint64_t pick(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); }

  void reopen() {
    origin = Origin::create(real, "real", {write_back, 256 * 1024});
    origin_target = std::make_shared<SnapshotOriginTarget>(origin);
    for (auto& s : snaps) {
      if (s.type == 'N') continue;  // transient snapshots are dropped on reopen below
      auto t = open_snapshot(origin, {s.cow, "cow", 'P', s.chunk_sectors, false});
      INFO(t.status().message());
      REQUIRE(t.ok());
      s.target = *t;
      CHECK(s.target->valid() == s.valid);
    }
    std::erase_if(snaps, [](const ModelSnapshot& s) { return s.type == 'N'; });
  }

  void take_snapshot() {
    ModelSnapshot s;
    s.type = pick(0, 3) == 0 ? 'N' : 'P';
    s.chunk_sectors = 8u << pick(0, 3);
    const uint64_t chunk = s.chunk_sectors * 512ULL;
    // Sometimes too small to hold every change, so overflows happen too.
    const uint64_t chunks = pick(0, 2) == 0 ? pick(4, 24) : kOriginBytes / chunk + 8;
    s.cow = std::make_shared<MemoryDevice>(chunks * chunk, "cow");
    s.capacity_chunks = capacity(chunks * chunk, s.chunk_sectors, s.type);
    auto t = open_snapshot(origin, {s.cow, "cow", s.type, s.chunk_sectors, true});
    REQUIRE(t.ok());
    s.target = *t;
    s.content = origin_content;
    snaps.push_back(std::move(s));
  }

  // Marks the chunks [off, off+len) touch as used; a snapshot that cannot
  // hold them all must have become invalid.
  static void account(ModelSnapshot& s, uint64_t off, uint64_t len) {
    if (!s.valid) return;
    const uint64_t chunk = s.chunk_sectors * 512ULL;
    for (uint64_t c = off / chunk; c * chunk < off + len; ++c) s.used_chunks.insert(c);
    if (s.used_chunks.size() > s.capacity_chunks) s.valid = false;
  }

  void step() {
    const uint64_t off = pick(0, kOriginBytes - 1);
    const uint64_t len = pick(1, std::min<uint64_t>(40000, kOriginBytes - off));
    std::vector<uint8_t> data(len);
    const int op = static_cast<int>(pick(0, 9));
    if (op < 5 || snaps.empty()) {  // origin change
      const int kind = static_cast<int>(pick(0, 5));
      Status st;
      if (kind == 0) {
        st = origin_target->write_zeroes(off, len);
      } else if (kind == 1) {
        st = origin_target->discard(off, len);
      } else {
        for (auto& b : data) b = static_cast<uint8_t>(rng());
        st = origin_target->write(off, data);
      }
      INFO(st.message());
      REQUIRE(st.ok());
      for (auto& s : snaps) account(s, off, len);
      std::copy(data.begin(), data.end(), origin_content.begin() + static_cast<std::ptrdiff_t>(off));
    } else if (op < 7) {  // snapshot write
      settle();
      auto& s = snaps[pick(0, snaps.size() - 1)];
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      const bool was_valid = s.valid;
      account(s, off, len);
      Status st = s.target->write(off, data);
      if (s.valid) {
        INFO(st.message());
        REQUIRE(st.ok());
        std::copy(data.begin(), data.end(), s.content.begin() + static_cast<std::ptrdiff_t>(off));
      } else {
        CHECK(st.errnum() == EIO);
        (void)was_valid;
      }
    } else if (op < 8) {
      if (snaps.size() < 5) take_snapshot();
    } else if (op < 9) {
      reopen();
    } else {
      verify();
    }
    if (write_back && pick(0, 2) != 0) return;  // leave copy-outs pending
    settle();
    for (auto& s : snaps) REQUIRE(s.target->valid() == s.valid);
  }

  void verify() {
    std::vector<uint8_t> buf(kOriginBytes);
    REQUIRE(origin_target->read(0, buf).ok());
    REQUIRE(byte_diff(buf, origin_content) == "");
    for (auto& s : snaps) {
      if (!s.valid) settle();
      Status st = s.target->read(0, buf);
      if (s.valid) {
        INFO(st.message());
        REQUIRE(st.ok());
        REQUIRE(byte_diff(buf, s.content) == "");
      } else {
        REQUIRE(st.errnum() == EIO);
      }
    }
  }
};

}  // namespace

TEST_CASE("randomized origin and snapshot I/O matches a plain model") {
  const char* env = std::getenv("COWSNAP_MODEL_ITERATIONS");
  const uint64_t steps = env != nullptr ? std::strtoull(env, nullptr, 10) : 400;
  const uint64_t seeds = env != nullptr ? 16 : 4;
  const bool write_back = GENERATE(false, true);
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    INFO("seed " << seed << (write_back ? ", write-back" : ", sync"));
    Model m(seed, write_back);
    m.take_snapshot();
    for (uint64_t i = 0; i < steps; ++i) m.step();
    m.verify();
  }
}
