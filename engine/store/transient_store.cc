// The transient exception store ("N"): allocation from chunk 0, no header
// and no metadata on the device; exceptions live only in the snapshot's
// table and are lost at shutdown by design. Committing only makes the data
// chunks durable, one device flush per batch of concurrent commits.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "cowsnap/store/exception_store.h"
#include "group_commit.h"
#include "store_base.h"

namespace cowsnap {
namespace {

class TransientStore final : public StoreBase {
 public:
  TransientStore(std::shared_ptr<BlockDevice> cow, ChunkGeometry geometry)
      : StoreBase(std::move(cow), geometry, true, 0) {}

  [[nodiscard]] std::string_view type_code() const override { return "N"; }

  Status commit_exceptions(std::span<const NewException> exceptions) override {
    if (std::all_of(exceptions.begin(), exceptions.end(),
                    [](const NewException& e) { return e.data_durable; })) {
      return valid() ? Status::Ok() : invalid_error();
    }
    static constexpr int kFlushRequest = 0;
    return flushes_.commit(std::span(&kFlushRequest, 1), [this](std::span<const int> /*batch*/) -> Status {
      if (!valid()) return invalid_error();
      if (Status s = cow_->flush(); !s.ok()) {
        mark_invalid();
        return Status::Error(EIO, fmt::format("{}: cannot flush exception data, transient snapshot store "
                                              "invalidated: {}",
                                              cow_->describe(), s.message()));
      }
      return Status::Ok();
    });
  }

  // Nothing on the device records validity; the snapshot is gone at
  // shutdown anyway.
  Status invalidate() override {
    mark_invalid();
    return Status::Ok();
  }

  [[nodiscard]] StoreUsage usage() const override {
    std::lock_guard lock(mu_);
    return StoreUsage{.total_sectors = total_sectors_,
                      .allocated_sectors = chunks_in_use() * geometry_.chunk_sectors(),
                      .metadata_sectors = 0};
  }

 private:
  [[nodiscard]] uint64_t next_after(uint64_t chunk) const override { return chunk + 1; }

  [[nodiscard]] Status full_error() const override {
    return Status::Error(ENOSPC, fmt::format("{}: transient snapshot store is full ({} chunks of {} sectors)",
                                             cow_->describe(), next_free_, geometry_.chunk_sectors()));
  }

  [[nodiscard]] Status invalid_error() const override {
    return Status::Error(EIO, fmt::format("{}: transient snapshot store is invalid", cow_->describe()));
  }

  GroupCommit<int> flushes_;  // items carry nothing: a batch is one flush
};

}  // namespace

Result<std::unique_ptr<ExceptionStore>> create_transient_store(std::shared_ptr<BlockDevice> cow,
                                                               uint32_t chunk_sectors) {
  if (Status s = validate_chunk_sectors(chunk_sectors); !s.ok()) return s.with_context(cow->describe());
  const ChunkGeometry geometry(chunk_sectors);
  if (geometry.chunks_in(cow->size_bytes()) < 1) {
    return Status::Error(EINVAL, fmt::format("{}: device of {} bytes is too small for one {}-byte chunk",
                                             cow->describe(), cow->size_bytes(), geometry.chunk_bytes()));
  }
  return std::unique_ptr<ExceptionStore>(std::make_unique<TransientStore>(std::move(cow), geometry));
}

}  // namespace cowsnap
