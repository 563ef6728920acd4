// Sizes, attributes, column selection and layouts of cowsnap_report,
// checked against what lvm2 2.03.16 prints.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>

#include "cowsnap/report/data_percent.h"
#include "cowsnap/report/report.h"

using namespace cowsnap;
using namespace cowsnap::report;

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// The seed's VG: one 207-extent PV of 32 MiB extents; b64m with two
// snapshots sb64m (1 extent) and sb64m2 (2 extents).
vg::VolumeGroup seed_vg() {
  vg::VolumeGroup vg;
  vg.name = "vgsrv";
  vg.id = "O5KOxZ-LpFY-qqn9-lil0-W0HV-Pqf1-Lrd0Sx";
  vg.extent_size = 65536;
  vg::PhysicalVolume pv;
  pv.name = "pv0";
  pv.id = "QceOEU-6Ovt-9UAG-JXU3-MFfH-lJud-nKYSaR";
  pv.device = "/dev/loop0";
  pv.dev_size = 6625 * 2048;
  pv.pe_start = 2048;
  pv.pe_count = 207;
  vg.pvs.push_back(pv);
  auto linear = [](std::string name, uint64_t first, uint64_t count, bool visible) {
    vg::LogicalVolume lv;
    lv.name = std::move(name);
    if (!visible) lv.status = {"READ", "WRITE"};
    vg::Segment seg;
    seg.extent_count = count;
    seg.stripes = {{"pv0", first}};
    lv.segments.push_back(seg);
    return lv;
  };
  vg.lvs.push_back(linear("b64m", 0, 2, true));
  vg.lvs.push_back(linear("sb64m", 2, 1, false));
  vg.lvs.push_back(linear("sb64m2", 3, 2, false));
  int n = 0;
  for (const char* cow : {"sb64m", "sb64m2"}) {
    vg::LogicalVolume snap;
    snap.name = "snapshot" + std::to_string(n++);
    snap.status = {"READ"};
    vg::Segment seg;
    seg.type = "snapshot";
    seg.extent_count = 2;
    seg.chunk_size = 8;
    seg.origin = "b64m";
    seg.cow_store = cow;
    snap.segments.push_back(seg);
    vg.lvs.push_back(snap);
  }
  return vg;
}

}  // namespace

TEST_CASE("sizes parse as lvm2 reads them", "[report][size]") {
  CHECK(parse_size("64M")->bytes == 64 * kMiB);
  CHECK(parse_size("64m")->bytes == 64 * kMiB);
  CHECK(parse_size("64")->bytes == 64 * kMiB);  // MiB by default
  CHECK(parse_size("1.5G")->bytes == 3 * kGiB / 2);
  CHECK(parse_size("1.5g")->bytes == 3 * kGiB / 2);
  CHECK(parse_size("8", 'k')->bytes == 8192);
  CHECK(parse_size("2s")->bytes == 1024);
  CHECK(parse_size("512b")->bytes == 512);
  CHECK(parse_size("1t")->bytes == kGiB * 1024);
  auto plus = parse_size("+32M");
  CHECK(plus->sign == SizeSign::kPlus);
  CHECK(plus->bytes == 32 * kMiB);
  CHECK(parse_size("-32M")->sign == SizeSign::kMinus);
  CHECK(parse_size("6.47g")->bytes == static_cast<uint64_t>(6.47 * static_cast<double>(kGiB)));
  CHECK_FALSE(parse_size("").ok());
  CHECK_FALSE(parse_size("M").ok());
  CHECK_FALSE(parse_size("12x").ok());
  CHECK_FALSE(parse_size("1.2.3m").ok());
  CHECK_FALSE(parse_size("12mb").ok());
}

TEST_CASE("extent arguments", "[report][size]") {
  auto e = parse_extents("10%FREE");
  REQUIRE(e.ok());
  CHECK(e->base == ExtentsBase::kFree);
  CHECK(e->value == 10);
  CHECK(parse_extents("+5")->sign == SizeSign::kPlus);
  CHECK(parse_extents("50%ORIGIN")->base == ExtentsBase::kOrigin);
  CHECK(parse_extents("100%VG")->base == ExtentsBase::kVg);
  CHECK_FALSE(parse_extents("10%BOGUS").ok());
  CHECK_FALSE(parse_extents("x").ok());
  CHECK(percent_of_extents(10, 155) == 15);  // lvm2 rounds down
}

