// Step 6 of the seed experiment, in process: activates a VG and writes
// MIB mebibytes of non-zero data into an LV from offset 0, as the `dd` of
// the original run did through the mounted filesystem.
//   seed_writer ROOT VG LV MIB
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cowsnap/volume/active_vg.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: seed_writer ROOT VG LV MIB\n");
    return 2;
  }
  auto vm = cowsnap::vg::VolumeManager::open(argv[1]);
  if (!vm.ok()) {
    std::fprintf(stderr, "%s\n", vm.status().to_string().c_str());
    return 1;
  }
  auto disk = vm->read_vg(argv[2]);
  if (!disk.ok()) {
    std::fprintf(stderr, "%s\n", disk.status().to_string().c_str());
    return 1;
  }
  auto active = cowsnap::ActiveVolumeGroup::activate(*disk);
  if (!active.ok()) {
    std::fprintf(stderr, "%s\n", active.status().to_string().c_str());
    return 1;
  }
  auto volume = (*active)->find(argv[3]);
  if (!volume) {
    std::fprintf(stderr, "no LV %s\n", argv[3]);
    return 1;
  }
  const uint64_t mib = std::strtoull(argv[4], nullptr, 10);
  std::vector<uint8_t> buf(uint64_t{1} << 20);
  for (uint64_t i = 0; i < mib; ++i) {
    for (size_t j = 0; j < buf.size(); ++j) buf[j] = static_cast<uint8_t>((i * 131 + j) | 1);
    if (auto s = volume->device->write(i << 20, buf); !s.ok()) {
      std::fprintf(stderr, "write at MiB %llu: %s\n", static_cast<unsigned long long>(i),
                   s.to_string().c_str());
      return 1;
    }
  }
  if (auto s = volume->device->flush(); !s.ok()) {
    std::fprintf(stderr, "flush: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
