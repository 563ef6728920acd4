// The data files of a backup: writing them as chunks arrive from the
// copier, and checking them against their manifest.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "copier.h"
#include "manifest.h"

namespace cowsnap::backup {

// The digest of a chunk of zeroes of `length` bytes.
Digest zero_digest(uint64_t length);
bool all_zero(std::span<const uint8_t> data);

// Writes chunks into a backup's data file and their digests into
// `manifest.digests` (sized to the image's chunk count by the caller). A
// full image is sparse: chunks of zeroes are not written. A delta holds
// manifest.changed's chunks back to back.
class ImageWriter final : public ChunkSink {
 public:
  // `fd` is the data file, truncated to its final size.
  ImageWriter(int fd, Manifest& manifest);
  Status put(uint64_t first_chunk, std::span<const uint8_t> data) override;
  Status put_zero(uint64_t first_chunk, uint64_t count) override;

 private:
  // Where chunk `chunk` goes in the file.
  [[nodiscard]] uint64_t file_offset(uint64_t chunk) const;
  int fd_;
  Manifest& manifest_;
  std::vector<uint64_t> run_starts_;  // delta: file chunk index of each changed run
};

// Re-reads a backup's data file and compares every chunk with its digest.
// Returns the problems found, each naming the file and chunk (empty: all
// good); an error only when the file cannot be read at all.
Result<std::vector<std::string>> verify_backup(const std::string& backup_dir, const Manifest& manifest);

// pwrite/pread of a whole buffer, naming `path` in errors.
Status write_all(int fd, uint64_t offset, std::span<const uint8_t> data, const std::string& path);
Status read_all(int fd, uint64_t offset, std::span<uint8_t> data, const std::string& path);

}  // namespace cowsnap::backup
