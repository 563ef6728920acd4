#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

#include "cowsnap/io/devices.h"

namespace cowsnap {
namespace {

// Largest buffer used when zeroes have to be written out by hand.
constexpr uint64_t kZeroChunkBytes = uint64_t{1} << 20;

// Runs a call returning 0 or -1/errno until it is not interrupted.
template <typename Call>
int retry_eintr(Call call) {
  int rc = 0;
  do {
    rc = call();
  } while (rc != 0 && errno == EINTR);
  return rc;
}

Status errno_error(const std::string& path, std::string_view what) {
  return Status::FromErrno(fmt::format("file {}: {}", path, what));
}

// Opens `path`, creating it sparse when it is missing and a create size is
// given. A concurrent creator is tolerated: losing the O_EXCL race falls back
// to opening what the winner made.
Result<int> open_fd(const std::string& path, const FileDevice::Options& options) {
  const int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  while (true) {
    const int fd = ::open(path.c_str(), flags);
    if (fd >= 0) return fd;
    if (errno == EINTR) continue;
    if (errno != ENOENT || options.create_size_bytes == 0) return errno_error(path, "open");
    if (options.read_only) {
      return Status::Error(ENOENT, fmt::format("file {}: does not exist, and a read-only device "
                                               "cannot create it",
                                               path));
    }
    const int created = ::open(path.c_str(), flags | O_CREAT | O_EXCL, 0644);
    if (created < 0) {
      if (errno == EEXIST || errno == EINTR) continue;
      return errno_error(path, "create");
    }
    if (::ftruncate(created, static_cast<off_t>(options.create_size_bytes)) != 0) {
      Status st = errno_error(path, fmt::format("set size to {} bytes", options.create_size_bytes));
      ::close(created);
      ::unlink(path.c_str());
      return st;
    }
    return created;
  }
}

}  // namespace

Result<std::shared_ptr<FileDevice>> FileDevice::open(const std::string& path, Options options) {
  COWSNAP_ASSIGN_OR_RETURN(const int fd, open_fd(path, options));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status err = errno_error(path, "stat");
    ::close(fd);
    return err;
  }
  uint64_t size = 0;
  const bool is_block = S_ISBLK(st.st_mode);
  if (is_block) {
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) {
      Status err = errno_error(path, "BLKGETSIZE64");
      ::close(fd);
      return err;
    }
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else {
    ::close(fd);
    return Status::Error(EINVAL, fmt::format("file {}: neither a regular file nor a block device", path));
  }
  return std::make_shared<FileDevice>(path, fd, size, options.read_only, is_block);
}

FileDevice::FileDevice(std::string path, int fd, uint64_t size_bytes, bool read_only, bool is_block_device)
    : path_(std::move(path)),
      fd_(fd),
      size_bytes_(size_bytes),
      read_only_(read_only),
      is_block_device_(is_block_device) {}

FileDevice::~FileDevice() { ::close(fd_); }

Status FileDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::pread(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(path_, fmt::format("read {} bytes at offset {}", buf.size() - done, offset + done));
    }
    if (n == 0) {
      // The size is fixed at open; a short file means someone truncated it.
      return Status::Error(
          EIO, fmt::format("file {}: unexpected end of file at offset {} (shrunk since open?)", path_,
                           offset + done));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FileDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  if (read_only_) return Status::Error(EROFS, fmt::format("file {}: opened read-only", path_));
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, buf.size()));
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::pwrite(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(path_, fmt::format("write {} bytes at offset {}", buf.size() - done, offset + done));
    }
    if (n == 0) {
      return Status::Error(EIO,
                           fmt::format("file {}: write at offset {} made no progress", path_, offset + done));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FileDevice::write_gather_durable(uint64_t offset, std::span<const std::span<const uint8_t>> pieces) {
  if (read_only_) return Status::Error(EROFS, fmt::format("file {}: opened read-only", path_));
  const uint64_t total = gather_bytes(pieces);
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, total));
  std::vector<iovec> iov;
  iov.reserve(pieces.size());
  for (const std::span<const uint8_t> piece : pieces) {
    if (!piece.empty()) iov.push_back(iovec{const_cast<uint8_t*>(piece.data()), piece.size()});
  }
  size_t next = 0;  // first iovec not fully written
  uint64_t done = 0;
  while (next < iov.size()) {
    // The kernel syncs just this range (and what the file system needs to
    // find it), then the device's cache; the file's other dirty pages stay
    // in memory.
    const int count = static_cast<int>(std::min<size_t>(iov.size() - next, IOV_MAX));
    const ssize_t n = ::pwritev2(fd_, &iov[next], count, static_cast<off_t>(offset + done), RWF_DSYNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EOPNOTSUPP || errno == EINVAL) return BlockDevice::write_gather_durable(offset, pieces);
      return errno_error(path_,
                         fmt::format("durable write of {} bytes at offset {}", total - done, offset + done));
    }
    if (n == 0) {
      return Status::Error(EIO,
                           fmt::format("file {}: write at offset {} made no progress", path_, offset + done));
    }
    done += static_cast<uint64_t>(n);
    // Past what was written; a short write resumes inside an iovec.
    for (size_t left = static_cast<size_t>(n); left > 0;) {
      const size_t take = std::min(left, iov[next].iov_len);
      iov[next].iov_base = static_cast<uint8_t*>(iov[next].iov_base) + take;
      iov[next].iov_len -= take;
      left -= take;
      if (iov[next].iov_len == 0) ++next;
    }
  }
  return Status::Ok();
}

