// Chunk arithmetic in one place. A chunk is the unit a snapshot copies:
// a power of two of 512-byte sectors. ChunkIndex is a strong type so that
// chunk numbers never mix with sectors or bytes.
#pragma once

#include <bit>
#include <compare>
#include <cstdint>
#include <functional>

#include "cowsnap/common/block_device.h"
#include "cowsnap/common/status.h"

namespace cowsnap {

struct ChunkIndex {
  uint64_t value = 0;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads defaulted <=>.
  constexpr auto operator<=>(const ChunkIndex&) const = default;
};

// LVM accepts 4 KiB to 512 KiB snapshot chunks; the kernel itself accepts
// any power of two of sectors, which stores made elsewhere may use.
inline constexpr uint32_t kMinChunkBytes = 4096;
inline constexpr uint32_t kMaxChunkBytes = 512 * 1024;

class ChunkGeometry {
 public:
  // REQUIRES: chunk_sectors is a power of two (see validate_chunk_sectors).
  constexpr explicit ChunkGeometry(uint32_t chunk_sectors)
      : chunk_sectors_(chunk_sectors), shift_(static_cast<uint32_t>(std::countr_zero(chunk_sectors)) + 9) {}

  [[nodiscard]] constexpr uint32_t chunk_sectors() const { return chunk_sectors_; }
  [[nodiscard]] constexpr uint64_t chunk_bytes() const { return uint64_t{1} << shift_; }
  [[nodiscard]] constexpr ChunkIndex chunk_of(uint64_t byte_offset) const { return {byte_offset >> shift_}; }
  [[nodiscard]] constexpr uint64_t offset_of(ChunkIndex c) const { return c.value << shift_; }
  [[nodiscard]] constexpr uint64_t offset_in_chunk(uint64_t byte_offset) const {
    return byte_offset & (chunk_bytes() - 1);
  }
  // Whole chunks that fit in `bytes` (a partial last chunk is not counted).
  [[nodiscard]] constexpr uint64_t chunks_in(uint64_t bytes) const { return bytes >> shift_; }

 private:
  uint32_t chunk_sectors_;
  uint32_t shift_;
};

// OK when `chunk_sectors` is a power of two within 4 KiB..512 KiB; EINVAL
// with a message saying what is allowed otherwise.
Status validate_chunk_sectors(uint64_t chunk_sectors);

}  // namespace cowsnap

template <>
struct std::hash<cowsnap::ChunkIndex> {
  size_t operator()(cowsnap::ChunkIndex c) const noexcept { return std::hash<uint64_t>{}(c.value); }
};
