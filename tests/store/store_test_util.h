// Helpers for store tests. The on-disk bytes are built here from the layout
// in docs/dm-snapshot.md, independently of engine/store's encoder, so that a
// mistake shared by writer and reader cannot pass unnoticed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "cowsnap/common/block_device.h"
#include "cowsnap/store/exception_store.h"

namespace cowsnap::testing {

inline constexpr uint32_t kChunkSectors = 8;  // 4 KiB
inline constexpr uint64_t kChunkBytes = 4096;
inline constexpr uint64_t kPerArea = kChunkBytes / 16;  // 256

inline void put_le32(std::vector<uint8_t>& out, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) out.at(at + i) = static_cast<uint8_t>((v >> (8 * i)) & 0xff);
}
inline void put_le64(std::vector<uint8_t>& out, size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) out.at(at + i) = static_cast<uint8_t>((v >> (8 * i)) & 0xff);
}

// Chunk 0 as the documentation describes it.
inline std::vector<uint8_t> header_chunk(uint32_t valid, uint32_t version = 1,
                                         uint32_t chunk_sectors = kChunkSectors,
                                         uint32_t magic = 0x70416e53) {
  std::vector<uint8_t> bytes(uint64_t{chunk_sectors} * 512, 0);
  put_le32(bytes, 0, magic);
  put_le32(bytes, 4, valid);
  put_le32(bytes, 8, version);
  put_le32(bytes, 12, chunk_sectors);
  return bytes;
}

// Chunk of metadata area `area` for 4 KiB chunks: 1 + area * 257.
inline uint64_t area_chunk(uint64_t area) { return 1 + area * (kPerArea + 1); }

// The data chunks the kernel hands out in order, skipping metadata chunks.
inline std::vector<uint64_t> kernel_allocation_order(size_t count) {
  std::vector<uint64_t> chunks;
  for (uint64_t c = 2; chunks.size() < count; ++c) {
    if (c % (kPerArea + 1) != 1) chunks.push_back(c);
  }
  return chunks;
}

inline std::vector<uint8_t> read_bytes(BlockDevice& dev, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> bytes(length);
  REQUIRE(dev.read(offset, bytes).ok());
  return bytes;
}

inline std::vector<uint8_t> read_chunk(BlockDevice& dev, uint64_t chunk) {
  return read_bytes(dev, chunk * kChunkBytes, kChunkBytes);
}

inline void write_chunk(BlockDevice& dev, uint64_t chunk, const std::vector<uint8_t>& bytes) {
  REQUIRE(dev.write(chunk * kChunkBytes, bytes).ok());
}

inline void fill_device(BlockDevice& dev, uint8_t byte) {
  std::vector<uint8_t> junk(1 << 20, byte);
  for (uint64_t at = 0; at < dev.size_bytes(); at += junk.size()) {
    const uint64_t n = std::min<uint64_t>(junk.size(), dev.size_bytes() - at);
    REQUIRE(dev.write(at, std::span<const uint8_t>(junk.data(), n)).ok());
  }
}

using Mapping = std::pair<uint64_t, uint64_t>;  // old chunk, cow chunk

// Writes a valid store holding `exceptions` (in on-disk order) by hand:
// header, then areas of 256 entries each; an area after a full one is
// written as zeroes when it fits in the device.
inline void write_store_by_hand(BlockDevice& dev, const std::vector<Mapping>& exceptions) {
  write_chunk(dev, 0, header_chunk(1));
  const uint64_t device_chunks = dev.size_bytes() / kChunkBytes;
  const size_t areas = exceptions.size() / kPerArea + 1;
  for (size_t a = 0; a < areas; ++a) {
    std::vector<uint8_t> area(kChunkBytes, 0);
    for (size_t i = 0; i < kPerArea && a * kPerArea + i < exceptions.size(); ++i) {
      put_le64(area, i * 16, exceptions[a * kPerArea + i].first);
      put_le64(area, i * 16 + 8, exceptions[a * kPerArea + i].second);
    }
    if (area_chunk(a) < device_chunks) write_chunk(dev, area_chunk(a), area);
  }
}

struct Opened {
  Status status;
  std::unique_ptr<ExceptionStore> store;  // null when status is an error
  std::vector<Mapping> seen;              // in visiting order
};

inline Opened open_store(std::shared_ptr<BlockDevice> dev, uint32_t chunk_sectors = kChunkSectors) {
  Opened opened;
  auto store = open_persistent_store(std::move(dev), chunk_sectors, [&](ChunkIndex o, ChunkIndex c) {
    opened.seen.emplace_back(o.value, c.value);
  });
  if (store.ok()) {
    opened.store = std::move(store).value();
  } else {
    opened.status = store.status();
  }
  return opened;
}

// Fills a data chunk with a pattern naming the origin chunk it copies, so a
// crash test can tell real data from garbage.
inline std::vector<uint8_t> data_pattern(uint64_t old_chunk) {
  std::vector<uint8_t> bytes(kChunkBytes);
  for (size_t at = 0; at < bytes.size(); at += 8) put_le64(bytes, at, old_chunk * 0x9E3779B97F4A7C15ULL + at);
  return bytes;
}

// One exception as a batch of one: most store tests commit one at a time.
inline Status commit_one(ExceptionStore& store, ChunkIndex old_chunk, ChunkIndex cow_chunk) {
  const NewException one{old_chunk, cow_chunk};
  return store.commit_exceptions(std::span(&one, 1));
}

}  // namespace cowsnap::testing
