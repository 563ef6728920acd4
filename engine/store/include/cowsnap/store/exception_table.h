// ExceptionTable: the snapshot's in-memory map from origin chunk to COW
// chunk, kept compact. Runs of consecutive chunks (old and cow both
// consecutive, the common case for sequential writes) are stored as one
// entry; random exceptions cost at most 24 bytes each on average.
//
// Thread safety: none; the owner serialises access (SnapshotTarget guards
// it with a shared_mutex: lookups shared, inserts exclusive).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "cowsnap/common/chunk.h"

namespace cowsnap {

class ExceptionTable {
 public:
  ExceptionTable();
  ~ExceptionTable();
  ExceptionTable(ExceptionTable&&) noexcept;
  ExceptionTable& operator=(ExceptionTable&&) noexcept;

  [[nodiscard]] std::optional<ChunkIndex> lookup(ChunkIndex old_chunk) const;
  // REQUIRES: old_chunk has no exception yet. (If it has one, the call
  // changes nothing: the first mapping stays.)
  void insert(ChunkIndex old_chunk, ChunkIndex cow_chunk);
  // insert() for each pair, sorted first: several times faster for many
  // exceptions in random order (e.g. everything a store's open reports),
  // at the cost of the vector it takes.
  void insert_batch(std::vector<std::pair<ChunkIndex, ChunkIndex>> exceptions);
  // Number of exceptions (chunks), not entries.
  [[nodiscard]] uint64_t size() const;
  // Heap bytes held by the table, including container overhead.
  [[nodiscard]] size_t memory_bytes() const;
  // Visits every exception in ascending old_chunk order.
  void for_each(const std::function<void(ChunkIndex old_chunk, ChunkIndex cow_chunk)>& fn) const;
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cowsnap
