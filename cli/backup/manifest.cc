#include "manifest.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cowsnap::backup {

using json = nlohmann::json;
namespace fs = std::filesystem;

Digest digest_of(std::span<const uint8_t> data) { return XXH3_128bits(data.data(), data.size()); }

std::string to_hex(const Digest& d) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    out[2 * i] = kHex[canonical.digest[i] >> 4];
    out[2 * i + 1] = kHex[canonical.digest[i] & 15];
  }
  return out;
}

Result<Digest> digest_from_hex(const std::string& hex) {
  if (hex.size() != 32) return Status::Error(EINVAL, fmt::format("digest \"{}\" is not 32 hex digits", hex));
  XXH128_canonical_t canonical;
  for (size_t i = 0; i < 16; ++i) {
    unsigned value = 0;
    for (size_t k = 0; k < 2; ++k) {
      const char c = hex[2 * i + k];
      unsigned v = 0;
      if (c >= '0' && c <= '9') {
        v = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v = static_cast<unsigned>(c - 'a' + 10);
      } else {
        return Status::Error(EINVAL, fmt::format("digest \"{}\" is not 32 hex digits", hex));
      }
      value = value * 16 + v;
    }
    canonical.digest[i] = static_cast<unsigned char>(value);
  }
  return XXH128_hashFromCanonical(&canonical);
}

bool same_digest(const Digest& a, const Digest& b) { return XXH128_isEqual(a, b) != 0; }

Digest image_digest(std::span<const Digest> chunk_digests) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  for (const Digest& d : chunk_digests) {
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, d);
    XXH3_128bits_update(state, canonical.digest, sizeof canonical.digest);
  }
  const Digest out = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  return out;
}

uint64_t Manifest::changed_chunks() const {
  uint64_t n = 0;
  for (const ChunkRun& r : changed) n += r.count;
  return n;
}

uint64_t Manifest::chunk_length(uint64_t i) const {
  return std::min(chunk_bytes, size_bytes - i * chunk_bytes);
}

json summary_of(const Manifest& m) {
  return json{{"backup", m.name},
              {"kind", m.incremental ? "incremental" : "full"},
              {"parent", m.incremental ? json(m.parent) : json(nullptr)},
              {"vg", m.vg},
              {"lv", m.lv},
              {"size_bytes", m.size_bytes},
              {"chunk_bytes", m.chunk_bytes},
              {"changed_chunks", m.incremental ? json(m.changed_chunks()) : json(nullptr)},
              {"snapshot", m.snapshot},
              {"snapshot_time", m.snapshot_time},
              {"created", m.created},
              {"tracker", m.tracker.empty() ? json(nullptr) : json(m.tracker)},
              {"copied_bytes", m.copied_bytes},
              {"zero_bytes", m.zero_bytes},
              {"seconds", m.seconds},
              {"image_digest", to_hex(m.image)}};
}

std::string to_json_text(const Manifest& m) {
  json digests = json::array();
  for (const Digest& d : m.digests) digests.push_back(to_hex(d));
  json changed = json::array();
  for (const ChunkRun& r : m.changed) changed.push_back(json::array({r.first, r.count}));
  json j = summary_of(m);
  j["format"] = kManifestFormat;
  j["image_file"] = m.data_file();
  j["changed"] = std::move(changed);
  j["chunk_digests"] = std::move(digests);
  return j.dump(1) + "\n";
}

namespace {

Status bad(const std::string& where, const std::string& what) {
  return Status::Error(EINVAL, fmt::format("{}: {}", where, what));
}

}  // namespace

