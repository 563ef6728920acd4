// The transient exception store ("N"): allocation from chunk 0, no header
// and no metadata on the device; exceptions live only in the snapshot's
// table and are lost at shutdown by design. Committing only makes the data
// chunks durable, one device flush per batch of concurrent commits.
#include <fmt/format.h>

#include <cerrno>
#include <mutex>

#include "cowsnap/exception_store.h"
#include "group_commit.h"

namespace cowsnap {
namespace {

class TransientStore final : public ExceptionStore {
 public:
  TransientStore(std::shared_ptr<BlockDevice> cow, ChunkGeometry geometry)
      : cow_(std::move(cow)), geometry_(geometry), total_sectors_(cow_->size_bytes() / kSectorBytes) {}

  [[nodiscard]] std::string_view type_code() const override { return "N"; }
  [[nodiscard]] const ChunkGeometry& geometry() const override { return geometry_; }
  [[nodiscard]] BlockDevice& cow_device() override { return *cow_; }

  [[nodiscard]] bool valid() const override {
    std::lock_guard lock(mu_);
    return valid_;
  }

  Result<ChunkIndex> prepare_exception() override {
    std::lock_guard lock(mu_);
    if (!valid_) return invalid_error();
    if ((next_free_ + 1) * geometry_.chunk_sectors() > total_sectors_) {
      valid_ = false;  // an overflowed store is invalid
      return Status::Error(ENOSPC,
                           fmt::format("{}: transient snapshot store is full ({} chunks of {} sectors)",
                                       cow_->describe(), next_free_, geometry_.chunk_sectors()));
    }
    return ChunkIndex{next_free_++};
  }

  Status commit_exception(ChunkIndex old_chunk, ChunkIndex cow_chunk) override {
    const NewException one{old_chunk, cow_chunk};
    return commit_exceptions(std::span(&one, 1));
  }

  Status commit_exceptions(std::span<const NewException> /*exceptions*/) override {
    static constexpr int kFlushRequest = 0;
    return flushes_.commit(std::span(&kFlushRequest, 1), [this](std::span<const int> /*batch*/) -> Status {
      if (!valid()) return invalid_error();
      if (Status s = cow_->flush(); !s.ok()) {
        {
          std::lock_guard lock(mu_);
          valid_ = false;
        }
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
    std::lock_guard lock(mu_);
    valid_ = false;
    return Status::Ok();
  }

  [[nodiscard]] StoreUsage usage() const override {
    std::lock_guard lock(mu_);
    return StoreUsage{.total_sectors = total_sectors_,
                      .allocated_sectors = next_free_ * geometry_.chunk_sectors(),
                      .metadata_sectors = 0};
  }

 private:
  Status invalid_error() const {
    return Status::Error(EIO, fmt::format("{}: transient snapshot store is invalid", cow_->describe()));
  }

  const std::shared_ptr<BlockDevice> cow_;
  const ChunkGeometry geometry_;
  const uint64_t total_sectors_;

  mutable std::mutex mu_;
  bool valid_ = true;       // guarded by mu_
  uint64_t next_free_ = 0;  // guarded by mu_

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
