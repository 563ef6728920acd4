// The stateless targets: linear, zero and error.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cowsnap/dm/mapped_device.h"

namespace cowsnap {
namespace {

class LinearTarget final : public Target {
 public:
  LinearTarget(std::shared_ptr<BlockDevice> device, std::string device_name, uint64_t offset_sectors,
               uint64_t length_sectors)
      : device_(std::move(device)),
        device_name_(std::move(device_name)),
        offset_sectors_(offset_sectors),
        length_bytes_(length_sectors * kSectorBytes) {}

  [[nodiscard]] uint64_t size_bytes() const override { return length_bytes_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
    return device_->read(base() + offset, buf);
  }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
    return device_->write(base() + offset, buf);
  }
  Status flush() override { return device_->flush(); }
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, gather_bytes(pieces)));
    return device_->write_gather_durable(base() + offset, pieces);
  }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
    return device_->write_zeroes(base() + offset, length);
  }
  Status discard(uint64_t offset, uint64_t length) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
    return device_->discard(base() + offset, length);
  }
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
    return device_->extents(base() + offset, length, out);
  }
  [[nodiscard]] std::string_view type_name() const override { return "linear"; }
  [[nodiscard]] std::string table_params() const override {
    return fmt::format("{} {}", device_name_, offset_sectors_);
  }

 private:
  [[nodiscard]] uint64_t base() const { return offset_sectors_ * kSectorBytes; }
  std::shared_ptr<BlockDevice> device_;
  std::string device_name_;
  uint64_t offset_sectors_;
  uint64_t length_bytes_;
};

class ZeroTarget final : public Target {
 public:
  explicit ZeroTarget(uint64_t length_sectors) : length_bytes_(length_sectors * kSectorBytes) {}
  [[nodiscard]] uint64_t size_bytes() const override { return length_bytes_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
    std::fill(buf.begin(), buf.end(), uint8_t{0});
    return Status::Ok();
  }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    return check_range(*this, offset, buf.size());
  }
  Status flush() override { return Status::Ok(); }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    return check_range(*this, offset, length);
  }
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override {
    COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
    out.add(length, true);
    return Status::Ok();
  }
  [[nodiscard]] std::string_view type_name() const override { return "zero"; }
  [[nodiscard]] std::string table_params() const override { return {}; }

 private:
  uint64_t length_bytes_;
};

class ErrorTarget final : public Target {
 public:
  explicit ErrorTarget(uint64_t length_sectors) : length_bytes_(length_sectors * kSectorBytes) {}
  [[nodiscard]] uint64_t size_bytes() const override { return length_bytes_; }
  Status read(uint64_t, std::span<uint8_t>) override { return fail(); }
  Status write(uint64_t, std::span<const uint8_t>) override { return fail(); }
  Status flush() override { return fail(); }
  Status write_zeroes(uint64_t, uint64_t) override { return fail(); }
  Status discard(uint64_t, uint64_t) override { return fail(); }
  [[nodiscard]] std::string_view type_name() const override { return "error"; }
  [[nodiscard]] std::string table_params() const override { return {}; }

 private:
  static Status fail() { return Status::Error(EIO, "error target: I/O fails by design"); }
  uint64_t length_bytes_;
};

}  // namespace

std::shared_ptr<Target> make_linear_target(std::shared_ptr<BlockDevice> device, std::string device_name,
                                           uint64_t offset_sectors, uint64_t length_sectors) {
  return std::make_shared<LinearTarget>(std::move(device), std::move(device_name), offset_sectors,
                                        length_sectors);
}

std::shared_ptr<Target> make_zero_target(uint64_t length_sectors) {
  return std::make_shared<ZeroTarget>(length_sectors);
}

std::shared_ptr<Target> make_error_target(uint64_t length_sectors) {
  return std::make_shared<ErrorTarget>(length_sectors);
}

}  // namespace cowsnap
