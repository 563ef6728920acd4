// The kernel's persistent exception store format (dm-snap-persistent),
// described in docs/dm-snapshot.md: where the header, the metadata areas and
// the data chunks live on the COW device, and how their bytes are encoded.
// Pure arithmetic and encoding; no I/O.
#pragma once

#include <cstdint>
#include <span>

namespace cowsnap::pstore {

inline constexpr uint32_t kMagic = 0x70416e53;  // bytes 53 6e 41 70, "SnAp"
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kHeaderBytes = 16;
inline constexpr uint64_t kEntryBytes = 16;
inline constexpr uint64_t kHeaderChunks = 1;

// Chunk 0: {le32 magic, le32 valid, le32 version, le32 chunk_size}; the
// rest of the chunk is zero.
struct DiskHeader {
  uint32_t magic = kMagic;
  uint32_t valid = 1;  // the kernel treats any non-zero value as valid
  uint32_t version = kVersion;
  uint32_t chunk_sectors = 0;
};

// REQUIRES: out.size() >= kHeaderBytes. Writes the first 16 bytes only.
void encode_header(const DiskHeader& header, std::span<uint8_t> out);
// REQUIRES: in.size() >= kHeaderBytes.
DiskHeader decode_header(std::span<const uint8_t> in);

// One metadata entry: {le64 old_chunk, le64 new_chunk}. new_chunk == 0
// (the header's chunk) marks the end of the table.
struct DiskException {
  uint64_t old_chunk = 0;
  uint64_t new_chunk = 0;
};

// REQUIRES: (index + 1) * kEntryBytes <= area.size().
void encode_exception(std::span<uint8_t> area, uint64_t index, const DiskException& e);
DiskException decode_exception(std::span<const uint8_t> area, uint64_t index);

// Placement of metadata areas for one chunk size. Area i is one chunk at
// 1 + i * (epa + 1); the epa chunks after it hold data, so every chunk c
// with c % (epa + 1) == 1 is metadata and chunk 0 is the header.
class AreaLayout {
 public:
  explicit AreaLayout(uint64_t chunk_bytes) : per_area_(chunk_bytes / kEntryBytes) {}

  [[nodiscard]] uint64_t exceptions_per_area() const { return per_area_; }
  [[nodiscard]] uint64_t area_location(uint64_t area) const { return kHeaderChunks + area * (per_area_ + 1); }
  [[nodiscard]] bool is_metadata_chunk(uint64_t chunk) const {
    return chunk % (per_area_ + 1) == kHeaderChunks;
  }
  // The area a metadata chunk holds. REQUIRES: is_metadata_chunk(chunk).
  [[nodiscard]] uint64_t area_of(uint64_t chunk) const { return chunk / (per_area_ + 1); }
  // `next_free` moved past a metadata chunk if it sits on one. Two
  // metadata chunks are never adjacent (epa >= 1), so one step suffices.
  [[nodiscard]] uint64_t skip_metadata(uint64_t next_free) const {
    return is_metadata_chunk(next_free) ? next_free + 1 : next_free;
  }
  // Data chunks a device of `device_chunks` whole chunks can hold:
  // S - 1 - ceil((S - 1) / (epa + 1)) (header, then one metadata chunk per
  // started group of epa + 1 chunks).
  [[nodiscard]] uint64_t data_capacity(uint64_t device_chunks) const;

 private:
  uint64_t per_area_;
};

}  // namespace cowsnap::pstore
