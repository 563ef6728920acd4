// What create / commit / invalidate write, byte for byte, compared with
// bytes built here from the documented layout.
#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <vector>

#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "store_test_util.h"

using namespace cowsnap;
using namespace cowsnap::testing;

namespace {

// Records the order of writes, zeroings and flushes, by chunk.
class RecordingDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    log("write " + std::to_string(offset / kChunkBytes));
    return DeviceWrapper::write(offset, buf);
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    log("zero " + std::to_string(offset / kChunkBytes));
    return DeviceWrapper::write_zeroes(offset, length);
  }
  Status flush() override {
    log("flush");
    return DeviceWrapper::flush();
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    return std::exchange(ops_, {});
  }

 private:
  void log(std::string op) {
    std::lock_guard lock(mu_);
    ops_.push_back(std::move(op));
  }
  std::mutex mu_;
  std::vector<std::string> ops_;  // guarded by mu_
};

std::vector<uint8_t> zeroes() { return std::vector<uint8_t>(kChunkBytes, 0); }

}  // namespace

TEST_CASE("create writes the documented header and zeroes area 0") {
  auto dev = std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow0");
  fill_device(*dev, 0xAA);
  auto store = create_persistent_store(dev, kChunkSectors);
  REQUIRE(store.ok());

  std::vector<uint8_t> expected(kChunkBytes, 0);
  const uint8_t prefix[16] = {0x53, 0x6e, 0x41, 0x70, 1, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0};
  std::copy(std::begin(prefix), std::end(prefix), expected.begin());
  CHECK(read_chunk(*dev, 0) == expected);
  CHECK(read_chunk(*dev, 0) == header_chunk(1));
  CHECK(read_chunk(*dev, 1) == zeroes());
  CHECK((*store)->type_code() == "P");
  CHECK((*store)->valid());
}

TEST_CASE("create makes area 0 durable before the header names the device a store") {
  auto dev = std::make_shared<RecordingDevice>(std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow0"));
  REQUIRE(create_persistent_store(dev, kChunkSectors).ok());
  CHECK(dev->take() == std::vector<std::string>{"zero 1", "flush", "write 0", "flush"});
}

TEST_CASE("create records other chunk sizes in the header") {
  auto dev = std::make_shared<MemoryDevice>(4 << 20, "cow0");
  REQUIRE(create_persistent_store(dev, 128).ok());  // 64 KiB
  auto header = read_bytes(*dev, 0, 65536);
  CHECK(header == header_chunk(1, 1, 128));
}

TEST_CASE("commit writes entries at their documented offsets") {
  auto dev = std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow0");
  fill_device(*dev, 0xAA);
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();

  const std::vector<uint64_t> olds = {0x1122334455667788ULL, 7, 0};
  std::vector<uint8_t> expected = zeroes();
  for (size_t i = 0; i < olds.size(); ++i) {
    auto cow = store->prepare_exception();
    REQUIRE(cow.ok());
    CHECK(cow->value == 2 + i);
    REQUIRE(commit_one(*store, ChunkIndex{olds[i]}, *cow).ok());
    put_le64(expected, i * 16, olds[i]);
    put_le64(expected, i * 16 + 8, 2 + i);
    CHECK(read_chunk(*dev, 1) == expected);
  }
  const uint8_t first_entry[16] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 2, 0, 0, 0, 0, 0, 0, 0};
  auto area = read_chunk(*dev, 1);
  CHECK(std::equal(std::begin(first_entry), std::end(first_entry), area.begin()));
}

TEST_CASE("a full area: the next area is zeroed and flushed before the full one is written") {
  auto mem = std::make_shared<MemoryDevice>(600 * kChunkBytes, "cow0");
  fill_device(*mem, 0xAA);
  auto dev = std::make_shared<RecordingDevice>(mem);
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();

  std::vector<uint8_t> expected = zeroes();
  for (uint64_t i = 0; i < kPerArea; ++i) {
    auto cow = store->prepare_exception();
    REQUIRE(cow.ok());
    (void)dev->take();
    REQUIRE(commit_one(*store, ChunkIndex{1000 + i}, *cow).ok());
    put_le64(expected, i * 16, 1000 + i);
    put_le64(expected, i * 16 + 8, cow->value);
    if (i + 1 < kPerArea) {
      CHECK(dev->take() == std::vector<std::string>{"flush", "write 1", "flush"});
      CHECK(read_chunk(*mem, 258) != zeroes());  // untouched junk until area 0 fills
    }
  }
  // Area 1 lives at chunk 1 + 257 = 258.
  CHECK(dev->take() == std::vector<std::string>{"zero 258", "flush", "write 1", "flush"});
  CHECK(read_chunk(*mem, 1) == expected);
  CHECK(read_chunk(*mem, 258) == zeroes());

  // The next commit goes to area 1; its data chunk is the one after it.
  auto cow = store->prepare_exception();
  REQUIRE(cow.ok());
  CHECK(cow->value == 259);
  REQUIRE(commit_one(*store, ChunkIndex{5}, *cow).ok());
  std::vector<uint8_t> area1 = zeroes();
  put_le64(area1, 0, 5);
  put_le64(area1, 8, 259);
  CHECK(read_chunk(*mem, 258) == area1);
  CHECK(read_chunk(*mem, 1) == expected);
}

TEST_CASE("invalidate writes valid = 0 and flushes") {
  auto mem = std::make_shared<MemoryDevice>(64 * kChunkBytes, "cow0");
  auto dev = std::make_shared<RecordingDevice>(mem);
  auto store = std::move(create_persistent_store(dev, kChunkSectors)).value();
  (void)dev->take();
  REQUIRE(store->invalidate().ok());
  CHECK(dev->take() == std::vector<std::string>{"write 0", "flush"});
  std::vector<uint8_t> expected(kChunkBytes, 0);
  const uint8_t prefix[16] = {0x53, 0x6e, 0x41, 0x70, 0, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0};
  std::copy(std::begin(prefix), std::end(prefix), expected.begin());
  CHECK(read_chunk(*mem, 0) == expected);
  CHECK_FALSE(store->valid());
}
