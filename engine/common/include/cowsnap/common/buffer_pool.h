// BufferPool: keeps freed byte buffers for reuse, by exact size, so long
// as the buffers it keeps and those it has lent out stay within a cap. A
// request for a size it does not keep, with no room left under the cap,
// frees every kept buffer and gives the memory back to the system.
//
// Why: write-back buffers are allocated by request threads and freed by the
// committer. Through malloc, each request thread's arena grows to its own
// peak and keeps freed memory there, so the process's resident memory ends
// well above what is in use at any moment. Buffers that come back to one
// pool are handed out again instead: memory from the system stays near the
// peak in use.
//
// PoolAllocator<T> lets std::allocate_shared(_for_overwrite) take a
// buffer and its control block from the pool in one allocation.
// Thread safety: every call may come from any thread. A PoolAllocator
// keeps its pool alive, so buffers may outlive the pool's first owner.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace cowsnap {

class BufferPool {
 public:
  // Keeps freed buffers while kept + lent bytes <= max_bytes.
  explicit BufferPool(size_t max_bytes) : max_kept_(max_bytes) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool();

  // `bytes` bytes aligned for any scalar type; throws std::bad_alloc.
  void* get(size_t bytes);
  // Gives back a buffer get(bytes) returned.
  void put(void* buffer, size_t bytes) noexcept;
  [[nodiscard]] size_t kept_bytes() const;

 private:
  const size_t max_kept_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> kept_;  // guarded by mu_
  size_t kept_bytes_ = 0;                                // guarded by mu_
  size_t lent_bytes_ = 0;                                // handed out, not yet back; guarded by mu_
};

template <typename T>
class PoolAllocator {
 public:
  using value_type = T;
  explicit PoolAllocator(std::shared_ptr<BufferPool> pool) : pool_(std::move(pool)) {}
  template <typename U>
  PoolAllocator(const PoolAllocator<U>& other) noexcept : pool_(other.pool()) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    static_assert(alignof(T) <= alignof(std::max_align_t));
    return static_cast<T*>(pool_->get(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { pool_->put(p, n * sizeof(T)); }
  [[nodiscard]] const std::shared_ptr<BufferPool>& pool() const { return pool_; }
  template <typename U>
  bool operator==(const PoolAllocator<U>& other) const {
    return pool_ == other.pool();
  }

 private:
  std::shared_ptr<BufferPool> pool_;
};

}  // namespace cowsnap
