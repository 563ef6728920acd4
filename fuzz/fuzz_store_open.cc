// The persistent COW store's open path (header, then the exception areas) on
// a device holding the fuzz input, as a snapshot's activation opens it. A
// store that opens must keep working: one more exception is committed and
// the store reopened, which must then report it after the ones it reported.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <span>
#include <utility>
#include <vector>

#include "cowsnap/store/exception_store.h"
#include "fuzz_util.h"

using namespace cowsnap;

namespace {

using Seen = std::vector<std::pair<uint64_t, uint64_t>>;

Result<std::unique_ptr<ExceptionStore>> open(const std::shared_ptr<MemoryDevice>& dev, Seen& seen) {
  seen.clear();
  return open_persistent_store(dev, 0, [&seen](ChunkIndex old_chunk, ChunkIndex cow_chunk) {
    seen.emplace_back(old_chunk.value, cow_chunk.value);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto dev = fuzz::device_from({data, size}, "cow");
  Seen seen;
  auto store = open(dev, seen);
  if (!store.ok()) return 0;
  ExceptionStore& s = **store;
  // Allocated may exceed total by one chunk, as in the kernel: a full store
  // whose next metadata area would start at the device's end has next_free
  // past that area's chunk.
  fuzz::check(s.usage().total_sectors == size / 512, "usage: total is the device's size");
  if (!s.valid()) return 0;
  // A table naming one COW chunk twice is corrupt (more entries than data
  // chunks, so a commit could fill an area that has no successor on the
  // device): open must refuse it.
  std::vector<uint64_t> cow_chunks;
  for (const auto& [old_chunk, cow_chunk] : seen) cow_chunks.push_back(cow_chunk);
  std::sort(cow_chunks.begin(), cow_chunks.end());
  fuzz::check(std::adjacent_find(cow_chunks.begin(), cow_chunks.end()) == cow_chunks.end(),
              "an open store names no COW chunk twice");

  auto chunk = s.prepare_exception();
  if (!chunk.ok()) return 0;
  constexpr uint64_t kOldChunk = 0x5eed;
  const NewException one{ChunkIndex{kOldChunk}, *chunk};
  if (!s.commit_exceptions(std::span(&one, 1)).ok()) return 0;
  Seen before = std::move(seen);
  store->reset();
  auto again = open(dev, seen);
  if (!again.ok()) std::fprintf(stderr, "reopen: %s\n", again.status().to_string().c_str());
  fuzz::check(again.ok(), "a store reopens after a successful commit");
  before.emplace_back(kOldChunk, chunk->value);
  fuzz::check(seen == before, "reopening reports the old exceptions, then the committed one");
  return 0;
}
