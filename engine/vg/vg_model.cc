#include "cowsnap/vg/vg_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <initializer_list>
#include <map>
#include <set>

#include "cowsnap/vg/lvm_id.h"

namespace cowsnap::vg {

uint64_t LogicalVolume::extent_count() const {
  uint64_t n = 0;
  for (const Segment& s : segments) n += s.extent_count;
  return n;
}

bool LogicalVolume::has_status(std::string_view word) const {
  return std::find(status.begin(), status.end(), word) != status.end();
}

bool PhysicalVolume::allocatable() const {
  return std::find(status.begin(), status.end(), "ALLOCATABLE") != status.end();
}

const PhysicalVolume* VolumeGroup::find_pv(std::string_view pv_name) const {
  for (const PhysicalVolume& pv : pvs) {
    if (pv.name == pv_name) return &pv;
  }
  return nullptr;
}

const PhysicalVolume* VolumeGroup::find_pv_by_id(std::string_view pv_id) const {
  auto want = parse_lvm_id(pv_id);
  if (!want.ok()) return nullptr;
  for (const PhysicalVolume& pv : pvs) {
    auto have = parse_lvm_id(pv.id);
    if (have.ok() && *have == *want) return &pv;
  }
  return nullptr;
}

const LogicalVolume* VolumeGroup::find_lv(std::string_view lv_name) const {
  for (const LogicalVolume& lv : lvs) {
    if (lv.name == lv_name) return &lv;
  }
  return nullptr;
}

LogicalVolume* VolumeGroup::find_lv(std::string_view lv_name) {
  for (LogicalVolume& lv : lvs) {
    if (lv.name == lv_name) return &lv;
  }
  return nullptr;
}

uint64_t VolumeGroup::pe_total() const {
  uint64_t n = 0;
  for (const PhysicalVolume& pv : pvs) n += pv.pe_count;
  return n;
}

bool VolumeGroup::writable() const {
  auto has = [&](std::string_view w) { return std::find(status.begin(), status.end(), w) != status.end(); };
  return has("WRITE") && has("RESIZEABLE");
}

// ---------------------------------------------------------------- snapshots

std::vector<SnapshotRef> snapshots(const VolumeGroup& vg) {
  std::vector<SnapshotRef> out;
  for (const LogicalVolume& lv : vg.lvs) {
    if (lv.segments.size() != 1 || !lv.segments.front().is_snapshot()) continue;
    const Segment& s = lv.segments.front();
    out.push_back({lv.name, s.cow_store, s.origin, s.chunk_size, s.extent_count, s.merging});
  }
  return out;
}

std::vector<SnapshotRef> snapshots_of(const VolumeGroup& vg, std::string_view origin_lv) {
  std::vector<SnapshotRef> out;
  for (SnapshotRef& s : snapshots(vg)) {
    if (s.origin_lv == origin_lv) out.push_back(std::move(s));
  }
  return out;
}

std::optional<SnapshotRef> snapshot_for(const VolumeGroup& vg, std::string_view lv_name) {
  for (SnapshotRef& s : snapshots(vg)) {
    if (s.internal_lv == lv_name || s.cow_lv == lv_name) return std::move(s);
  }
  return std::nullopt;
}

LvRole lv_role(const VolumeGroup& vg, std::string_view lv_name) {
  const LogicalVolume* lv = vg.find_lv(lv_name);
  if (lv == nullptr) return LvRole::kOther;
  for (const SnapshotRef& s : snapshots(vg)) {
    if (s.internal_lv == lv_name) return LvRole::kSnapshotInternal;
    if (s.cow_lv == lv_name) return LvRole::kSnapshotCow;
  }
  for (const Segment& s : lv->segments) {
    if (!s.is_striped()) return LvRole::kOther;
  }
  return snapshots_of(vg, lv_name).empty() ? LvRole::kPlain : LvRole::kOrigin;
}

bool lv_user_visible(const VolumeGroup& vg, const LogicalVolume& lv) {
  for (const SnapshotRef& s : snapshots(vg)) {
    if (s.internal_lv == lv.name) return false;
    if (s.cow_lv == lv.name) {
      if (s.merging) return false;  // lvm2 hides a merging snapshot: `lvs -a` shows "[snap]"
      const LogicalVolume* origin = vg.find_lv(s.origin_lv);
      return origin != nullptr && origin->visible();
    }
  }
  return lv.visible();
}

void sort_lvs_like_lvm2(VolumeGroup& vg) {
  std::vector<bool> visible;
  for (const LogicalVolume& lv : vg.lvs) visible.push_back(lv_user_visible(vg, lv));
  std::vector<LogicalVolume> sorted;
  sorted.reserve(vg.lvs.size());
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < vg.lvs.size(); ++i) {
      if (visible[i] == (pass == 0)) sorted.push_back(std::move(vg.lvs[i]));
    }
  }
  vg.lvs = std::move(sorted);
}

