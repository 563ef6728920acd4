// Ceph RBD images as block devices (librbd's C API), so that a PV can live
// on a cluster instead of a local file: a PV named "rbd:POOL/IMAGE".
//
// Client configuration. One process talks to one cluster as one client:
// the CephClient set here (the CLI's --ceph-conf and --ceph-id, the
// plugin's ceph-conf= and ceph-id=) before the first RBD device opens.
// The config file is --ceph-conf, else $CEPH_CONF, else Ceph's own search
// (/etc/ceph/ceph.conf, ...); the id is --ceph-id (the "admin" of
// client.admin), else Ceph's default. $CEPH_ARGS is applied last, so it can
// override anything, including the two settings cowsnap changes from
// Ceph's defaults:
// - rbd_cache = false: librbd's cache acknowledges writes before an OSD
//   has them, which would turn a PV's flush into a promise it cannot keep
//   across a client crash; with it off, a write is on the OSDs when it
//   returns and flush() is a barrier.
// - client_mount_timeout and rados_mon_op_timeout of 30 s where the config
//   leaves them at Ceph's defaults (300 s and none): a cluster that cannot
//   be reached is an error naming it within a bounded time, not a hang.
//
// Sharing. Every RBD device of a process that names one image is the same
// open image (one librbd handle): the server's exclusive lock is held by
// that handle, and a second handle in the same process would be another
// lock client that the owner refuses. Devices are shared_ptrs; the image
// closes when the last one goes.
//
// Ownership (one writer per image). acquire_exclusive_lock() takes RBD's
// exclusive lock explicitly (rbd_lock_acquire): librbd then keeps it
// instead of handing it to whoever writes next, so any other client's
// writes fail with EROFS. A client that never acquires explicitly (an
// offline CLI command) gets and releases the lock transparently around its
// writes, and is refused while an owner holds it. Advisory locks
// (`rbd lock add`) are never used: on images with the exclusive-lock
// feature they block every writer.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/block_device.h"

namespace cowsnap {

struct CephClient {
  std::string conf_path;  // empty: $CEPH_CONF, then Ceph's search path
  std::string id;         // empty: Ceph's default (admin)
};
// Takes effect at the next connection: when no RBD device is open.
void set_ceph_client(CephClient client);
CephClient ceph_client();

inline constexpr std::string_view kRbdPrefix = "rbd:";
// "rbd:POOL/IMAGE" (also "rbd:POOL/NAMESPACE/IMAGE"); names are kept as
// given, never made absolute.
[[nodiscard]] bool is_rbd_name(std::string_view name);

struct RbdImageName {
  std::string pool;
  std::string name_space;  // empty: the default namespace
  std::string image;
};
// EINVAL naming the text when it is not rbd:POOL/IMAGE or
// rbd:POOL/NAMESPACE/IMAGE with non-empty parts.
Result<RbdImageName> parse_rbd_name(std::string_view name);

// What to do when acquire_exclusive_lock() finds another client owning
// the image.
enum class TakeOver {
  kNo,         // refuse (EBUSY naming the owner)
  kDeadOwner,  // break the owner's lock once its watch has lapsed (a dead
               // server); a live owner is refused
  kForce,      // break the lock even if the owner is alive
};

class RbdDevice final : public BlockDevice {
 public:
  struct Options {
    bool read_only = false;
    // When the image does not exist, create it with this size (Ceph's
    // default features and object size); 0 means a missing image is an
    // error (ENOENT naming it).
    uint64_t create_size_bytes = 0;
  };
  // The image, opened or shared (see Sharing above). A writable open
  // returns a writable device even when a read-only one is open.
  static Result<std::shared_ptr<RbdDevice>> open(const std::string& name, Options options);
  // Whether the image exists (ENOENT is false; other failures are errors).
  static Result<bool> exists(const std::string& name);
  ~RbdDevice() override;

  [[nodiscard]] uint64_t size_bytes() const override { return size_bytes_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  // rbd_aio_flush: every write that returned before it is on the OSDs'
  // journals (with the cache off they already are; this is the barrier).
  Status flush() override;
  // The pieces' writes go out together (rbd_aio_write each), then one
  // rbd_aio_flush: one round trip of latency, not one per piece.
  Status write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) override;
  // rbd_aio_write_zeroes. discard() is the default (these zeroes): librbd's
  // discard of part of an object may leave its bytes (rbd_skip_partial_discard),
  // and the contract is zeroes after a discard; write-zeroes still frees
  // whole objects.
  Status write_zeroes(uint64_t offset, uint64_t length) override;
  [[nodiscard]] std::string describe() const override { return name_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] bool read_only() const { return read_only_; }

  // Takes the image's exclusive lock for this process (see Ownership),
  // breaking another owner's as `take_over` allows. Idempotent. A broken
  // owner is blocklisted by the cluster: its later writes fail with
  // ESHUTDOWN. REQUIRES: a writable device.
  Status acquire_exclusive_lock(TakeOver take_over);
  // Whether this process owns the lock now (it may lose it to a forced
  // take-over, after which every write fails).
  Result<bool> owns_lock();

  struct Image;  // the librbd handle and its cluster connection
  RbdDevice(std::string name, std::shared_ptr<Image> image, uint64_t size_bytes, bool read_only);

 private:
  // EROFS naming the image when it was opened read-only.
  [[nodiscard]] Status check_writable() const;

  std::string name_;
  std::shared_ptr<Image> image_;
  uint64_t size_bytes_;
  bool read_only_;
  std::mutex lock_mu_;
  bool lock_held_ = false;  // guarded by lock_mu_
};

}  // namespace cowsnap
