// The backup's copier: reads chunk runs of an export over several NBD
// connections at once, each with several asynchronous reads in flight (as
// nbdcopy does), skipping what the server's block status says reads as
// zeroes, and hands every chunk to a sink.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cowsnap/common/status.h"
#include "manifest.h"
#include "nbd_connection.h"

namespace cowsnap::backup {

// Where the chunks go. Called from the copier's threads, for disjoint
// chunks, in no particular order.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  // Whole chunks from `first_chunk` on (the image's last one may be short).
  virtual Status put(uint64_t first_chunk, std::span<const uint8_t> data) = 0;
  // Chunks known to read as zeroes, never read.
  virtual Status put_zero(uint64_t first_chunk, uint64_t count) = 0;
};

struct CopyOptions {
  int connections = 4;
  int requests_per_connection = 16;
  uint64_t request_bytes = uint64_t{1} << 20;
  // Updated as chunks are done (read or skipped), for a progress display.
  std::atomic<uint64_t>* done_bytes = nullptr;
};

struct CopyStats {
  uint64_t copied_bytes = 0;  // read from the server
  uint64_t zero_bytes = 0;    // skipped by block status
};

// Copies `runs` (of chunks of `chunk_bytes` over an image of `size_bytes`)
// from `export_name`. The first error stops every connection and is
// returned.
Result<CopyStats> copy_chunks(const NbdAddress& address, const std::string& export_name, uint64_t size_bytes,
                              uint64_t chunk_bytes, const std::vector<ChunkRun>& runs, ChunkSink& sink,
                              const CopyOptions& options);

}  // namespace cowsnap::backup