TEST_CASE("sizes print as lvm2 prints them", "[report][size]") {
  const uint64_t vg_bytes = 207 * 32 * kMiB;
  CHECK(format_size(vg_bytes) == "<6.47g");
  CHECK(format_size(203 * 32 * kMiB) == "6.34g");  // rounded down: no mark
  CHECK(format_size(188 * 32 * kMiB) == "<5.88g");
  CHECK(format_size(64 * kMiB) == "64.00m");
  CHECK(format_size(480 * kMiB) == "480.00m");
  CHECK(format_size(kMiB) == "1.00m");
  CHECK(format_size(4096) == "4.00k");
  CHECK(format_size(0) == "0 ");
  CHECK(format_size(vg_bytes, *parse_units("h")) == "6.47g");
  CHECK(format_size(vg_bytes, *parse_units("g")) == "6.47g");
  CHECK(format_size(vg_bytes, *parse_units("H")) == "6.95G");
  CHECK(format_size(vg_bytes, *parse_units("b")) == "6945767424B");
  CHECK(format_size(vg_bytes, *parse_units("s")) == "13565952S");
  CHECK(format_size(vg_bytes, *parse_units("k")) == "6782976.00k");
  CHECK(format_size(vg_bytes, *parse_units("m")) == "6624.00m");
  CHECK(format_size(vg_bytes, *parse_units("M")) == "6945.77M");
  CHECK(format_size(vg_bytes, *parse_units("t")) == "0.01t");
  CHECK(format_size(vg_bytes, *parse_units("e")) == "0.00e");
  CHECK(format_size(vg_bytes, *parse_units("4m")) == "1656.00U");
  Units nosuffix = *parse_units("g");
  nosuffix.suffix = false;
  CHECK(format_size(vg_bytes, nosuffix) == "6.47");
  Units r_nosuffix;
  r_nosuffix.suffix = false;
  CHECK(format_size(vg_bytes, r_nosuffix) == "<6.47g");  // lvm2 keeps human suffixes
  CHECK_FALSE(parse_units("x").ok());
  CHECK_FALSE(parse_units("4h").ok());
  CHECK(format_size_long(64 * kMiB) == "64.00 MiB");
  CHECK(format_size_long(vg_bytes) == "<6.47 GiB");
}

TEST_CASE("attributes", "[report][attr]") {
  const vg::VolumeGroup vg = seed_vg();
  LvLiveState inactive;
  CHECK(lv_attr(vg, *vg.find_lv("b64m"), inactive) == "owi---s---");
  CHECK(lv_attr(vg, *vg.find_lv("sb64m"), inactive) == "swi---s---");
  LvLiveState active{.active = true, .open = true, .snapshot_valid = true, .usage = {}, .failure = {}};
  CHECK(lv_attr(vg, *vg.find_lv("b64m"), active) == "owi-aos---");
  active.open = false;
  CHECK(lv_attr(vg, *vg.find_lv("sb64m2"), active) == "swi-a-s---");
  LvLiveState invalid;
  invalid.snapshot_valid = false;
  CHECK(lv_attr(vg, *vg.find_lv("sb64m"), invalid) == "swi-I-s---");
  // A store that failed to load: served, a device without a table (d).
  LvLiveState failed;
  failed.failure = "Failed to read snapshot metadata: bad magic";
  CHECK(lv_attr(vg, *vg.find_lv("sb64m"), failed) == "swi---s---");
  failed.active = true;
  CHECK(lv_attr(vg, *vg.find_lv("sb64m"), failed) == "swi-d-s---");
  vg::VolumeGroup plain = vg;
  plain.lvs.resize(1);
  CHECK(lv_attr(plain, plain.lvs[0], inactive) == "-wi-------");
  CHECK(vg_attr(vg) == "wz--n-");
  CHECK(pv_attr(&vg.pvs[0]) == "a--");
  CHECK(pv_attr(nullptr) == "---");
}

