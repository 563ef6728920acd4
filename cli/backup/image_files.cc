#include "image_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace cowsnap::backup {

Digest zero_digest(uint64_t length) {
  const std::vector<uint8_t> zeroes(length, 0);
  return digest_of(zeroes);
}

bool all_zero(std::span<const uint8_t> data) {
  return data.empty() || (data[0] == 0 && std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0);
}

Status write_all(int fd, uint64_t offset, std::span<const uint8_t> data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(fmt::format("{}: write at {}", path, offset));
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status read_all(int fd, uint64_t offset, std::span<uint8_t> data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::pread(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(fmt::format("{}: read at {}", path, offset));
    if (n == 0)
      return Status::Error(EIO,
                           fmt::format("{}: ends at {}, before its last chunk (truncated)", path, offset));
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

ImageWriter::ImageWriter(int fd, Manifest& manifest) : fd_(fd), manifest_(manifest) {
  uint64_t at = 0;
  for (const ChunkRun& r : manifest_.changed) {
    run_starts_.push_back(at);
    at += r.count;
  }
}

uint64_t ImageWriter::file_offset(uint64_t chunk) const {
  if (!manifest_.incremental) return chunk * manifest_.chunk_bytes;
  // The run holding `chunk`: the last one starting at or before it.
  auto it = std::upper_bound(manifest_.changed.begin(), manifest_.changed.end(), chunk,
                             [](uint64_t c, const ChunkRun& r) { return c < r.first; });
  const size_t run = static_cast<size_t>(it - manifest_.changed.begin()) - 1;
  return (run_starts_[run] + chunk - manifest_.changed[run].first) * manifest_.chunk_bytes;
}

Status ImageWriter::put(uint64_t first_chunk, std::span<const uint8_t> data) {
  const uint64_t chunk = manifest_.chunk_bytes;
  const std::string path = manifest_.data_file();
  uint64_t pos = 0;
  while (pos < data.size()) {
    // A run of chunks that are all zero or all not, and (in a delta)
    // adjacent in the file.
    const uint64_t c0 = first_chunk + pos / chunk;
    const bool zero = all_zero(data.subspan(pos, std::min<uint64_t>(chunk, data.size() - pos)));
    uint64_t end = pos;
    while (end < data.size()) {
      const uint64_t n = std::min<uint64_t>(chunk, data.size() - end);
      const std::span<const uint8_t> piece = data.subspan(end, n);
      const uint64_t c = first_chunk + end / chunk;
      if (all_zero(piece) != zero || file_offset(c) != file_offset(c0) + (end - pos)) break;
      manifest_.digests[c] = digest_of(piece);
      end += n;
    }
    // A sparse file reads zeroes where nothing was written. Written bytes
    // start on their way to the disk at once, so the final fsync has
    // little left to do.
    if (!zero) {
      COWSNAP_RETURN_IF_ERROR(write_all(fd_, file_offset(c0), data.subspan(pos, end - pos), path));
      (void)::sync_file_range(fd_, static_cast<off_t>(file_offset(c0)), static_cast<off_t>(end - pos),
                              SYNC_FILE_RANGE_WRITE);
    }
    pos = end;
  }
  return Status::Ok();
}

Status ImageWriter::put_zero(uint64_t first_chunk, uint64_t count) {
  const Digest full = zero_digest(manifest_.chunk_bytes);
  for (uint64_t c = first_chunk; c < first_chunk + count; ++c) {
    const uint64_t n = manifest_.chunk_length(c);
    manifest_.digests[c] = n == manifest_.chunk_bytes ? full : zero_digest(n);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> verify_backup(const std::string& backup_dir, const Manifest& m) {
  const std::string path = backup_dir + "/" + m.data_file();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(fmt::format("cannot open {}", path));
  std::vector<std::string> problems;
  struct stat st {};
  const uint64_t want_size = m.incremental ? m.changed_chunks() * m.chunk_bytes : m.size_bytes;
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) != want_size) {
    problems.push_back(fmt::format("{}: {} bytes, the manifest says {}", path, st.st_size, want_size));
  }
  // Reads go in runs of chunks adjacent in the file, up to 1 MiB.
  constexpr uint64_t kReadBytes = uint64_t{1} << 20;
  const uint64_t per_read = std::max<uint64_t>(1, kReadBytes / m.chunk_bytes);
  std::vector<uint8_t> buf;
  // Chunks [first, first + count) of the image, at file_offset.
  auto check = [&](uint64_t first, uint64_t count, uint64_t file_offset) -> Status {
    const uint64_t bytes = std::min(m.size_bytes, (first + count) * m.chunk_bytes) - first * m.chunk_bytes;
    buf.resize(bytes);
    Status s = read_all(fd, file_offset, buf, path);
    if (!s.ok()) {
      problems.push_back(fmt::format("{}: chunk {}: {}", path, first, s.message()));
      return Status::Error(EIO, "");
    }
    for (uint64_t i = 0; i < count; ++i) {
      const uint64_t c = first + i;
      const std::span<const uint8_t> piece(buf.data() + i * m.chunk_bytes, m.chunk_length(c));
      if (!same_digest(digest_of(piece), m.digests[c])) {
        const uint64_t at = file_offset + i * m.chunk_bytes;
        problems.push_back(fmt::format("{}: chunk {} (bytes {}-{} of the file) does not match its digest",
                                       path, c, at, at + piece.size() - 1));
      }
    }
    return Status::Ok();
  };
  if (m.incremental) {
    uint64_t k = 0;
    for (const ChunkRun& r : m.changed) {
      bool ok = true;
      for (uint64_t done = 0; ok && done < r.count; done += per_read) {
        const uint64_t n = std::min(per_read, r.count - done);
        ok = check(r.first + done, n, (k + done) * m.chunk_bytes).ok();
      }
      if (!ok) break;
      k += r.count;
    }
  } else {
    for (uint64_t c = 0; c < m.chunk_count(); c += per_read) {
      if (!check(c, std::min(per_read, m.chunk_count() - c), c * m.chunk_bytes).ok()) break;
    }
  }
  ::close(fd);
  return problems;
}

}  // namespace cowsnap::backup
