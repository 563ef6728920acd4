#include "cowsnap/vg/metadata_area.h"

#include <fmt/format.h>

#include <cerrno>
#include <vector>

#include "cowsnap/vg/crc.h"

namespace cowsnap::vg {
namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Status init_metadata_area(BlockDevice& dev, const DiskArea& area, std::string_view name) {
  MdaHeader h;
  h.start = area.offset_bytes;
  h.size = area.size_bytes;
  return write_mda_header(dev, h, name);
}

Result<MetadataText> read_metadata_area(BlockDevice& dev, const DiskArea& area, std::string_view name) {
  if (area.size_bytes <= kMdaHeaderSize || area.offset_bytes + area.size_bytes > dev.size_bytes()) {
    return Status::Error(EINVAL, fmt::format("{}: metadata area {}+{} does not fit the device", name,
                                             area.offset_bytes, area.size_bytes));
  }
  std::array<uint8_t, kMdaHeaderSize> sector{};
  COWSNAP_RETURN_IF_ERROR(dev.read(area.offset_bytes, sector).with_context(name));
  MetadataText out;
  COWSNAP_ASSIGN_OR_RETURN(out.header, decode_mda_header(sector, area.offset_bytes, name));
  if (out.header.size != area.size_bytes) {
    return Status::Error(EINVAL, fmt::format("{}: metadata area header says size {}, PV header says {}", name,
                                             out.header.size, area.size_bytes));
  }
  if (out.header.raw_locns.empty()) return out;
  const RawLocn& r = out.header.raw_locns.front();
  if ((r.flags & kRawLocnIgnored) != 0 || r.size == 0) return out;
  const uint64_t capacity = area.size_bytes - kMdaHeaderSize;
  if (r.offset < kMdaHeaderSize || r.offset >= area.size_bytes || r.size > capacity) {
    return Status::Error(
        EINVAL, fmt::format("{}: metadata text location {}+{} out of the area", name, r.offset, r.size));
  }
  const uint64_t first = std::min(r.size, area.size_bytes - r.offset);
  std::string text(r.size, '\0');
  auto* p = reinterpret_cast<uint8_t*>(text.data());
  COWSNAP_RETURN_IF_ERROR(
      dev.read(area.offset_bytes + r.offset, std::span<uint8_t>(p, first)).with_context(name));
  if (first < r.size) {  // wrapped: the rest follows the header
    COWSNAP_RETURN_IF_ERROR(
        dev.read(area.offset_bytes + kMdaHeaderSize, std::span<uint8_t>(p + first, r.size - first))
            .with_context(name));
  }
  if (lvm_crc32(as_bytes(text)) != r.checksum) {
    return Status::Error(EINVAL, fmt::format("{}: metadata text checksum mismatch", name));
  }
  while (!text.empty() && text.back() == '\0') text.pop_back();
  out.text = std::move(text);
  return out;
}

Result<RawLocn> next_text_location(const MdaHeader& current, uint64_t text_bytes, std::string_view name) {
  const uint64_t capacity = current.size - kMdaHeaderSize;
  RawLocn next;
  next.size = text_bytes;
  uint64_t room = capacity;
  if (!current.raw_locns.empty() && current.raw_locns.front().size != 0) {
    const RawLocn& cur = current.raw_locns.front();
    next.offset = align_up(cur.offset + cur.size, kLvmSector);
    if (next.offset >= current.size) next.offset = kMdaHeaderSize + (next.offset - current.size);
    if (next.offset >= current.size) next.offset = kMdaHeaderSize;
    // Free bytes from the new start forward (circularly) to the current text.
    room = (cur.offset + capacity - next.offset) % capacity;
    if (room == 0) room = capacity - cur.size;
  } else {
    next.offset = kMdaHeaderSize;
  }
  if (text_bytes > room) {
    return Status::Error(ENOSPC, fmt::format("{}: metadata of {} bytes does not fit in the metadata "
                                             "area ({} bytes free of {})",
                                             name, text_bytes, room, capacity));
  }
  return next;
}

Result<MdaHeader> write_metadata_text(BlockDevice& dev, const MdaHeader& current, std::string_view text,
                                      std::string_view name) {
  std::string buf(text);
  buf.push_back('\0');  // lvm2 stores and checksums the terminating NUL
  COWSNAP_ASSIGN_OR_RETURN(RawLocn locn, next_text_location(current, buf.size(), name));
  locn.checksum = lvm_crc32(as_bytes(buf));
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  const uint64_t first = std::min<uint64_t>(buf.size(), current.size - locn.offset);
  COWSNAP_RETURN_IF_ERROR(
      dev.write(current.start + locn.offset, std::span<const uint8_t>(p, first)).with_context(name));
  if (first < buf.size()) {
    COWSNAP_RETURN_IF_ERROR(
        dev.write(current.start + kMdaHeaderSize, std::span<const uint8_t>(p + first, buf.size() - first))
            .with_context(name));
  }
  COWSNAP_RETURN_IF_ERROR(dev.flush().with_context(name));
  MdaHeader next = current;
  next.raw_locns = {locn};
  return next;
}

Status write_mda_header(BlockDevice& dev, const MdaHeader& header, std::string_view name) {
  const auto sector = encode_mda_header(header);
  COWSNAP_RETURN_IF_ERROR(dev.write(header.start, sector).with_context(name));
  return dev.flush().with_context(name);
}

Status commit_metadata_text(BlockDevice& dev, const MdaHeader& current, std::string_view text,
                            std::string_view name) {
  COWSNAP_ASSIGN_OR_RETURN(MdaHeader next, write_metadata_text(dev, current, text, name));
  return write_mda_header(dev, next, name);
}

}  // namespace cowsnap::vg