Result<Manifest> manifest_from_json_text(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad(where, "not a JSON object (damaged manifest)");
  if (j.value("format", std::string()) != kManifestFormat) {
    return bad(where, fmt::format("format is not \"{}\"", kManifestFormat));
  }
  Manifest m;
  try {
    m.name = j.at("backup").get<std::string>();
    const std::string kind = j.at("kind").get<std::string>();
    if (kind != "full" && kind != "incremental") return bad(where, fmt::format("unknown kind \"{}\"", kind));
    m.incremental = kind == "incremental";
    if (m.incremental) m.parent = j.at("parent").get<std::string>();
    m.vg = j.at("vg").get<std::string>();
    m.lv = j.at("lv").get<std::string>();
    m.size_bytes = j.at("size_bytes").get<uint64_t>();
    m.chunk_bytes = j.at("chunk_bytes").get<uint64_t>();
    m.snapshot = j.at("snapshot").get<std::string>();
    m.snapshot_time = j.at("snapshot_time").get<std::string>();
    m.created = j.at("created").get<std::string>();
    if (!j.at("tracker").is_null()) m.tracker = j.at("tracker").get<std::string>();
    m.copied_bytes = j.at("copied_bytes").get<uint64_t>();
    m.zero_bytes = j.at("zero_bytes").get<uint64_t>();
    m.seconds = j.at("seconds").get<double>();
    for (const json& r : j.at("changed")) {
      m.changed.push_back(ChunkRun{r.at(0).get<uint64_t>(), r.at(1).get<uint64_t>()});
    }
    for (const json& d : j.at("chunk_digests")) {
      COWSNAP_ASSIGN_OR_RETURN(Digest digest, digest_from_hex(d.get<std::string>()));
      m.digests.push_back(digest);
    }
    COWSNAP_ASSIGN_OR_RETURN(m.image, digest_from_hex(j.at("image_digest").get<std::string>()));
  } catch (const json::exception& e) {
    return bad(where, fmt::format("malformed field: {}", e.what()));
  }
  if (m.chunk_bytes == 0 || m.chunk_bytes % 512 != 0)
    return bad(where, "chunk_bytes is not a multiple of 512");
  if (m.digests.size() != m.chunk_count()) {
    return bad(where, fmt::format("{} chunk digests for {} chunks", m.digests.size(), m.chunk_count()));
  }
  if (!same_digest(image_digest(m.digests), m.image))
    return bad(where, "image_digest does not match the chunk digests");
  uint64_t next = 0;
  for (const ChunkRun& r : m.changed) {
    if (r.count == 0 || r.first < next || r.first + r.count > m.chunk_count()) {
      return bad(where, "changed chunk runs are not ascending runs within the image");
    }
    next = r.first + r.count;
  }
  return m;
}

Result<Manifest> read_manifest(const std::string& backup_dir) {
  const std::string path = backup_dir + "/" + kManifestFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(fmt::format("cannot read {}", path));
  std::stringstream text;
  text << in.rdbuf();
  return manifest_from_json_text(text.str(), path);
}

Result<std::vector<Manifest>> list_backups(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::Error(ENOENT, fmt::format("backup directory {} does not exist", dir));
  }
  std::vector<Manifest> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || !e.is_directory()) continue;
    COWSNAP_ASSIGN_OR_RETURN(Manifest m, read_manifest(e.path().string()));
    if (m.name != name) {
      return Status::Error(EINVAL, fmt::format("{}/{}: the manifest names backup \"{}\"", dir, name, m.name));
    }
    out.push_back(std::move(m));
  }
  if (ec) return Status::Error(ec.value(), fmt::format("cannot list {}: {}", dir, ec.message()));
  std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) {
    return a.created != b.created ? a.created < b.created : a.name < b.name;
  });
  return out;
}

Result<std::vector<Manifest>> chain_of(const std::vector<Manifest>& backups, const std::string& target) {
  std::vector<Manifest> chain;
  std::string want = target;
  for (;;) {
    auto it = std::find_if(backups.begin(), backups.end(), [&](const Manifest& m) { return m.name == want; });
    if (it == backups.end()) {
      return Status::Error(ENOENT, chain.empty()
                                       ? fmt::format("no backup named \"{}\"", want)
                                       : fmt::format("backup {} needs its parent {}, which is missing",
                                                     chain.back().name, want));
    }
    chain.push_back(*it);
    if (!it->incremental) break;
    if (chain.size() > backups.size()) return Status::Error(ELOOP, "the backups' parents form a loop");
    want = it->parent;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

namespace {

// "2026-12-02T15:22:00Z", "2026-12-02T15:22:00", "2026-12-02 15:22:00",
// "2026-12-02 15:22" -> the manifests' form, seconds included.
std::optional<std::string> normalized_time(const std::string& at) {
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    std::tm tm{};
    const char* end = ::strptime(at.c_str(), format, &tm);
    if (end == nullptr) continue;
    const std::string rest(end);
    if (!rest.empty() && rest != "Z") continue;
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.999Z", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return std::nullopt;
}

}  // namespace

Result<Manifest> pick_backup(const std::vector<Manifest>& backups, const std::string& at) {
  if (backups.empty()) return Status::Error(ENOENT, "the directory holds no complete backup");
  if (at.empty()) return backups.back();
  for (const Manifest& m : backups) {
    if (m.name == at) return m;
  }
  const std::optional<std::string> when = normalized_time(at);
  if (!when) {
    return Status::Error(
        EINVAL, fmt::format("--at {}: neither a backup's name nor a time (YYYY-MM-DDTHH:MM:SS, UTC)", at));
  }
  const Manifest* found = nullptr;
  for (const Manifest& m : backups) {
    if (m.created <= *when) found = &m;
  }
  if (found == nullptr) return Status::Error(ENOENT, fmt::format("no backup was made at or before {}", at));
  return *found;
}

std::string utc_now_iso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string backup_name_for(const std::string& iso_time, bool incremental) {
  // "2026-12-02T15:22:00.123Z" -> "20261202T152200Z"
  std::string compact;
  for (char c : iso_time.substr(0, 19)) {
    if (c != '-' && c != ':') compact += c;
  }
  return compact + "Z-" + (incremental ? "incr" : "full");
}

}  // namespace cowsnap::backup