// --------------------------------------------------------------- validation

Status validate_vg(const VolumeGroup& vg) {
  auto bad = [&](const std::string& what) {
    return Status::Error(EINVAL, fmt::format("volume group {}: {}", vg.name, what));
  };
  if (!parse_lvm_id(vg.id).ok()) return bad(fmt::format("invalid id \"{}\"", vg.id));
  if (vg.extent_size == 0) return bad("extent_size is 0");
  std::set<std::string> names;
  for (const PhysicalVolume& pv : vg.pvs) {
    if (!names.insert(pv.name).second) return bad(fmt::format("duplicate PV {}", pv.name));
    if (!parse_lvm_id(pv.id).ok()) return bad(fmt::format("PV {} has invalid id \"{}\"", pv.name, pv.id));
  }
  names.clear();
  // Per PV, the extents in use: [first, end) -> LV name.
  std::map<std::string, std::vector<std::tuple<uint64_t, uint64_t, std::string>>> used;
  for (const LogicalVolume& lv : vg.lvs) {
    if (!names.insert(lv.name).second) return bad(fmt::format("duplicate LV {}", lv.name));
    if (!parse_lvm_id(lv.id).ok()) return bad(fmt::format("LV {} has invalid id \"{}\"", lv.name, lv.id));
    uint64_t next = 0;
    for (const Segment& s : lv.segments) {
      if (s.start_extent != next) {
        return bad(
            fmt::format("LV {}: segment at extent {} should start at {}", lv.name, s.start_extent, next));
      }
      if (s.extent_count == 0) return bad(fmt::format("LV {}: empty segment", lv.name));
      next += s.extent_count;
      if (s.is_striped()) {
        if (s.stripes.empty() || s.extent_count % s.stripes.size() != 0) {
          return bad(fmt::format("LV {}: {} extents do not split into {} stripes", lv.name, s.extent_count,
                                 s.stripes.size()));
        }
        const uint64_t area = s.extent_count / s.stripes.size();
        for (const Stripe& st : s.stripes) {
          const PhysicalVolume* pv = vg.find_pv(st.pv_name);
          if (pv == nullptr) return bad(fmt::format("LV {} uses unknown PV {}", lv.name, st.pv_name));
          if (st.first_pe + area > pv->pe_count) {
            return bad(fmt::format("LV {} uses extents {}-{} of {}, which has {}", lv.name, st.first_pe,
                                   st.first_pe + area - 1, st.pv_name, pv->pe_count));
          }
          used[st.pv_name].emplace_back(st.first_pe, st.first_pe + area, lv.name);
        }
      } else if (s.is_snapshot()) {
        if (vg.find_lv(s.origin) == nullptr) {
          return bad(fmt::format("snapshot {} names unknown origin {}", lv.name, s.origin));
        }
        if (vg.find_lv(s.cow_store) == nullptr) {
          return bad(fmt::format("snapshot {} names unknown COW store {}", lv.name, s.cow_store));
        }
        if (s.chunk_size == 0) return bad(fmt::format("snapshot {} has chunk_size 0", lv.name));
      }
    }
  }
  for (auto& [pv, ranges] : used) {
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i) {
      if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1])) {
        return bad(fmt::format("extent {} of {} is used by both {} and {}", std::get<0>(ranges[i]), pv,
                               std::get<2>(ranges[i - 1]), std::get<2>(ranges[i])));
      }
    }
  }
  return Status::Ok();
}

// ------------------------------------------------------------ text -> model