TEST_CASE("column selection", "[report][fields]") {
  auto names = [](const std::vector<const FieldDef*>& fields) {
    std::vector<std::string> out;
    for (auto* f : fields) out.emplace_back(f->name);
    return out;
  };
  CHECK(names(default_fields(ReportKind::kVg)) == std::vector<std::string>{"vg_name", "pv_count", "lv_count",
                                                                           "snap_count", "vg_attr", "vg_size",
                                                                           "vg_free"});
  CHECK(names(*select_fields(ReportKind::kLv, {"lv_name,size"})) ==
        std::vector<std::string>{"lv_name", "lv_size"});
  auto plus = select_fields(ReportKind::kLv, {"+devices,chunk_size"});
  REQUIRE(plus.ok());
  CHECK(plus->size() == 14);
  CHECK(plus->back()->heading == "Chunk");
  CHECK(names(*select_fields(ReportKind::kPv, {"-pv_fmt,pv_attr"})).size() == 4);
  CHECK(find_field(ReportKind::kLv, "snap_percent")->heading == "Snap%");
  CHECK(find_field(ReportKind::kVg, "lv_name") == nullptr);
  auto bad = select_fields(ReportKind::kLv, {"bogus"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "Unrecognised field: bogus");
}

TEST_CASE("sorting rows (-O) by field values, numbers as numbers", "[report][sort]") {
  auto keys = select_sort_keys(ReportKind::kLv, {"vg_name", "-size,lv_name"});
  REQUIRE(keys.ok());
  REQUIRE(keys->size() == 2);  // the later -O replaces the earlier
  CHECK(keys->at(0).field->name == "lv_size");
  CHECK(keys->at(0).descending);
  CHECK(keys->at(1).field->name == "lv_name");
  CHECK_FALSE(keys->at(1).descending);
  auto bad = select_sort_keys(ReportKind::kVg, {"+vg_name,-bogus"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "Unrecognised field: bogus");

  // Sizes in bytes: 100 MiB sorts above 64 MiB although "104857600" <
  // "67108864" as text; names break ties; an empty value sorts lowest.
  std::vector<Row> rows = {{"a"}, {"b"}, {"c"}, {"d"}};
  const std::vector<Row> key_rows = {{"67108864", "a"}, {"104857600", "b"}, {"67108864", "c"}, {"", "d"}};
  sort_rows(rows, key_rows, *keys);
  CHECK(rows == std::vector<Row>{{"b"}, {"a"}, {"c"}, {"d"}});
  rows = {{"a"}, {"b"}, {"c"}, {"d"}};
  sort_rows(rows, key_rows, *select_sort_keys(ReportKind::kLv, {"lv_size"}));
  CHECK(rows == std::vector<Row>{{"d"}, {"a"}, {"c"}, {"b"}});  // stable: a before c
  rows = {{"x"}, {"y"}};
  sort_rows(rows, {{"swi-a-s---"}, {"owi-aos---"}}, *select_sort_keys(ReportKind::kLv, {"lv_attr"}));
  CHECK(rows == std::vector<Row>{{"y"}, {"x"}});
  // Percentages, though left-aligned, compare as numbers: 100.00 > 9.50.
  rows = {{"x"}, {"y"}, {"z"}};
  sort_rows(rows, {{"100.00"}, {"9.50"}, {""}}, *select_sort_keys(ReportKind::kLv, {"data_percent"}));
  CHECK(rows == std::vector<Row>{{"z"}, {"y"}, {"x"}});
  CHECK(sort_units().unit == 'b');
  CHECK_FALSE(sort_units().suffix);
}

TEST_CASE("segment fields report one segment of an LV", "[report][fields]") {
  vg::VolumeGroup vg = seed_vg();
  vg::LogicalVolume& b64m = vg.lvs[0];
  vg::Segment second = b64m.segments[0];
  second.start_extent = 2;
  second.extent_count = 1;
  second.stripes = {{"pv0", 9}};
  b64m.segments.push_back(second);
  vg::PvPathLookup path_of = [](const vg::PhysicalVolume& pv) { return pv.device; };
  const auto fields = *select_fields(ReportKind::kLv, {"lv_name,lv_size,devices,seg_pe_ranges,seg_count"});
  CHECK(has_segment_fields(fields));
  CHECK_FALSE(has_segment_fields(default_fields(ReportKind::kLv)));
  LvRowInput in{&vg, &b64m, {}, path_of, false, std::nullopt};
  CHECK(lv_row(fields, in, Units{}) ==
        Row{"b64m", "96.00m", "/dev/loop0(0),/dev/loop0(9)", "/dev/loop0:0-1 /dev/loop0:9-9", "2"});
  in.segment = 1;
  CHECK(lv_row(fields, in, Units{}) == Row{"b64m", "96.00m", "/dev/loop0(9)", "/dev/loop0:9-9", "2"});
}

// What lvm2 2.03.16 printed for `lvs -o lv_name,lv_permissions,lv_active,
// lv_time,snapshot_invalid` of an origin, a read-only snapshot (lvcreate -s
// -pr) and an overflowed one, under TZ=UTC.
TEST_CASE("state fields: permissions, active, creation time, snapshot_invalid", "[report][fields]") {
  vg::VolumeGroup vg = seed_vg();
  vg.find_lv("b64m")->creation_time = 1796140082;
  vg.find_lv("sb64m")->status = {"READ"};  // lvcreate -s -pr
  const auto fields =
      *select_fields(ReportKind::kLv, {"lv_name,lv_permissions,lv_active,lv_time,snapshot_invalid"});
  REQUIRE(fields.size() == 5);
  CHECK(fields[4]->name == "lv_snapshot_invalid");
  CHECK(fields[4]->heading == "SnapInvalid");
  CHECK(fields[3]->heading == "CTime");
  CHECK(fields[4]->min_width == 15);
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  LvLiveState active{.active = true, .open = false, .snapshot_valid = true, .usage = {}, .failure = {}};
  CHECK(lv_row(fields, LvRowInput{&vg, vg.find_lv("b64m"), active, {}, false, std::nullopt}, Units{}) ==
        Row{"b64m", "writeable", "active", "2026-12-01 15:48:02 +0000", "unknown"});
  CHECK(lv_row(fields, LvRowInput{&vg, vg.find_lv("sb64m"), active, {}, false, std::nullopt}, Units{}) ==
        Row{"sb64m", "read-only", "active", "", ""});
  LvLiveState invalid = active;
  invalid.snapshot_valid = false;
  CHECK(lv_row(fields, LvRowInput{&vg, vg.find_lv("sb64m2"), invalid, {}, false, std::nullopt}, Units{}) ==
        Row{"sb64m2", "writeable", "active", "", "snapshot invalid"});
  // Inactive, and a store that cannot be read.
  LvLiveState failed;
  failed.failure = "Failed to read snapshot metadata: bad magic";
  CHECK(lv_row(fields, LvRowInput{&vg, vg.find_lv("sb64m2"), failed, {}, false, std::nullopt}, Units{}) ==
        Row{"sb64m2", "writeable", "", "", "unknown"});
}

TEST_CASE("text layout matches lvm2", "[report][render]") {
  const vg::VolumeGroup vg = seed_vg();
  const auto fields = default_fields(ReportKind::kLv);
  std::vector<Row> rows;
  vg::PvPathLookup path_of = [](const vg::PhysicalVolume& pv) { return pv.device; };
  LvLiveState snap_live;
  snap_live.usage = StoreUsage{131072, 82256, 336};
  for (const char* name : {"b64m", "sb64m", "sb64m2"}) {
    LvLiveState live;
    if (std::string(name) == "sb64m") live.snapshot_valid = false;
    if (std::string(name) == "sb64m2") live = snap_live;
    rows.push_back(lv_row(fields, {&vg, vg.find_lv(name), live, path_of, false, std::nullopt}, Units{}));
  }
  const std::string text = render(ReportKind::kLv, fields, rows, {});
  CHECK(text ==
        "  LV     VG    Attr       LSize  Pool Origin Data%  Meta%  Move Log Cpy%Sync Convert\n"
        "  b64m   vgsrv owi---s--- 64.00m                                                    \n"
        "  sb64m  vgsrv swi-I-s--- 32.00m      b64m   100.00                                 \n"
        "  sb64m2 vgsrv swi---s--- 64.00m      b64m   62.76                                  \n");
  // Percentages are left-aligned, as lvm2 aligns them (sizes and counts
  // are right-aligned), also with --aligned.
  OutputOptions aligned;
  aligned.separator = "|";
  aligned.aligned = true;
  const auto pct = *select_fields(ReportKind::kLv, {"lv_name,data_percent,snap_percent,lv_size"});
  LvLiveState empty_live;
  empty_live.usage = StoreUsage{65536, 16, 16};
  const std::vector<Row> pct_rows = {
      lv_row(pct, {&vg, vg.find_lv("sb64m"), empty_live, path_of, false, std::nullopt}, Units{}),
      lv_row(pct, {&vg, vg.find_lv("sb64m2"), snap_live, path_of, false, std::nullopt}, Units{})};
  CHECK(render(ReportKind::kLv, pct, pct_rows, aligned) ==
        "  LV    |Data% |Snap% |LSize \n"
        "  sb64m |0.00  |0.00  |32.00m\n"
        "  sb64m2|62.76 |62.76 |64.00m\n");
  OutputOptions sep;
  sep.separator = ",";
  sep.headings = false;
  CHECK(render(ReportKind::kLv, fields, {rows[0]}, sep) == "  b64m,vgsrv,owi---s---,64.00m,,,,,,,,\n");
  // --noheadings: the columns are still as wide as their headings, as in
  // lvm2 (Cpy%Sync: 8 wide, not the field's minimum of 6).
  OutputOptions noheadings;
  noheadings.headings = false;
  CHECK(render(ReportKind::kLv, fields, {rows[0]}, noheadings) ==
        "  b64m vgsrv owi---s--- 64.00m                                                    \n");
  CHECK(render(ReportKind::kLv, fields, {}, {}).empty());
  const auto vg_fields = default_fields(ReportKind::kVg);
  CHECK(render(ReportKind::kVg, vg_fields, {vg_row(vg_fields, {&vg}, Units{})}, {}) ==
        "  VG    #PV #LV #SN Attr   VSize  VFree\n"
        "  vgsrv   1   3   2 wz--n- <6.47g 6.31g\n");
  // A short VG name: the VG column is as wide as the name or "VG" (lvm2
  // 2.03 has no larger minimum for it).
  vg::VolumeGroup short_vg = vg;
  short_vg.name = "vgk";
  CHECK(render(ReportKind::kVg, vg_fields, {vg_row(vg_fields, {&short_vg}, Units{})}, {}) ==
        "  VG  #PV #LV #SN Attr   VSize  VFree\n"
        "  vgk   1   3   2 wz--n- <6.47g 6.31g\n");
  short_vg.name = "v";
  CHECK(render(ReportKind::kVg, vg_fields, {vg_row(vg_fields, {&short_vg}, Units{})}, noheadings) ==
        "  v    1   3   2 wz--n- <6.47g 6.31g\n");
}

TEST_CASE("JSON layout matches lvm2", "[report][json]") {
  const vg::VolumeGroup vg = seed_vg();
  auto fields = *select_fields(ReportKind::kVg, {"vg_name,vg_extent_count,vg_attr"});
  OutputOptions json;
  json.json = true;
  CHECK(render(ReportKind::kVg, fields, {vg_row(fields, {&vg}, Units{})}, json) ==
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"vg\": [\n"
        "                  {\"vg_name\":\"vgsrv\", \"vg_extent_count\":\"207\", \"vg_attr\":\"wz--n-\"}\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "  }\n");
  CHECK(render(ReportKind::kLv, default_fields(ReportKind::kLv), {}, json) ==
        "  {\n      \"report\": [\n          {\n              \"lv\": [\n              ]\n          }\n      "
        "]\n  }\n");
}

TEST_CASE("snapshot percentages follow lvm2") {
  CHECK(report::snapshot_data_percent({131072, 16, 16}, true) == 0.0);
  CHECK(report::snapshot_data_percent({131072, 24, 16}, true) == Approx(0.018310546875));
  CHECK(report::snapshot_data_percent({131072, 131072, 400}, true) == 100.0);
  CHECK(report::snapshot_data_percent({131072, 131071, 400}, true) == 99.99);
  CHECK(report::snapshot_data_percent({8388608, 17, 16}, true) == 0.01);
  CHECK(report::snapshot_data_percent({131072, 24, 16}, false) == 100.0);
}
