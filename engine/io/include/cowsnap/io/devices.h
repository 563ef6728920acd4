// The concrete block devices: files, memory, slices of other devices, and
// wrappers (in LevelDB's EnvWrapper manner) that count or inject faults.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/block_device.h"

namespace cowsnap {

// A PV's device by its name: "rbd:POOL/IMAGE" is an RBD image
// (cowsnap/io/rbd.h), anything else a file or block device path.
struct DeviceOpenOptions {
  bool read_only = false;
  // Create what is missing with this size (a sparse file, an image);
  // 0 means a missing device is an error (ENOENT naming it).
  uint64_t create_size_bytes = 0;
};
Result<std::shared_ptr<BlockDevice>> open_device(const std::string& name, DeviceOpenOptions options);
// Whether the named device exists; an error only when that cannot be told
// (an unreachable cluster, a missing pool).
Result<bool> device_exists(const std::string& name);

// A regular file or a block device, through pread/pwrite; flush() is
// fdatasync(). write_zeroes/discard punch holes in regular files
// (fallocate PUNCH_HOLE|KEEP_SIZE, falling back to writing zeroes). On block
// devices write_zeroes is BLKZEROOUT and discard is a punched hole (a zeroing
// that may unmap) rather than BLKDISCARD, which does not promise zeroes;
// both fall back to writing zeroes. Every error message names the path.
// Thread-safe: pread/pwrite on one descriptor, no other state changes.
class FileDevice final : public BlockDevice {
 public:
  struct Options {
    bool read_only = false;
    // When the file does not exist, create it sparse with this size;
    // 0 means a missing file is an error (ENOENT naming the path).
    uint64_t create_size_bytes = 0;
  };
  static Result<std::shared_ptr<FileDevice>> open(const std::string& path, Options options);
  static Result<std::shared_ptr<FileDevice>> open(const std::string& path) { return open(path, Options{}); }
  ~FileDevice() override;