namespace {

// Reads typed keys out of one section, remembering which it consumed, so
// that the rest can be kept as `extra`.
class SectionReader {
 public:
  SectionReader(const ConfigSection& s, std::string where) : s_(s), where_(std::move(where)) {}

  Status error(std::string_view what) const {
    return Status::Error(EINVAL, fmt::format("{}: {}", where_, what));
  }

  Result<std::optional<int64_t>> opt_int(std::string_view key) {
    const ConfigValue* v = take(key);
    if (v == nullptr) return std::optional<int64_t>{};
    if (!v->is_int()) return error(fmt::format("{} must be a number", key));
    return std::optional<int64_t>{v->as_int()};
  }
  Result<uint64_t> req_uint(std::string_view key) {
    COWSNAP_ASSIGN_OR_RETURN(auto v, opt_int(key));
    if (!v) return error(fmt::format("missing {}", key));
    if (*v < 0) return error(fmt::format("{} must not be negative", key));
    return static_cast<uint64_t>(*v);
  }
  Result<uint64_t> uint_or(std::string_view key, uint64_t fallback) {
    COWSNAP_ASSIGN_OR_RETURN(auto v, opt_int(key));
    if (!v) return fallback;
    if (*v < 0) return error(fmt::format("{} must not be negative", key));
    return static_cast<uint64_t>(*v);
  }
  Result<std::optional<std::string>> opt_string(std::string_view key) {
    const ConfigValue* v = take(key);
    if (v == nullptr) return std::optional<std::string>{};
    if (!v->is_string()) return error(fmt::format("{} must be a string", key));
    return std::optional<std::string>{v->as_string()};
  }
  Result<std::string> req_string(std::string_view key) {
    COWSNAP_ASSIGN_OR_RETURN(auto v, opt_string(key));
    if (!v) return error(fmt::format("missing {}", key));
    return std::move(*v);
  }
  Result<std::vector<std::string>> string_list(std::string_view key) {
    const ConfigValue* v = take(key);
    std::vector<std::string> out;
    if (v == nullptr) return out;
    if (!v->is_array()) return error(fmt::format("{} must be a list of strings", key));
    for (const ConfigValue& item : v->items()) {
      if (!item.is_string()) return error(fmt::format("{} must be a list of strings", key));
      out.push_back(item.as_string());
    }
    return out;
  }
  // The first entry of that key. Later ones are taken too, so they are
  // dropped rather than kept in rest(): lvm2 ignores a duplicate key
  // ("Ignoring duplicate config node"), and kept as extra it would be
  // written before the model's own value and win when read back.
  const ConfigValue* take(std::string_view key) {
    const ConfigValue* first = nullptr;
    for (size_t i = 0; i < s_.entries.size(); ++i) {
      if (!s_.entries[i].is_section && s_.entries[i].key == key) {
        taken_.insert(i);
        if (first == nullptr) first = &s_.entries[i].value;
      }
    }
    return first;
  }
  const ConfigSection* take_section(std::string_view key) {
    const ConfigSection* first = nullptr;
    for (size_t i = 0; i < s_.entries.size(); ++i) {
      if (s_.entries[i].is_section && s_.entries[i].key == key) {
        taken_.insert(i);
        if (first == nullptr) first = &s_.entries[i].section;
      }
    }
    return first;
  }
  void mark_taken(size_t i) { taken_.insert(i); }
  [[nodiscard]] const ConfigSection& section() const { return s_; }
  [[nodiscard]] ConfigSection rest() const {
    ConfigSection out;
    for (size_t i = 0; i < s_.entries.size(); ++i) {
      if (taken_.count(i) == 0) out.entries.push_back(s_.entries[i]);
    }
    return out;
  }

