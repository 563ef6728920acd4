// What every store answers unless it can merge (only the persistent one can,
// as in the kernel, whose transient store has no merge methods), and the
// check every growth makes.
#include "cowsnap/store/exception_store.h"

#include <fmt/format.h>

#include <cerrno>

namespace cowsnap {

Result<ExceptionStore::MergeRun> ExceptionStore::prepare_merge(uint64_t /*max_chunks*/) {
  return Status::Error(ENOTSUP, fmt::format("{}: a snapshot store of type {} cannot be merged (only a "
                                            "persistent one, P, can)",
                                            cow_device().describe(), type_code()));
}

Status ExceptionStore::commit_merge(uint64_t /*chunks*/) { return prepare_merge(0).status(); }

Status ExceptionStore::prepare_growth(BlockDevice& grown) {
  BlockDevice& cow = cow_device();
  if (grown.size_bytes() <= cow.size_bytes()) {
    return Status::Error(EINVAL, fmt::format("{}: cannot grow the snapshot store from {} to {} bytes",
                                             cow.describe(), cow.size_bytes(), grown.size_bytes()));
  }
  return Status::Ok();
}

}  // namespace cowsnap
