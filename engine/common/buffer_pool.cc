// BufferPool (buffer_pool.h).
#include "cowsnap/common/buffer_pool.h"

namespace cowsnap {

BufferPool::~BufferPool() {
  for (auto& [bytes, buffers] : kept_) {
    for (void* b : buffers) ::operator delete(b);
  }
}

void* BufferPool::get(size_t bytes) {
  std::vector<void*> evicted;
  {
    std::lock_guard lock(mu_);
    auto it = kept_.find(bytes);
    if (it != kept_.end() && !it->second.empty()) {
      void* b = it->second.back();
      it->second.pop_back();
      kept_bytes_ -= bytes;
      lent_bytes_ += bytes;
      return b;
    }
    // Kept buffers of other sizes make room (a workload's sizes change).
    for (auto k = kept_.begin(); k != kept_.end() && kept_bytes_ + lent_bytes_ + bytes > max_kept_; ++k) {
      while (!k->second.empty() && kept_bytes_ + lent_bytes_ + bytes > max_kept_) {
        evicted.push_back(k->second.back());
        k->second.pop_back();
        kept_bytes_ -= k->first;
      }
    }
    lent_bytes_ += bytes;
  }
  for (void* b : evicted) ::operator delete(b);
  try {
    return ::operator new(bytes);
  } catch (...) {
    std::lock_guard lock(mu_);
    lent_bytes_ -= bytes;
    throw;
  }
}

void BufferPool::put(void* buffer, size_t bytes) noexcept {
  if (buffer == nullptr) return;
  {
    std::lock_guard lock(mu_);
    lent_bytes_ -= bytes;
    if (kept_bytes_ + lent_bytes_ + bytes <= max_kept_) {
      try {
        kept_[bytes].push_back(buffer);
        kept_bytes_ += bytes;
        return;
      } catch (...) {  // NOLINT(bugprone-empty-catch): no room to keep it: free it below
      }
    }
  }
  ::operator delete(buffer);
}

size_t BufferPool::kept_bytes() const {
  std::lock_guard lock(mu_);
  return kept_bytes_;
}

}  // namespace cowsnap