  [[nodiscard]] uint64_t size_bytes() const override { return size_bytes_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status flush() override;
  // pwritev2(RWF_DSYNC), up to IOV_MAX pieces a call; where the kernel or
  // file system refuses the flag, writes then flush().
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override;
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  Status discard(uint64_t offset, uint64_t length) override;
  // A regular file's holes (SEEK_HOLE/SEEK_DATA) are zero runs; a block
  // device reports data.
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override;
  [[nodiscard]] std::string describe() const override { return "file " + path_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool is_block_device() const { return is_block_device_; }

  FileDevice(std::string path, int fd, uint64_t size_bytes, bool read_only, bool is_block_device);

 private:
  std::string path_;
  int fd_;
  uint64_t size_bytes_;
  bool read_only_;
  bool is_block_device_;

  std::mutex flush_mu_;
  std::condition_variable flush_done_;
  uint64_t syncs_started_ = 0;   // guarded by flush_mu_
  uint64_t syncs_finished_ = 0;  // guarded by flush_mu_; the newest finished sync's number
  bool sync_running_ = false;    // guarded by flush_mu_
  Status last_sync_status_;      // guarded by flush_mu_; the newest finished sync's result
};

// Bytes in memory, zero-filled at start. Reads of never-written pages cost
// no memory: storage is allocated in 64 KiB pages on first write.
class MemoryDevice final : public BlockDevice {
 public:
  explicit MemoryDevice(uint64_t size_bytes, std::string name = "memory");
  [[nodiscard]] uint64_t size_bytes() const override { return size_bytes_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status flush() override { return Status::Ok(); }
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  // Pages never written (or zeroed whole) are zero runs.
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override;
  [[nodiscard]] std::string describe() const override { return name_; }

 private:
  static constexpr uint64_t kPageBytes = uint64_t{64} * 1024;
  uint64_t size_bytes_;
  std::string name_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<uint8_t[]>> pages_;  // guarded by mu_; null = zeroes
};

// A window [offset, offset + length) of another device, seen from 0.
class SliceDevice final : public BlockDevice {
 public:
  // REQUIRES: offset + length <= base->size_bytes().
  SliceDevice(std::shared_ptr<BlockDevice> base, uint64_t offset, uint64_t length);
  [[nodiscard]] uint64_t size_bytes() const override { return length_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status flush() override { return base_->flush(); }
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override;
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  Status discard(uint64_t offset, uint64_t length) override;
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] const std::shared_ptr<BlockDevice>& base() const { return base_; }
  [[nodiscard]] uint64_t base_offset() const { return offset_; }

 private:
  std::shared_ptr<BlockDevice> base_;
  uint64_t offset_;
  uint64_t length_;
};

// Forwards every call to a wrapped device; decorators override only what
// they change. write_gather_durable is not forwarded: it is this wrapper's
// own write()s then flush(), so a decorator that watches writes sees it; a
// decorator that can pass it on unchanged says so by overriding it.
class DeviceWrapper : public BlockDevice {
 public:
  explicit DeviceWrapper(std::shared_ptr<BlockDevice> target) : target_(std::move(target)) {}
  [[nodiscard]] uint64_t size_bytes() const override { return target_->size_bytes(); }
  Status read(uint64_t offset, std::span<uint8_t> buf) override { return target_->read(offset, buf); }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override { return target_->write(offset, buf); }
  Status flush() override { return target_->flush(); }
  Status write_zeroes(uint64_t offset, uint64_t length) override {
    return target_->write_zeroes(offset, length);
  }
  Status discard(uint64_t offset, uint64_t length) override { return target_->discard(offset, length); }
  Status extents(uint64_t offset, uint64_t length, ExtentMap& out) override {
    return target_->extents(offset, length, out);
  }
  [[nodiscard]] std::string describe() const override { return target_->describe(); }
  [[nodiscard]] const std::shared_ptr<BlockDevice>& target() const { return target_; }

 private:
  std::shared_ptr<BlockDevice> target_;
};

// Counts operations and bytes passing through; write amplification is
// measured with these. Counters are atomics: cheap and thread-safe.
class CountingDevice final : public DeviceWrapper {
 public:
  struct Counters {
    uint64_t reads = 0, bytes_read = 0;
    uint64_t writes = 0, bytes_written = 0;   // write() calls only
    uint64_t zero_ops = 0, bytes_zeroed = 0;  // write_zeroes() and discard()
    uint64_t flushes = 0;
    uint64_t durable_writes = 0;  // write_gather_durable() calls, also counted in writes
  };
  using DeviceWrapper::DeviceWrapper;
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status flush() override;
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override;
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  Status discard(uint64_t offset, uint64_t length) override;
  [[nodiscard]] Counters counters() const;
  void reset();

 private:
  std::atomic<uint64_t> reads_{0}, bytes_read_{0}, writes_{0}, bytes_written_{0};
  std::atomic<uint64_t> zero_ops_{0}, bytes_zeroed_{0}, flushes_{0}, durable_writes_{0};
};

// Injects faults for tests.
// - fail_write_after(n): the (n+1)th write-type call from now (write,
//   write_gather_durable, write_zeroes, discard) fails with EIO, once;
//   writes before it succeed.
// - power_cut(): every write not yet covered by a successful flush() is
//   undone (the wrapped device gets back the bytes it held at the last
//   flush), and from then on every call fails with EIO. A durable write
//   that returned OK stays; only it does (the weakest device the contract
//   allows), so code that leans on it making other writes durable fails.
// - power_cut_after(n): a power cut happens instead of the (n+1)th
//   operation of any kind except read; that operation fails with EIO.
// Undo data for unflushed writes is kept in memory until the next flush.
// Every call, reads included, is serialized on one mutex: a mutation saves
// its undo bytes and reaches the target atomically, so the undo log is exact
// under concurrency. Slow by design; it is a test device.
class FaultyDevice final : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status flush() override;
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override;
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  Status discard(uint64_t offset, uint64_t length) override;

  void fail_write_after(uint64_t n);
  void power_cut();
  void power_cut_after(uint64_t n);
  [[nodiscard]] bool is_cut() const;
  // Operations (other than reads) seen so far; lets a test pick cut points.
  [[nodiscard]] uint64_t operations() const;

 private:
  struct Undo {
    uint64_t offset;
    std::vector<uint8_t> old_bytes;
  };
  // Under mu_. Counts the operation and records undo bytes for the range;
  // an error when the call must fail (cut already or now, bad range, or
  // the injected write failure fires), in which case nothing was written.
  Status before_mutation(uint64_t offset, uint64_t length);
  // Under mu_. Counts a non-read operation; cuts power if it is the chosen
  // one.
  Status count_operation_locked(std::string_view what);
  // Under mu_. No undo entry restores bytes of [offset, offset+length) any
  // more: they are durable.
  void keep_locked(uint64_t offset, uint64_t length);
  void cut_locked();

  mutable std::mutex mu_;
  std::vector<Undo> undo_;                 // guarded by mu_; oldest first; cleared by flush
  uint64_t operations_ = 0;                // guarded by mu_
  std::optional<uint64_t> fail_write_at_;  // guarded by mu_; write-type ordinal to fail
  uint64_t write_ops_ = 0;                 // guarded by mu_
  std::optional<uint64_t> cut_at_;         // guarded by mu_; operation ordinal to cut at
  bool cut_ = false;                       // guarded by mu_
};

}  // namespace cowsnap
