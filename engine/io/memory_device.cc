#include <algorithm>
#include <cstring>

#include "cowsnap/io.h"

namespace cowsnap {

MemoryDevice::MemoryDevice(uint64_t size_bytes, std::string name)
    : size_bytes_(size_bytes),
      name_(std::move(name)),
      pages_(static_cast<size_t>((size_bytes + kPageBytes - 1) / kPageBytes)) {}

Status MemoryDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  std::lock_guard lock(mu_);
  uint64_t done = 0;
  while (done < buf.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_page = pos % kPageBytes;
    const uint64_t n = std::min<uint64_t>(kPageBytes - in_page, buf.size() - done);
    uint8_t* dst = buf.data() + done;
    const auto& page = pages_[pos / kPageBytes];
    if (page) {
      std::memcpy(dst, page.get() + in_page, n);
    } else {
      std::memset(dst, 0, n);
    }
    done += n;
  }
  return Status::Ok();
}

Status MemoryDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  std::lock_guard lock(mu_);
  uint64_t done = 0;
  while (done < buf.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_page = pos % kPageBytes;
    const uint64_t n = std::min<uint64_t>(kPageBytes - in_page, buf.size() - done);
    auto& page = pages_[pos / kPageBytes];
    // Value-initialized, so a fresh page holds zeroes outside the write.
    if (!page) page = std::make_unique<uint8_t[]>(kPageBytes);
    std::memcpy(page.get() + in_page, buf.data() + done, n);
    done += n;
  }
  return Status::Ok();
}

Status MemoryDevice::write_zeroes(uint64_t offset, uint64_t length) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  std::lock_guard lock(mu_);
  uint64_t done = 0;
  while (done < length) {
    const uint64_t pos = offset + done;
    const uint64_t in_page = pos % kPageBytes;
    const uint64_t n = std::min<uint64_t>(kPageBytes - in_page, length - done);
    auto& page = pages_[pos / kPageBytes];
    // A page covered from its start to its end (or the device's end) is freed.
    if (in_page == 0 && (n == kPageBytes || pos + n == size_bytes_)) {
      page.reset();
    } else if (page) {
      std::memset(page.get() + in_page, 0, n);
    }
    done += n;
  }
  return Status::Ok();
}

}  // namespace cowsnap