 private:
  const ConfigSection& s_;
  std::string where_;
  std::set<size_t> taken_;
};

Result<Segment> segment_from_config(const ConfigSection& sec, const std::string& where) {
  SectionReader r(sec, where);
  Segment s;
  COWSNAP_ASSIGN_OR_RETURN(s.start_extent, r.req_uint("start_extent"));
  COWSNAP_ASSIGN_OR_RETURN(s.extent_count, r.req_uint("extent_count"));
  COWSNAP_ASSIGN_OR_RETURN(s.type, r.req_string("type"));
  if (s.is_striped()) {
    COWSNAP_ASSIGN_OR_RETURN(uint64_t count, r.req_uint("stripe_count"));
    COWSNAP_ASSIGN_OR_RETURN(s.stripe_size, r.uint_or("stripe_size", 0));
    const ConfigValue* stripes = r.take("stripes");
    if (stripes == nullptr || !stripes->is_array()) return r.error("missing stripes");
    const auto& items = stripes->items();
    if (items.size() != 2 * count) {
      return r.error(fmt::format("stripes lists {} entries for stripe_count {}", items.size() / 2, count));
    }
    for (size_t i = 0; i < items.size(); i += 2) {
      if (!items[i].is_string() || !items[i + 1].is_int() || items[i + 1].as_int() < 0) {
        return r.error("stripes must be pairs of PV name and extent");
      }
      s.stripes.push_back({items[i].as_string(), static_cast<uint64_t>(items[i + 1].as_int())});
    }
  } else if (s.is_snapshot()) {
    COWSNAP_ASSIGN_OR_RETURN(s.chunk_size, r.req_uint("chunk_size"));
    COWSNAP_ASSIGN_OR_RETURN(s.origin, r.req_string("origin"));
    COWSNAP_ASSIGN_OR_RETURN(auto cow, r.opt_string("cow_store"));
    COWSNAP_ASSIGN_OR_RETURN(auto merging, r.opt_string("merging_store"));
    if (cow && merging) return r.error("both cow_store and merging_store are set");
    if (!cow && !merging) return r.error("missing cow_store");
    s.merging = merging.has_value();
    s.cow_store = cow ? *cow : *merging;
  }
  s.extra = r.rest();
  return s;
}

bool is_segment_key(std::string_view key, uint64_t& index) {
  if (key.size() <= 7 || key.substr(0, 7) != "segment") return false;
  uint64_t n = 0;
  for (char c : key.substr(7)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  index = n;
  return true;
}

Result<LogicalVolume> lv_from_config(const std::string& name, const ConfigSection& sec,
                                     const std::string& vg_name) {
  const std::string where = fmt::format("{}/{}", vg_name, name);
  SectionReader r(sec, where);
  LogicalVolume lv;
  lv.name = name;
  COWSNAP_ASSIGN_OR_RETURN(lv.id, r.req_string("id"));
  COWSNAP_ASSIGN_OR_RETURN(lv.status, r.string_list("status"));
  COWSNAP_ASSIGN_OR_RETURN(lv.flags, r.string_list("flags"));
  COWSNAP_ASSIGN_OR_RETURN(lv.creation_time, r.opt_int("creation_time"));
  COWSNAP_ASSIGN_OR_RETURN(lv.creation_host, r.opt_string("creation_host"));
  COWSNAP_ASSIGN_OR_RETURN(uint64_t segment_count, r.req_uint("segment_count"));
  std::vector<std::pair<uint64_t, Segment>> segs;
  for (size_t i = 0; i < sec.entries.size(); ++i) {
    const ConfigEntry& e = sec.entries[i];
    uint64_t index = 0;
    if (!e.is_section || !is_segment_key(e.key, index)) continue;
    r.mark_taken(i);
    COWSNAP_ASSIGN_OR_RETURN(Segment s, segment_from_config(e.section, where + "/" + e.key));
    segs.emplace_back(index, std::move(s));
  }
  if (segs.size() != segment_count) {
    return r.error(fmt::format("segment_count is {} but {} segments are listed", segment_count, segs.size()));
  }
  std::sort(segs.begin(), segs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [index, s] : segs) lv.segments.push_back(std::move(s));
  lv.extra = r.rest();
  return lv;
}

Result<PhysicalVolume> pv_from_config(const std::string& name, const ConfigSection& sec,
                                      const std::string& vg_name) {
  SectionReader r(sec, fmt::format("{}/{}", vg_name, name));
  PhysicalVolume pv;
  pv.name = name;
  COWSNAP_ASSIGN_OR_RETURN(pv.id, r.req_string("id"));
  COWSNAP_ASSIGN_OR_RETURN(auto device, r.opt_string("device"));
  pv.device = device.value_or("");
  COWSNAP_ASSIGN_OR_RETURN(pv.status, r.string_list("status"));
  COWSNAP_ASSIGN_OR_RETURN(pv.flags, r.string_list("flags"));
  COWSNAP_ASSIGN_OR_RETURN(pv.dev_size, r.uint_or("dev_size", 0));
  COWSNAP_ASSIGN_OR_RETURN(pv.pe_start, r.req_uint("pe_start"));
  COWSNAP_ASSIGN_OR_RETURN(pv.pe_count, r.req_uint("pe_count"));
  pv.extra = r.rest();
  return pv;
}

}  // namespace

Result<VolumeGroup> vg_from_config(std::string_view vg_name, const ConfigSection& sec) {
  VolumeGroup vg;
  vg.name = std::string(vg_name);
  SectionReader r(sec, vg.name);
  COWSNAP_ASSIGN_OR_RETURN(vg.id, r.req_string("id"));
  COWSNAP_ASSIGN_OR_RETURN(vg.seqno, r.req_uint("seqno"));
  COWSNAP_ASSIGN_OR_RETURN(auto format, r.opt_string("format"));
  vg.format = format.value_or("lvm2");
  COWSNAP_ASSIGN_OR_RETURN(vg.status, r.string_list("status"));
  COWSNAP_ASSIGN_OR_RETURN(vg.flags, r.string_list("flags"));
  COWSNAP_ASSIGN_OR_RETURN(vg.extent_size, r.req_uint("extent_size"));
  COWSNAP_ASSIGN_OR_RETURN(vg.max_lv, r.uint_or("max_lv", 0));
  COWSNAP_ASSIGN_OR_RETURN(vg.max_pv, r.uint_or("max_pv", 0));
  COWSNAP_ASSIGN_OR_RETURN(vg.metadata_copies, r.uint_or("metadata_copies", 0));
  const ConfigSection* pvs = r.take_section("physical_volumes");
  if (pvs == nullptr) return r.error("missing physical_volumes");
  for (const ConfigEntry& e : pvs->entries) {
    if (!e.is_section) return r.error(fmt::format("physical_volumes: unexpected value {}", e.key));
    COWSNAP_ASSIGN_OR_RETURN(PhysicalVolume pv, pv_from_config(e.key, e.section, vg.name));
    vg.pvs.push_back(std::move(pv));
  }
  if (const ConfigSection* lvs = r.take_section("logical_volumes")) {
    for (const ConfigEntry& e : lvs->entries) {
      if (!e.is_section) return r.error(fmt::format("logical_volumes: unexpected value {}", e.key));
      COWSNAP_ASSIGN_OR_RETURN(LogicalVolume lv, lv_from_config(e.key, e.section, vg.name));
      vg.lvs.push_back(std::move(lv));
    }
  }
  vg.extra = r.rest();
  sort_lvs_like_lvm2(vg);
  return vg;
}

Result<VolumeGroup> parse_vg_text(std::string_view text) {
  COWSNAP_ASSIGN_OR_RETURN(ConfigSection root, parse_config(text));
  for (const ConfigEntry& e : root.entries) {
    if (e.is_section) return vg_from_config(e.key, e.section);
  }
  return Status::Error(EINVAL, "metadata text holds no volume group");
}

// ------------------------------------------------------------ model -> text

namespace {

ConfigValue uint_value(uint64_t v) { return ConfigValue::Int(static_cast<int64_t>(v)); }

void add(ConfigSection& s, std::string key, ConfigValue v) {
  ConfigEntry e;
  e.key = std::move(key);
  e.value = std::move(v);
  s.entries.push_back(std::move(e));
}

void add_extra(ConfigSection& s, const ConfigSection& extra, bool sections) {
  for (const ConfigEntry& e : extra.entries) {
    if (e.is_section == sections) s.entries.push_back(e);
  }
}

ConfigSection segment_to_config(const Segment& seg) {
  ConfigSection s;
  add(s, "start_extent", uint_value(seg.start_extent));
  add(s, "extent_count", uint_value(seg.extent_count));
  add(s, "type", ConfigValue::String(seg.type));
  if (seg.is_striped()) {
    add(s, "stripe_count", uint_value(seg.stripes.size()));
    if (seg.stripes.size() > 1 || seg.stripe_size != 0) add(s, "stripe_size", uint_value(seg.stripe_size));
    std::vector<ConfigValue> items;
    for (const Stripe& st : seg.stripes) {
      items.push_back(ConfigValue::String(st.pv_name));
      items.push_back(uint_value(st.first_pe));
    }
    add(s, "stripes", ConfigValue::Array(std::move(items)));
  } else if (seg.is_snapshot()) {
    add(s, "chunk_size", uint_value(seg.chunk_size));
    add(s, "origin", ConfigValue::String(seg.origin));
    add(s, seg.merging ? "merging_store" : "cow_store", ConfigValue::String(seg.cow_store));
  }
  add_extra(s, seg.extra, false);
  add_extra(s, seg.extra, true);
  return s;
}

}  // namespace

ConfigSection vg_to_config(const VolumeGroup& unsorted) {
  VolumeGroup vg = unsorted;
  sort_lvs_like_lvm2(vg);
  ConfigSection s;
  add(s, "id", ConfigValue::String(vg.id));
  add(s, "seqno", uint_value(vg.seqno));
  add(s, "format", ConfigValue::String(vg.format));
  add(s, "status", ConfigValue::StringArray(vg.status));
  add(s, "flags", ConfigValue::StringArray(vg.flags));
  add(s, "extent_size", uint_value(vg.extent_size));
  add(s, "max_lv", uint_value(vg.max_lv));
  add(s, "max_pv", uint_value(vg.max_pv));
  add(s, "metadata_copies", uint_value(vg.metadata_copies));
  add_extra(s, vg.extra, false);
  ConfigSection& pvs = s.add_section("physical_volumes");
  for (const PhysicalVolume& pv : vg.pvs) {
    ConfigSection& p = pvs.add_section(pv.name);
    add(p, "id", ConfigValue::String(pv.id));
    add(p, "device", ConfigValue::String(pv.device));
    add(p, "status", ConfigValue::StringArray(pv.status));
    add(p, "flags", ConfigValue::StringArray(pv.flags));
    add(p, "dev_size", uint_value(pv.dev_size));
    add(p, "pe_start", uint_value(pv.pe_start));
    add(p, "pe_count", uint_value(pv.pe_count));
    add_extra(p, pv.extra, false);
    add_extra(p, pv.extra, true);
  }
  if (!vg.lvs.empty()) {
    ConfigSection& lvs = s.add_section("logical_volumes");
    for (const LogicalVolume& lv : vg.lvs) {
      ConfigSection& l = lvs.add_section(lv.name);
      add(l, "id", ConfigValue::String(lv.id));
      add(l, "status", ConfigValue::StringArray(lv.status));
      add(l, "flags", ConfigValue::StringArray(lv.flags));
      if (lv.creation_time) add(l, "creation_time", ConfigValue::Int(*lv.creation_time));
      if (lv.creation_host) add(l, "creation_host", ConfigValue::String(*lv.creation_host));
      add_extra(l, lv.extra, false);
      add(l, "segment_count", uint_value(lv.segments.size()));
      for (size_t i = 0; i < lv.segments.size(); ++i) {
        ConfigEntry e;
        e.key = fmt::format("segment{}", i + 1);
        e.is_section = true;
        e.section = segment_to_config(lv.segments[i]);
        l.entries.push_back(std::move(e));
      }
      add_extra(l, lv.extra, true);
    }
  }
  add_extra(s, vg.extra, true);
  return s;
}

std::string vg_to_text(const VolumeGroup& vg, TextStyle style, const TextTrailer& trailer) {
  std::string body = vg.name + " {\n";
  append_config(body, vg_to_config(vg), style, 1);
  body += "}\n";
  std::string tail;
  tail += "# Generated by cowsnap\n\n";
  tail += "contents = \"Text Format Volume Group\"\nversion = 1\n\n";
  tail += "description = " + quote_config_string(trailer.description) + "\n\n";
  tail += "creation_host = " + quote_config_string(trailer.creation_host) + "\n";
  tail += fmt::format("creation_time = {}\n\n", trailer.creation_time);
  return style == TextStyle::kDisk ? body + tail : tail + body;
}

}  // namespace cowsnap::vg
