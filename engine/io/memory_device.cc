#include <algorithm>
#include <cstring>

#include "cowsnap/io/devices.h"

namespace cowsnap {

MemoryDevice::MemoryDevice(uint64_t size_bytes, std::string name)
    : size_bytes_(size_bytes),
      name_(std::move(name)),
      pages_(static_cast<size_t>((size_bytes + kPageBytes - 1) / kPageBytes)) {}

namespace {

// Calls fn(page_index, offset_in_page, n, done) for each page-sized piece
// of [offset, offset + length), in order; `done` counts the bytes before it.
template <typename Fn>
void for_each_page_piece(uint64_t offset, uint64_t length, uint64_t page_bytes, Fn&& fn) {
  uint64_t done = 0;
  while (done < length) {
    const uint64_t pos = offset + done;
    const uint64_t in_page = pos % page_bytes;
    const uint64_t n = std::min<uint64_t>(page_bytes - in_page, length - done);
    fn(static_cast<size_t>(pos / page_bytes), in_page, n, done);
    done += n;
  }
}

}  // namespace

Status MemoryDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  std::lock_guard lock(mu_);
  for_each_page_piece(offset, buf.size(), kPageBytes,
                      [&](size_t index, uint64_t in_page, uint64_t n, uint64_t done) {
                        uint8_t* dst = buf.data() + done;
                        const auto& page = pages_[index];
                        if (page) {
                          std::memcpy(dst, page.get() + in_page, n);
                        } else {
                          std::memset(dst, 0, n);
                        }
                      });
  return Status::Ok();
}

Status MemoryDevice::extents(uint64_t offset, uint64_t length, ExtentMap& out) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  std::lock_guard lock(mu_);
  for_each_page_piece(offset, length, kPageBytes, [&](size_t index, uint64_t, uint64_t n, uint64_t) {
    out.add(n, pages_[index] == nullptr);
  });
  return Status::Ok();
}

Status MemoryDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  std::lock_guard lock(mu_);
  for_each_page_piece(offset, buf.size(), kPageBytes,
                      [&](size_t index, uint64_t in_page, uint64_t n, uint64_t done) {
                        auto& page = pages_[index];
                        // Value-initialized, so a fresh page holds zeroes outside the write.
                        if (!page) page = std::make_unique<uint8_t[]>(kPageBytes);
                        std::memcpy(page.get() + in_page, buf.data() + done, n);
                      });
  return Status::Ok();
}

Status MemoryDevice::write_zeroes(uint64_t offset, uint64_t length) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  std::lock_guard lock(mu_);
  for_each_page_piece(offset, length, kPageBytes,
                      [&](size_t index, uint64_t in_page, uint64_t n, uint64_t done) {
                        auto& page = pages_[index];
                        // A page covered from its start to its end (or the device's end) is freed.
                        if (in_page == 0 && (n == kPageBytes || offset + done + n == size_bytes_)) {
                          page.reset();
                        } else if (page) {
                          std::memset(page.get() + in_page, 0, n);
                        }
                      });
  return Status::Ok();
}

}  // namespace cowsnap
