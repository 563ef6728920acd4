#include "cowsnap/vg/pv_format.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cowsnap/io/devices.h"
#include "cowsnap/vg/crc.h"
#include "cowsnap/vg/metadata_area.h"
#include "cowsnap/vg/physical_volume.h"
#include "support/hex.h"

namespace cowsnap::vg {
namespace {

using ::cowsnap::testing::from_hex;

// The PV header lvm2 2.03.16 wrote for a 6625 MiB PV in a VG.
PvHeader lvm2_header() {
  PvHeader h;
  h.uuid = "IP0bk6T62oY20SB33GL6HDj5ENkeIfPt";
  h.device_size_bytes = 6625ULL * 1024 * 1024;
  h.data_areas = {{1024 * 1024, 0}};
  h.metadata_areas = {{4096, 1024 * 1024 - 4096}};
  h.extension_flags = kPvExtUsed;
  return h;
}

TEST_CASE("label sector encodes byte-for-byte as lvm2 writes it", "[vg][label]") {
  std::vector<uint8_t> expected = from_hex(
      "4c4142454c4f4e4501000000000000004aa27e6b200000004c564d3220303031495030626b365436326f593230534233"
      "33474c3648446a35454e6b65496650740000109e01000000000010000000000000000000000000000000000000000000"
      "0000000000000000001000000000000000f00f0000000000000000000000000000000000000000000200000001000000"
      "00000000000000000000000000000000");
  expected.resize(512, 0);
  auto sector = encode_label_sector(lvm2_header());
  REQUIRE(sector.ok());
  CHECK(std::vector<uint8_t>(sector->begin(), sector->end()) == expected);

  auto decoded = decode_label_sector(expected, 1, "pv0.img");
  REQUIRE(decoded.ok());
  CHECK(*decoded == lvm2_header());
}

TEST_CASE("label checksum errors name the file", "[vg][label]") {
  auto sector = encode_label_sector(lvm2_header()).value();
  sector[40] ^= 0x01;  // a byte of the uuid
  auto decoded = decode_label_sector(sector, 1, "pv0.img");
  REQUIRE(!decoded.ok());
  CHECK(decoded.status().errnum() == EINVAL);
  CHECK(decoded.status().message() == "pv0.img: label checksum mismatch");
}

TEST_CASE("mda_header encodes byte-for-byte as lvm2 writes it", "[vg][mda]") {
  MdaHeader h;
  h.start = 4096;
  h.size = 1024 * 1024 - 4096;
  h.raw_locns = {{0x1200, 0x659, 0x16785832U, 0}};
  std::vector<uint8_t> expected = from_hex(
      "20019117204c564d3220785b35412572304e2a3e01000000001000000000000000f00f0000000000001200000000000059"
      "060000000000003258781600000000");
  expected.resize(512, 0);
  auto bytes = encode_mda_header(h);
  CHECK(std::vector<uint8_t>(bytes.begin(), bytes.end()) == expected);
  auto decoded = decode_mda_header(expected, 4096, "pv0.img");
  REQUIRE(decoded.ok());
  CHECK(*decoded == h);

  expected[0x30] ^= 0x80;
  CHECK(decode_mda_header(expected, 4096, "pv0.img").status().message() ==
        "pv0.img: metadata area header checksum mismatch");
}

TEST_CASE("metadata area: commits go round the circular buffer", "[vg][mda]") {
  MemoryDevice dev(64 * 1024, "mem");
  const DiskArea area{4096, 8192};  // 7.5 KiB of text space
  REQUIRE(init_metadata_area(dev, area, "mem").ok());
  auto empty = read_metadata_area(dev, area, "mem");
  REQUIRE(empty.ok());
  CHECK(!empty->text);

  MdaHeader cur = empty->header;
  std::vector<uint64_t> offsets;
  for (int i = 0; i < 20; ++i) {
    std::string text(700 + static_cast<size_t>(i) * 37, static_cast<char>('a' + i));
    REQUIRE(commit_metadata_text(dev, cur, text, "mem").ok());
    auto got = read_metadata_area(dev, area, "mem");
    REQUIRE(got.ok());
    REQUIRE(got->text);
    CHECK(*got->text == text);
    const RawLocn& r = got->header.raw_locns.front();
    CHECK(r.offset % 512 == 0);
    CHECK(r.size == text.size() + 1);  // lvm2 counts the NUL
    offsets.push_back(r.offset);
    cur = got->header;
  }
  // It wrapped: some commit started before the previous one.
  bool wrapped = false;
  for (size_t i = 1; i < offsets.size(); ++i) wrapped = wrapped || offsets[i] < offsets[i - 1];
  CHECK(wrapped);

  // Too big to fit beside the current text: refused, nothing written.
  std::string huge(8000, 'z');
  CHECK(commit_metadata_text(dev, cur, huge, "mem").errnum() == ENOSPC);
  CHECK(read_metadata_area(dev, area, "mem")->header == cur);
}

TEST_CASE("metadata area: a torn commit leaves the previous text in force", "[vg][mda][crash]") {
  MemoryDevice dev(64 * 1024, "mem");
  const DiskArea area{4096, 16384};
  REQUIRE(init_metadata_area(dev, area, "mem").ok());
  MdaHeader h0 = read_metadata_area(dev, area, "mem")->header;
  REQUIRE(commit_metadata_text(dev, h0, "vg { seqno = 1 }", "mem").ok());
  MdaHeader h1 = read_metadata_area(dev, area, "mem")->header;
  // Step 1 only: the text is written, the header is not.
  auto next = write_metadata_text(dev, h1, "vg { seqno = 2 }", "mem");
  REQUIRE(next.ok());
  auto got = read_metadata_area(dev, area, "mem");
  REQUIRE(got.ok());
  CHECK(*got->text == "vg { seqno = 1 }");
  // Step 2 makes it current.
  REQUIRE(write_mda_header(dev, *next, "mem").ok());
  CHECK(*read_metadata_area(dev, area, "mem")->text == "vg { seqno = 2 }");
}

TEST_CASE("metadata area: a corrupt text is reported", "[vg][mda]") {
  MemoryDevice dev(64 * 1024, "mem");
  const DiskArea area{4096, 16384};
  REQUIRE(init_metadata_area(dev, area, "mem").ok());
  MdaHeader h0 = read_metadata_area(dev, area, "mem")->header;
  REQUIRE(commit_metadata_text(dev, h0, "vg { seqno = 1 }", "mem").ok());
  const RawLocn r = read_metadata_area(dev, area, "mem")->header.raw_locns.front();
  std::array<uint8_t, 1> b{};
  REQUIRE(dev.read(area.offset_bytes + r.offset + 3, b).ok());
  b[0] ^= 0x20;
  REQUIRE(dev.write(area.offset_bytes + r.offset + 3, b).ok());
  auto got = read_metadata_area(dev, area, "pv0.img");
  REQUIRE(!got.ok());
  CHECK(got.status().message() == "pv0.img: metadata text checksum mismatch");
}

TEST_CASE("read_pv: not a PV, truncated, round trip", "[vg][pv]") {
  auto dev = std::make_shared<MemoryDevice>(8 * 1024 * 1024, "mem");
  auto none = read_pv(*dev, "pv0.img");
  REQUIRE(!none.ok());
  CHECK(none.status().errnum() == ENODATA);
  CHECK(none.status().message() == "pv0.img: not an LVM2 PV: no label in sectors 0-3");

  auto h = format_pv(*dev, "pv0.img", {});
  REQUIRE(h.ok());
  auto pv = read_pv(*dev, "pv0.img");
  REQUIRE(pv.ok());
  CHECK(pv->header == *h);
  CHECK(pv->label_sector == 1);
  CHECK(pv->pe_start_bytes() == 1024 * 1024);
  CHECK(pv->header.metadata_areas == std::vector<DiskArea>{{4096, 1024 * 1024 - 4096}});
  REQUIRE(pv->mdas.size() == 1);
  CHECK(!pv->text());

  // The same bytes on a smaller device: the header's size no longer fits.
  MemoryDevice small(4 * 1024 * 1024, "small");
  std::vector<uint8_t> head(1024 * 1024);
  REQUIRE(dev->read(0, head).ok());
  REQUIRE(small.write(0, head).ok());
  auto t = read_pv(small, "pv0.img");
  REQUIRE(!t.ok());
  CHECK(t.status().message() == "pv0.img: truncated: device is 4194304 bytes, header says 8388608");
}

TEST_CASE("metadata area: a power cut at any point of a commit leaves old or new text", "[vg][mda][crash]") {
  for (uint64_t cut = 0; cut < 6; ++cut) {
    INFO("power cut before operation " << cut);
    auto mem = std::make_shared<MemoryDevice>(64 * 1024, "mem");
    const DiskArea area{4096, 16384};
    REQUIRE(init_metadata_area(*mem, area, "mem").ok());
    REQUIRE(commit_metadata_text(*mem, read_metadata_area(*mem, area, "mem")->header, "old", "mem").ok());
    const MdaHeader h = read_metadata_area(*mem, area, "mem")->header;
    FaultyDevice faulty(mem);
    faulty.power_cut_after(cut);
    const Status st = commit_metadata_text(faulty, h, "new", "mem");
    auto got = read_metadata_area(*mem, area, "mem");
    REQUIRE(got.ok());
    REQUIRE(got->text);
    if (st.ok()) {
      CHECK(*got->text == "new");
    } else {
      CHECK((*got->text == "old" || *got->text == "new"));
    }
  }
}

}  // namespace
}  // namespace cowsnap::vg
