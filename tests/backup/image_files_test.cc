// A backup's data files: the writer puts chunks where the manifest says
// (sparse for a full image, packed for a delta) with their digests, and
// verify_backup names every chunk that no longer matches.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "backup/image_files.h"
#include "support/system.h"

using namespace cowsnap;
using namespace cowsnap::backup;
using cowsnap::testing::TempDir;

namespace {

constexpr uint64_t kChunk = 4096;

std::vector<uint8_t> chunk_of(uint8_t v, uint64_t n = kChunk) { return std::vector<uint8_t>(n, v); }

Manifest base(bool incremental) {
  Manifest m;
  m.name = std::string(1, 'b');  // (a literal trips GCC 12's -Wrestrict)
  m.incremental = incremental;
  m.size_bytes = 16 * kChunk;
  m.chunk_bytes = kChunk;
  m.digests.assign(m.chunk_count(), zero_digest(kChunk));
  if (incremental) m.changed = {{1, 2}, {10, 1}};
  return m;
}

int open_data(const TempDir& dir, const Manifest& m, uint64_t size) {
  std::filesystem::create_directories(dir / m.name);
  const std::string path = (std::filesystem::path(dir / m.name) / m.data_file()).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
  return fd;
}

}  // namespace

TEST_CASE("ImageWriter: a full image is sparse where chunks are zero", "[backup]") {
  TempDir dir;
  Manifest m = base(false);
  const int fd = open_data(dir, m, m.size_bytes);
  ImageWriter writer(fd, m);
  std::vector<uint8_t> run = chunk_of(7, 3 * kChunk);
  std::fill(run.begin() + kChunk, run.begin() + 2 * kChunk, 0);  // a zero chunk inside the run
  REQUIRE(writer.put(4, run).ok());
  REQUIRE(writer.put_zero(0, 4).ok());
  REQUIRE(writer.put(7, chunk_of(9)).ok());
  ::close(fd);
  CHECK(same_digest(m.digests[4], digest_of(chunk_of(7))));
  CHECK(same_digest(m.digests[5], zero_digest(kChunk)));
  CHECK(same_digest(m.digests[7], digest_of(chunk_of(9))));
  auto problems = verify_backup(dir / "b", m);
  REQUIRE(problems.ok());
  CHECK(problems->empty());
  struct stat st {};
  REQUIRE(::stat((dir / "b/image.raw").c_str(), &st) == 0);
  CHECK(static_cast<uint64_t>(st.st_blocks) * 512 <= 4 * kChunk);  // 3 chunks written, the zero one not
}

TEST_CASE("ImageWriter: a delta packs the changed chunks; verify names a flipped byte", "[backup]") {
  TempDir dir;
  Manifest m = base(true);
  const int fd = open_data(dir, m, m.changed_chunks() * kChunk);
  ImageWriter writer(fd, m);
  std::vector<uint8_t> two = chunk_of(1, 2 * kChunk);
  std::fill(two.begin() + kChunk, two.end(), 2);
  REQUIRE(writer.put(10, chunk_of(3)).ok());
  REQUIRE(writer.put(1, two).ok());
  // Packed in chunk order: 1, 2, 10.
  std::vector<uint8_t> file(3 * kChunk);
  REQUIRE(read_all(fd, 0, file, "delta").ok());
  CHECK(file[0] == 1);
  CHECK(file[kChunk] == 2);
  CHECK(file[2 * kChunk] == 3);
  auto clean = verify_backup(dir / "b", m);
  REQUIRE(clean.ok());
  CHECK(clean->empty());

  const uint8_t bad = 0x55;
  REQUIRE(::pwrite(fd, &bad, 1, static_cast<off_t>(kChunk + 17)) == 1);
  ::close(fd);
  auto damaged = verify_backup(dir / "b", m);
  REQUIRE(damaged.ok());
  REQUIRE(damaged->size() == 1);
  INFO((*damaged)[0]);
  CHECK((*damaged)[0].find("delta.raw: chunk 2 (bytes 4096-8191 of the file) does not match") !=
        std::string::npos);

  // A truncated file: every missing chunk is reported.
  REQUIRE(::truncate((dir / "b/delta.raw").c_str(), static_cast<off_t>(kChunk)) == 0);
  auto cut = verify_backup(dir / "b", m);
  REQUIRE(cut.ok());
  CHECK(cut->size() >= 2);
  CHECK((*cut)[0].find("bytes, the manifest says") != std::string::npos);
}
