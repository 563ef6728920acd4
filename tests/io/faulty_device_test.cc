#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "cowsnap/io/devices.h"

using cowsnap::BlockDevice;
using cowsnap::DeviceWrapper;
using cowsnap::FaultyDevice;
using cowsnap::MemoryDevice;
using cowsnap::Status;

namespace {

std::vector<uint8_t> image_of(BlockDevice& dev) {
  std::vector<uint8_t> out(dev.size_bytes());
  REQUIRE(dev.read(0, out).ok());
  return out;
}

std::vector<uint8_t> filled(size_t n, uint8_t value) { return std::vector<uint8_t>(n, value); }

struct Rig {
  std::shared_ptr<MemoryDevice> mem = std::make_shared<MemoryDevice>(64 * 1024, "mem");
  std::shared_ptr<FaultyDevice> dev = std::make_shared<FaultyDevice>(mem);
};

// Copies the whole device each time a flush reaches it. FaultyDevice calls
// flush under its lock, so each copy is exactly a flushed image.
class ImageOnFlush final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status flush() override {
    std::vector<uint8_t> image(size_bytes());
    COWSNAP_RETURN_IF_ERROR(target()->read(0, image));
    COWSNAP_RETURN_IF_ERROR(DeviceWrapper::flush());
    std::lock_guard lock(mu_);
    last_ = std::move(image);
    ++count_;
    return Status::Ok();
  }
  std::vector<uint8_t> last() {
    std::lock_guard lock(mu_);
    return last_;
  }
  uint64_t count() {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::vector<uint8_t> last_;
  uint64_t count_ = 0;
};

}  // namespace

