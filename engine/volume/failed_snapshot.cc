#include "failed_snapshot.h"

#include <fmt/format.h>

#include <cerrno>

namespace cowsnap {
namespace {

class FailedSnapshotTarget final : public Target {
 public:
  FailedSnapshotTarget(uint64_t size_bytes, const std::string& what, const Status& why)
      : size_bytes_(size_bytes),
        error_(Status::Error(EIO, fmt::format("snapshot {} is not active: {}", what, why.message()))) {}

  [[nodiscard]] uint64_t size_bytes() const override { return size_bytes_; }
  Status read(uint64_t, std::span<uint8_t>) override { return error_; }
  Status write(uint64_t, std::span<const uint8_t>) override { return error_; }
  Status flush() override { return error_; }
  Status write_zeroes(uint64_t, uint64_t) override { return error_; }
  Status discard(uint64_t, uint64_t) override { return error_; }
  // No table is loaded: `dmsetup table` shows the device with nothing.
  [[nodiscard]] std::string_view type_name() const override { return ""; }
  [[nodiscard]] std::string table_params() const override { return {}; }
  [[nodiscard]] std::string describe() const override { return error_.message(); }

 private:
  const uint64_t size_bytes_;
  const Status error_;
};

}  // namespace

std::shared_ptr<Target> make_failed_snapshot_target(uint64_t size_bytes, const std::string& what,
                                                    const Status& why) {
  return std::make_shared<FailedSnapshotTarget>(size_bytes, what, why);
}

}  // namespace cowsnap
