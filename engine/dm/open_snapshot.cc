#include <fmt/format.h>

#include <cerrno>

#include "cowsnap/snapshot.h"

namespace cowsnap {

Result<std::shared_ptr<SnapshotTarget>> open_snapshot(const std::shared_ptr<Origin>& origin,
                                                      const SnapshotSpec& spec) {
  ExceptionTable table;
  std::unique_ptr<ExceptionStore> store;
  if (spec.store_type == 'N') {
    COWSNAP_ASSIGN_OR_RETURN(store, create_transient_store(spec.cow, spec.chunk_sectors));
  } else if (spec.store_type != 'P') {
    return Status::Error(EINVAL, fmt::format("{}: unknown exception store type '{}' (P or N)", spec.cow_name,
                                             spec.store_type));
  } else if (spec.create) {
    COWSNAP_ASSIGN_OR_RETURN(store, create_persistent_store(spec.cow, spec.chunk_sectors));
  } else {
    Status duplicate;
    COWSNAP_ASSIGN_OR_RETURN(store, open_persistent_store(spec.cow, spec.chunk_sectors,
                                                          [&](ChunkIndex old_chunk, ChunkIndex cow_chunk) {
                                                            if (table.lookup(old_chunk)) {
                                                              if (duplicate.ok()) {
                                                                duplicate = Status::Error(
                                                                    EINVAL, fmt::format("{}: corrupt store: two "
                                                                                        "exceptions for chunk {}",
                                                                                        spec.cow_name,
                                                                                        old_chunk.value));
                                                              }
                                                              return;
                                                            }
                                                            table.insert(old_chunk, cow_chunk);
                                                          }));
    COWSNAP_RETURN_IF_ERROR(duplicate);
  }
  return origin->attach_snapshot(std::move(store), std::move(table), spec.cow_name);
}

}  // namespace cowsnap