TEST_CASE("FaultyDevice fail_write_after fails exactly the (n+1)th write, once") {
  Rig r;
  r.dev->fail_write_after(2);
  std::vector<uint8_t> buf(16);
  REQUIRE(r.dev->read(0, buf).ok());  // reads are not write-type calls
  REQUIRE(r.dev->write(0, filled(16, 1)).ok());
  REQUIRE(r.dev->discard(0, 8).ok());
  auto st = r.dev->write_zeroes(100, 4);
  CHECK(st.errnum() == EIO);
  CHECK(st.message().find("mem") != std::string::npos);
  REQUIRE(r.dev->write(100, filled(4, 5)).ok());  // once only
  REQUIRE(r.dev->write_zeroes(8, 1).ok());

  r.dev->fail_write_after(0);
  CHECK(r.dev->write(200, filled(4, 6)).errnum() == EIO);
  REQUIRE(r.dev->read(200, buf).ok());
  CHECK(buf == filled(16, 0));  // the failed write wrote nothing
  CHECK_FALSE(r.dev->is_cut());
  REQUIRE(r.dev->read(96, buf).ok());
  CHECK(buf == std::vector<uint8_t>{0, 0, 0, 0, 5, 5, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("FaultyDevice power_cut restores the last flushed bytes") {
  Rig r;
  REQUIRE(r.dev->write(0, filled(64 * 1024, 0xA1)).ok());
  REQUIRE(r.dev->write(1000, filled(3000, 0xA2)).ok());
  REQUIRE(r.dev->flush().ok());
  const auto flushed = image_of(*r.mem);

  // Overlapping unflushed changes of every kind, including one that covers
  // an earlier unflushed write.
  REQUIRE(r.dev->write(500, filled(1000, 0xB1)).ok());
  REQUIRE(r.dev->write(900, filled(2000, 0xB2)).ok());
  REQUIRE(r.dev->write_zeroes(800, 300).ok());
  REQUIRE(r.dev->discard(0, 4096).ok());
  REQUIRE(r.dev->write(2000, filled(10, 0xB3)).ok());
  REQUIRE(image_of(*r.mem) != flushed);

  r.dev->power_cut();
  CHECK(r.dev->is_cut());
  CHECK(image_of(*r.mem) == flushed);
}

TEST_CASE("FaultyDevice keeps flushed writes across a power cut") {
  Rig r;
  REQUIRE(r.dev->write(100, filled(50, 1)).ok());
  REQUIRE(r.dev->flush().ok());
  REQUIRE(r.dev->write(120, filled(50, 2)).ok());
  REQUIRE(r.dev->flush().ok());
  REQUIRE(r.dev->write(140, filled(50, 3)).ok());
  r.dev->power_cut();
  std::vector<uint8_t> got(100);
  REQUIRE(r.mem->read(100, got).ok());
  std::vector<uint8_t> want(100, 0);
  std::fill(want.begin(), want.begin() + 20, 1);
  std::fill(want.begin() + 20, want.begin() + 70, 2);
  CHECK(got == want);
}

TEST_CASE("FaultyDevice fails every call after a power cut with EIO") {
  Rig r;
  REQUIRE(r.dev->write(0, filled(10, 7)).ok());
  REQUIRE(r.dev->flush().ok());
  r.dev->power_cut();
  r.dev->power_cut();  // a second cut changes nothing
  std::vector<uint8_t> buf(10);
  CHECK(r.dev->read(0, buf).errnum() == EIO);
  CHECK(r.dev->write(0, filled(10, 8)).errnum() == EIO);
  CHECK(r.dev->write_zeroes(0, 10).errnum() == EIO);
  CHECK(r.dev->discard(0, 10).errnum() == EIO);
  CHECK(r.dev->flush().errnum() == EIO);
  REQUIRE(r.mem->read(0, buf).ok());
  CHECK(buf == filled(10, 7));
}

TEST_CASE("FaultyDevice power_cut_after counts non-read operations") {
  Rig r;
  CHECK(r.dev->operations() == 0);
  r.dev->power_cut_after(3);
  std::vector<uint8_t> buf(8);
  REQUIRE(r.dev->write(0, filled(8, 1)).ok());           // op 1
  REQUIRE(r.dev->read(0, buf).ok());                     // not an op
  REQUIRE(r.dev->flush().ok());                          // op 2
  REQUIRE(r.dev->write_zeroes(0, 4).ok());               // op 3
  CHECK(r.dev->write(4, filled(4, 9)).errnum() == EIO);  // op 4: the cut
  CHECK(r.dev->operations() == 4);
  CHECK(r.dev->is_cut());
  REQUIRE(r.mem->read(0, buf).ok());
  CHECK(buf == filled(8, 1));  // the zeroing was undone, the last write never landed
  CHECK(r.dev->read(0, buf).errnum() == EIO);

  SECTION("a cut can land on a flush, which then does not happen") {
    Rig s;
    REQUIRE(s.dev->write(0, filled(8, 2)).ok());
    s.dev->power_cut_after(0);
    CHECK(s.dev->flush().errnum() == EIO);
    REQUIRE(s.mem->read(0, buf).ok());
    CHECK(buf == filled(8, 0));
  }
}

TEST_CASE("FaultyDevice under concurrent writers restores exactly the last flushed image") {
  constexpr int kThreads = 4;
  constexpr int kRounds = 30;
  std::mt19937_64 cut_rng(42);
  for (int round = 0; round < kRounds; ++round) {
    // Small device, modest writes, rare flushes: the undo log at the cut
    // holds many overlapping entries from different threads.
    auto mem = std::make_shared<MemoryDevice>(64 * 1024, "mem");
    auto images = std::make_shared<ImageOnFlush>(mem);
    auto dev = std::make_shared<FaultyDevice>(images);
    REQUIRE(dev->write(0, filled(mem->size_bytes(), 0x11)).ok());
    REQUIRE(dev->flush().ok());

    std::atomic<int> saw_eio{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(static_cast<uint64_t>(round * kThreads + t) * 7919 + 1);
        const uint64_t size = dev->size_bytes();
        for (uint64_t i = 0;; ++i) {
          const uint64_t len = 1 + rng() % 4096;
          const uint64_t off = rng() % (size - len);
          const auto value = static_cast<uint8_t>(0x20 + static_cast<uint64_t>(t) * 16 + i % 16);
          Status st;
          switch (rng() % 32) {
            case 0:
              st = dev->flush();
              break;
            case 1:
              st = dev->write_zeroes(off, len);
              break;
            case 2:
              st = dev->discard(off, len);
              break;
            default:
              st = dev->write(off, filled(len, value));
              break;
          }
          if (!st.ok()) {
            if (st.errnum() == EIO) saw_eio.fetch_add(1);
            return;
          }
        }
      });
    }
    // Cut while the writers are mid-flight, after enough flushes that the
    // surviving image is not the initial one.
    const uint64_t cut_after = 300 + cut_rng() % 300;
    while (dev->operations() < cut_after || images->count() < 3) std::this_thread::yield();
    dev->power_cut();
    for (auto& th : threads) th.join();

    INFO("round " << round);
    CHECK(saw_eio.load() == kThreads);
    const auto last_flushed = images->last();
    CHECK(last_flushed != filled(mem->size_bytes(), 0x11));
    CHECK(image_of(*mem) == last_flushed);
  }
}

TEST_CASE("FaultyDevice: a write_durable survives a power cut, and makes no other write durable") {
  Rig r;
  REQUIRE(r.dev->write(0, filled(4096, 1)).ok());
  REQUIRE(r.dev->flush().ok());
  // Unflushed writes around and under the durable one.
  REQUIRE(r.dev->write(0, filled(4096, 2)).ok());
  REQUIRE(r.dev->write(8192, filled(512, 3)).ok());
  REQUIRE(r.dev->write_durable(1024, filled(1024, 4)).ok());
  REQUIRE(r.dev->write(1536, filled(16, 5)).ok());  // after it, unflushed again
  r.dev->power_cut();

  const std::vector<uint8_t> img = image_of(*r.mem);
  for (size_t i = 0; i < 1024; ++i) REQUIRE(img[i] == 1);     // the unflushed rewrite is undone
  for (size_t i = 1024; i < 2048; ++i) REQUIRE(img[i] == 4);  // the durable bytes stay, 5 is undone
  for (size_t i = 2048; i < 4096; ++i) REQUIRE(img[i] == 1);
  for (size_t i = 8192; i < 8192 + 512; ++i) REQUIRE(img[i] == 0);
}

TEST_CASE("FaultyDevice: write_durable is a write-type call for fail_write_after and power_cut_after") {
  Rig r;
  r.dev->fail_write_after(0);
  CHECK(r.dev->write_durable(0, filled(16, 1)).errnum() == EIO);
  CHECK(image_of(*r.mem)[0] == 0);
  r.dev->power_cut_after(0);
  CHECK(r.dev->write_durable(0, filled(16, 1)).errnum() == EIO);
  CHECK(r.dev->is_cut());
  CHECK(image_of(*r.mem)[0] == 0);
}
