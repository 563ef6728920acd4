#include "cowsnap/common/chunk.h"

#include <fmt/format.h>

#include <bit>
#include <cerrno>

namespace cowsnap {

Status validate_chunk_sectors(uint64_t chunk_sectors) {
  const uint64_t bytes = chunk_sectors * kSectorBytes;
  if (chunk_sectors == 0 || !std::has_single_bit(chunk_sectors) || bytes < kMinChunkBytes ||
      bytes > kMaxChunkBytes) {
    return Status::Error(EINVAL, fmt::format("chunk size {} bytes ({} sectors) is invalid: it must be a "
                                             "power of two from 4 KiB to 512 KiB",
                                             bytes, chunk_sectors));
  }
  return Status::Ok();
}

}  // namespace cowsnap