Status FileDevice::flush() {
  if (read_only_) return Status::Ok();
  // Concurrent callers share fdatasync calls (every LV and COW store on a PV
  // flushes this one device): a call returns once a sync that started after
  // it was called has finished, which covers every write it must make
  // durable.
  std::unique_lock lock(flush_mu_);
  const uint64_t needed = syncs_started_ + 1;
  while (syncs_finished_ < needed) {
    if (sync_running_) {
      flush_done_.wait(lock);
      continue;
    }
    sync_running_ = true;
    const uint64_t mine = ++syncs_started_;
    lock.unlock();
    // Retrying after EINTR is safe; retrying after EIO is not (the kernel may
    // already have dropped the dirty pages), so only EINTR loops.
    Status result =
        retry_eintr([&] { return ::fdatasync(fd_); }) != 0 ? errno_error(path_, "fdatasync") : Status::Ok();
    lock.lock();
    sync_running_ = false;
    syncs_finished_ = mine;
    last_sync_status_ = std::move(result);
    flush_done_.notify_all();
  }
  return last_sync_status_;
}

namespace {

Status write_zeroes_by_hand(FileDevice& dev, uint64_t offset, uint64_t length) {
  const std::vector<uint8_t> zeroes(static_cast<size_t>(std::min(length, kZeroChunkBytes)));
  uint64_t done = 0;
  while (done < length) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeroes.size(), length - done));
    COWSNAP_RETURN_IF_ERROR(dev.write(offset + done, std::span(zeroes.data(), n)));
    done += n;
  }
  return Status::Ok();
}

int punch_hole(int fd, uint64_t offset, uint64_t length) {
  return retry_eintr([&] {
    return ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                       static_cast<off_t>(length));
  });
}

bool unsupported(int err) { return err == EOPNOTSUPP || err == ENOTTY || err == ENOSYS; }

}  // namespace

Status FileDevice::write_zeroes(uint64_t offset, uint64_t length) {
  if (read_only_) return Status::Error(EROFS, fmt::format("file {}: opened read-only", path_));
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  if (length == 0) return Status::Ok();
  if (is_block_device_) {
    // BLKZEROOUT takes whole sectors only.
    if (offset % kSectorBytes == 0 && length % kSectorBytes == 0) {
      uint64_t range[2] = {offset, length};
      if (retry_eintr([&] { return ::ioctl(fd_, BLKZEROOUT, range); }) == 0) return Status::Ok();
      if (!unsupported(errno)) {
        return errno_error(path_, fmt::format("BLKZEROOUT {}+{}", offset, length));
      }
    }
    return write_zeroes_by_hand(*this, offset, length);
  }
  if (punch_hole(fd_, offset, length) == 0) return Status::Ok();
  if (unsupported(errno)) return write_zeroes_by_hand(*this, offset, length);
  return errno_error(path_, fmt::format("punch hole {}+{}", offset, length));
}

Status FileDevice::extents(uint64_t offset, uint64_t length, ExtentMap& out) {
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  if (is_block_device_) {
    out.add(length, false);
    return Status::Ok();
  }
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    // Where the data run containing (or following) pos begins: ENXIO means
    // none follows, so the rest is a hole.
    const off_t data = ::lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0 && errno != ENXIO) return errno_error(path_, fmt::format("lseek SEEK_DATA {}", pos));
    const uint64_t data_at = data < 0 ? end : std::min(end, static_cast<uint64_t>(data));
    out.add(data_at - pos, true);
    pos = data_at;
    if (pos == end) break;
    const off_t hole = ::lseek(fd_, static_cast<off_t>(pos), SEEK_HOLE);
    if (hole < 0) return errno_error(path_, fmt::format("lseek SEEK_HOLE {}", pos));
    // From inside data SEEK_HOLE lands later; the max only guards progress.
    const uint64_t hole_at = std::min(end, std::max(pos + 1, static_cast<uint64_t>(hole)));
    out.add(hole_at - pos, false);
    pos = hole_at;
  }
  return Status::Ok();
}

Status FileDevice::discard(uint64_t offset, uint64_t length) {
  if (!is_block_device_) return write_zeroes(offset, length);  // a punched hole is a discard
  if (read_only_) return Status::Error(EROFS, fmt::format("file {}: opened read-only", path_));
  COWSNAP_RETURN_IF_ERROR(check_range(*this, offset, length));
  if (length == 0) return Status::Ok();
  // Not BLKDISCARD: it may leave garbage behind, and every BlockDevice here
  // reads zeroes after a discard. On a block device a punched hole is the
  // kernel's "zero it, unmapping if you can" (WRITE_ZEROES without NOUNMAP),
  // which is that contract and still lets thin storage reclaim the range.
  if (offset % kSectorBytes == 0 && length % kSectorBytes == 0) {
    if (punch_hole(fd_, offset, length) == 0) return Status::Ok();
    if (!unsupported(errno)) {
      return errno_error(path_, fmt::format("discard (punch hole) {}+{}", offset, length));
    }
  }
  return write_zeroes(offset, length);
}

}  // namespace cowsnap
