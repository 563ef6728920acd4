// BufferPool: freed buffers come back by size, within the cap, and
// allocate_shared through PoolAllocator returns its memory to the pool.
#include <catch2/catch.hpp>

#include <memory>

#include "cowsnap/common/buffer_pool.h"

using namespace cowsnap;

TEST_CASE("buffer pool: a freed buffer is handed out again for the same size only", "[buffer-pool]") {
  BufferPool pool(1 << 20);
  void* a = pool.get(4096);
  pool.put(a, 4096);
  CHECK(pool.kept_bytes() == 4096);
  void* other = pool.get(8192);
  CHECK(other != a);
  CHECK(pool.get(4096) == a);
  CHECK(pool.kept_bytes() == 0);
  pool.put(a, 4096);
  pool.put(other, 8192);
  CHECK(pool.kept_bytes() == 4096 + 8192);
}

TEST_CASE("buffer pool: what it keeps and lends stays within its cap", "[buffer-pool]") {
  BufferPool pool(8192);
  void* a = pool.get(4096);
  void* b = pool.get(4096);
  void* c = pool.get(4096);
  pool.put(a, 4096);  // 4K kept + 8K lent: over the cap, freed
  CHECK(pool.kept_bytes() == 0);
  pool.put(b, 4096);
  pool.put(c, 4096);
  CHECK(pool.kept_bytes() == 8192);
  // Another size: the kept buffers make room for it.
  void* d = pool.get(8192);
  CHECK(pool.kept_bytes() == 0);
  pool.put(d, 8192);
  CHECK(pool.kept_bytes() == 8192);
  void* e = pool.get(2048);
  CHECK(pool.kept_bytes() == 0);
  pool.put(e, 2048);
  CHECK(pool.kept_bytes() == 2048);
}

TEST_CASE("buffer pool: shared buffers from allocate_shared come back when the last owner goes",
          "[buffer-pool]") {
  auto pool = std::make_shared<BufferPool>(1 << 20);
  const uint8_t* first = nullptr;
  {
    auto buf = std::allocate_shared_for_overwrite<uint8_t[]>(PoolAllocator<uint8_t>(pool), 4096);
    buf[4095] = 7;
    first = buf.get();
    std::shared_ptr<const uint8_t[]> reader = buf;
    buf.reset();
    CHECK(pool->kept_bytes() == 0);  // the reader still holds it
  }
  CHECK(pool->kept_bytes() > 4096);
  auto again = std::allocate_shared_for_overwrite<uint8_t[]>(PoolAllocator<uint8_t>(pool), 4096);
  CHECK(again.get() == first);
  CHECK(pool->kept_bytes() == 0);
}
