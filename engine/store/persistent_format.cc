#include "persistent_format.h"

#include <cassert>

#include "cowsnap/common/little_endian.h"

namespace cowsnap::pstore {

void encode_header(const DiskHeader& header, std::span<uint8_t> out) {
  assert(out.size() >= kHeaderBytes);
  le::store32(out, 0, header.magic);
  le::store32(out, 4, header.valid);
  le::store32(out, 8, header.version);
  le::store32(out, 12, header.chunk_sectors);
}

DiskHeader decode_header(std::span<const uint8_t> in) {
  assert(in.size() >= kHeaderBytes);
  return DiskHeader{.magic = le::load32(in, 0),
                    .valid = le::load32(in, 4),
                    .version = le::load32(in, 8),
                    .chunk_sectors = le::load32(in, 12)};
}

void encode_exception(std::span<uint8_t> area, uint64_t index, const DiskException& e) {
  const size_t at = static_cast<size_t>(index * kEntryBytes);
  le::store64(area, at, e.old_chunk);
  le::store64(area, at + 8, e.new_chunk);
}

DiskException decode_exception(std::span<const uint8_t> area, uint64_t index) {
  const size_t at = static_cast<size_t>(index * kEntryBytes);
  return DiskException{.old_chunk = le::load64(area, at), .new_chunk = le::load64(area, at + 8)};
}

uint64_t AreaLayout::data_capacity(uint64_t device_chunks) const {
  if (device_chunks < kHeaderChunks + 1) return 0;
  const uint64_t after_header = device_chunks - kHeaderChunks;
  const uint64_t metadata_chunks = (after_header + per_area_) / (per_area_ + 1);  // ceil
  return after_header - metadata_chunks;
}

}  // namespace cowsnap::pstore
