#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <utility>
#include <vector>

#include "cowsnap/dm/snapshot.h"

namespace cowsnap {
namespace {

Result<bool> header_is_zeroed(BlockDevice& cow) {
  std::array<uint8_t, 16> header{};
  if (cow.size_bytes() < header.size()) return false;
  COWSNAP_RETURN_IF_ERROR(cow.read(0, header));
  return std::all_of(header.begin(), header.end(), [](uint8_t b) { return b == 0; });
}

// Loads the store's exceptions into `table`. Of two entries for one origin
// chunk the first on disk wins: the kernel keeps each hash bucket sorted by
// origin chunk, inserts an equal one behind the one already there, and its
// lookup returns the first match.
Result<std::unique_ptr<ExceptionStore>> load_persistent_store(const SnapshotSpec& spec, uint64_t origin_bytes,
                                                              ExceptionTable& table) {
  std::vector<std::pair<ChunkIndex, ChunkIndex>> found;
  COWSNAP_ASSIGN_OR_RETURN(auto store, open_persistent_store(spec.cow, spec.chunk_sectors, origin_bytes,
                                                             [&](ChunkIndex old_chunk, ChunkIndex cow_chunk) {
                                                               found.emplace_back(old_chunk, cow_chunk);
                                                             }));
  const auto by_origin_chunk = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::stable_sort(found.begin(), found.end(), by_origin_chunk);
  const auto same_origin_chunk = [](const auto& a, const auto& b) { return a.first == b.first; };
  found.erase(std::unique(found.begin(), found.end(), same_origin_chunk), found.end());
  table.insert_batch(std::move(found));
  return store;
}

}  // namespace

Result<std::shared_ptr<SnapshotTarget>> open_snapshot(const std::shared_ptr<Origin>& origin,
                                                      const SnapshotSpec& spec,
                                                      std::unique_lock<std::shared_mutex>* held) {
  ExceptionTable table;
  std::unique_ptr<ExceptionStore> store;
  if (spec.store_type == 'N') {
    COWSNAP_ASSIGN_OR_RETURN(store, create_transient_store(spec.cow, spec.chunk_sectors));
  } else if (spec.store_type != 'P') {
    return Status::Error(EINVAL, fmt::format("{}: unknown exception store type '{}' (P or N)", spec.cow_name,
                                             spec.store_type));
  } else {
    COWSNAP_ASSIGN_OR_RETURN(bool zeroed, header_is_zeroed(*spec.cow));
    if (spec.create || zeroed) {
      COWSNAP_ASSIGN_OR_RETURN(store, create_persistent_store(spec.cow, spec.chunk_sectors));
    } else {
      COWSNAP_ASSIGN_OR_RETURN(store, load_persistent_store(spec, origin->size_bytes(), table));
    }
  }
  return origin->attach_snapshot(std::move(store), std::move(table), spec.cow_name, held);
}

}  // namespace cowsnap
