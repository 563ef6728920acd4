// Writes the binary seed corpora at build time, with the project's own
// writers, so that the repository keeps no disk images:
//   OUT/store_open/  persistent COW stores (create_persistent_store and
//                    commits; a 512-byte-chunk store as the kernel allows;
//                    an invalidated one)
//   OUT/pv_read/     a flags byte (0) then small PV images: no VG, a VG
//                    text, a text that wraps around the circular buffer
//   OUT/control/     request and response lines (to_json ... dump())
// Usage: make_seeds OUT VG_TEXT_FILE
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cowsnap/control/protocol.h"
#include "cowsnap/io/devices.h"
#include "cowsnap/store/exception_store.h"
#include "cowsnap/vg/metadata_area.h"
#include "cowsnap/vg/pv_format.h"
#include "persistent_format.h"

using namespace cowsnap;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "make_seeds: %s\n", what.c_str());
  std::exit(1);
}

void require(const Status& s, const char* what) {
  if (!s.ok()) die(std::string(what) + ": " + s.to_string());
}

std::vector<uint8_t> image_of(BlockDevice& dev) {
  std::vector<uint8_t> bytes(dev.size_bytes());
  require(dev.read(0, bytes), "read back");
  return bytes;
}

void write_file(const std::string& path, std::span<const uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) die("cannot write " + path);
}

void write_file(const std::string& path, const std::string& text) {
  write_file(path, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

void store_seeds(const std::string& dir) {
  {  // LVM's smallest chunk (4 KiB): header, area 0, four data chunks, three used.
    auto dev = std::make_shared<MemoryDevice>(6 * 4096, "cow");
    auto store = create_persistent_store(dev, 8);
    require(store.status(), "create store");
    for (uint64_t old_chunk : {uint64_t{7}, uint64_t{0}, uint64_t{123456}}) {
      auto c = (*store)->prepare_exception();
      require(c.status(), "prepare");
      const NewException one{ChunkIndex{old_chunk}, *c};
      require((*store)->commit_exceptions(std::span(&one, 1)), "commit");
    }
    write_file(dir + "/chunk4k.img", image_of(*dev));
    require((*store)->invalidate(), "invalidate");
    write_file(dir + "/invalid.img", image_of(*dev));
  }
  {  // 512-byte chunks (32 entries per area), written entry by entry: area 0
     // full, area 1 partly filled, so the walk crosses an area.
    constexpr uint64_t kChunk = 512;
    const pstore::AreaLayout layout(kChunk);
    std::vector<uint8_t> img(48 * kChunk, 0);
    pstore::encode_header(pstore::DiskHeader{.chunk_sectors = 1}, img);
    uint64_t next = layout.skip_metadata(pstore::kHeaderChunks + 1);
    for (uint64_t i = 0; i < layout.exceptions_per_area() + 3; ++i) {
      const uint64_t area = i / layout.exceptions_per_area();
      auto bytes = std::span(img).subspan(layout.area_location(area) * kChunk, kChunk);
      pstore::encode_exception(bytes, i % layout.exceptions_per_area(),
                               {.old_chunk = 3 * i, .new_chunk = next});
      next = layout.skip_metadata(next + 1);
    }
    write_file(dir + "/chunk512.img", img);
  }
}

void pv_seeds(const std::string& dir, const std::string& vg_text) {
  // Label in sector 1, one 8 KiB metadata area at 4 KiB, data from 12 KiB:
  // pvcreate's layout scaled down to a few KiB (format_pv wants 2 MiB).
  constexpr uint64_t kMdaAt = 4096;
  constexpr uint64_t kPeStart = 12288;
  constexpr uint64_t kDeviceBytes = kPeStart + 2 * vg::kLvmSector;
  vg::PvHeader h;
  h.uuid = "IP0bk6T62oY20SB33GL6HDj5ENkeIfPt";
  h.device_size_bytes = kDeviceBytes;
  h.data_areas = {vg::DiskArea{kPeStart, 0}};
  h.metadata_areas = {vg::DiskArea{kMdaAt, kPeStart - kMdaAt}};
  auto label = vg::encode_label_sector(h);
  require(label.status(), "encode label");

  MemoryDevice dev(kDeviceBytes, "pv");
  require(dev.write(vg::kDefaultLabelSector * vg::kLvmSector, *label), "write label");
  require(vg::init_metadata_area(dev, h.metadata_areas.front(), "pv"), "init mda");
  auto save = [&](const std::string& name) {
    std::vector<uint8_t> bytes{0};  // flags: every checksum as written
    const auto img = image_of(dev);
    bytes.insert(bytes.end(), img.begin(), img.end());
    write_file(dir + "/" + name, bytes);
  };
  save("empty.img");
  // Four commits of a ~1.7 KiB text in a 7.5 KiB buffer: the fourth wraps.
  for (int i = 1; i <= 4; ++i) {
    auto area = vg::read_metadata_area(dev, h.metadata_areas.front(), "pv");
    require(area.status(), "read mda");
    require(vg::commit_metadata_text(dev, area->header, vg_text, "pv"), "commit text");
    if (i == 1) save("vg.img");
  }
  save("vg_wrapped.img");
}

void control_seeds(const std::string& dir) {
  using nlohmann::json;
  control::LvState origin;
  origin.vg = "vgsrv";
  origin.lv = "b64m";
  origin.active = true;
  origin.size_bytes = 64 << 20;
  origin.snapshot_count = 1;
  control::LvState snap = origin;
  snap.lv = "sb64m";
  snap.snapshot_count = 0;
  snap.is_snapshot = true;
  snap.origin = "b64m";
  snap.chunk_sectors = 8;
  snap.usage = control::Usage{65536, 2048, 16};
  snap.data_percent = 3.12;
  control::Response lvs;
  lvs.notices = {"Rounding up size to full physical extent 64.00 MiB"};
  lvs.body["lvs"] = json::array({control::to_json(origin), control::to_json(snap)});
  write_file(dir + "/lvs_response.json", control::to_json(lvs).dump() + "\n");
  write_file(dir + "/error_response.json",
             control::to_json(control::Response::from_status(Status::Error(16, "LV is open"))).dump() + "\n");
  const json requests[] = {
      {{"op", "lvcreate_snapshot"},
       {"vg", "vgsrv"},
       {"origin", "b64m"},
       {"lv", "s"},
       {"size_bytes", 1 << 25}},
      {{"op", "lvremove"}, {"vg", "vgsrv"}, {"lv", "s"}, {"force", true}},
      {{"op", "lvextend"}, {"vg", "vgsrv"}, {"lv", "b64m"}, {"extents", 4}},
  };
  int n = 0;
  for (const json& r : requests)
    write_file(dir + "/request" + std::to_string(n++) + ".json", r.dump() + "\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) die("usage: make_seeds OUT VG_TEXT_FILE");
  const std::string out = argv[1];
  std::ifstream in(argv[2], std::ios::binary);
  const std::string vg_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (vg_text.empty()) die(std::string("cannot read ") + argv[2]);
  store_seeds(out + "/store_open");
  pv_seeds(out + "/pv_read", vg_text);
  control_seeds(out + "/control");
  return 0;
}
