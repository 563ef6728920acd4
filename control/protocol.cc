#include "cowsnap/control/protocol.h"

#include <cerrno>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace cowsnap::control {

using nlohmann::json;

namespace {

// Deeper than anything the protocol sends (an lvs response nests 4 levels).
// nlohmann parses iteratively, but copying and dumping a value recurse once
// per level, so a line of a few MiB of '[' would overflow the stack later.
constexpr int kMaxNesting = 64;

bool nested_too_deeply(const std::string& line) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// nlohmann's parse errors quote the bytes last read, which need not be
// UTF-8; a message must be, or encoding the error response throws.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  return out;
}

// The protocol's integers as T. get<T>() would static_cast a JSON float
// (undefined behaviour when it does not fit) and wrap a negative or too
// large integer; here anything but an integer in T's range is EPROTO.
template <typename T>
Result<T> integer(const json& v, const char* key) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (std::in_range<T>(u)) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (std::in_range<T>(i)) return static_cast<T>(i);
  }
  return Status::Error(EPROTO, fmt::format("\"{}\" is not an integer from {} to {}", key,
                                           std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
}

// `key` of object `j` as T, `fallback` when absent.
template <typename T>
Result<T> integer_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  return integer<T>(*it, key);
}

}  // namespace

std::string socket_path(const std::string& root_dir) { return root_dir + "/" + kSocketName; }

Response Response::from_status(const Status& s) {
  Response r;
  r.ok = s.ok();
  r.errnum = s.errnum();
  r.message = s.ok() ? std::string() : s.message();
  return r;
}

Status Response::status() const {
  if (ok) return Status::Ok();
  return Status::Error(errnum != 0 ? errnum : EIO, message.empty() ? "server reported an error" : message);
}

json to_json(const LvState& s) {
  json j = {{"vg", s.vg},
            {"lv", s.lv},
            {"active", s.active},
            {"open", s.open_connections},
            {"size_bytes", s.size_bytes},
            {"snapshot", s.is_snapshot},
            {"snapshot_count", s.snapshot_count},
            {"preferred_block_bytes", s.preferred_block_bytes}};
  if (s.merging) {
    j["merging"] = true;
    j["merge_failed"] = s.merge_failed;
  }
  if (s.is_snapshot) {
    j["origin"] = s.origin;
    j["valid"] = s.valid;
    j["chunk_sectors"] = s.chunk_sectors;
    j["monitored"] = s.monitored;
    j["data_percent"] = s.data_percent;
    if (!s.failure.empty()) j["failure"] = s.failure;
  }
  if (s.usage) {
    j["usage"] = {{"total", s.usage->total_sectors},
                  {"allocated", s.usage->allocated_sectors},
                  {"metadata", s.usage->metadata_sectors}};
  }
  return j;
}

Result<LvState> lv_state_from_json(const json& j) {
  try {
    LvState s;
    s.vg = j.at("vg").get<std::string>();
    s.lv = j.at("lv").get<std::string>();
    s.active = j.value("active", false);
    COWSNAP_ASSIGN_OR_RETURN(s.open_connections, integer_or(j, "open", int64_t{0}));
    COWSNAP_ASSIGN_OR_RETURN(s.size_bytes, integer_or(j, "size_bytes", uint64_t{0}));
    s.is_snapshot = j.value("snapshot", false);
    COWSNAP_ASSIGN_OR_RETURN(s.snapshot_count, integer_or(j, "snapshot_count", int64_t{0}));
    COWSNAP_ASSIGN_OR_RETURN(s.preferred_block_bytes, integer_or(j, "preferred_block_bytes", uint32_t{0}));
    s.merging = j.value("merging", false);
    s.merge_failed = j.value("merge_failed", false);
    if (j.contains("usage")) {
      const json& u = j.at("usage");
      Usage usage;
      COWSNAP_ASSIGN_OR_RETURN(usage.total_sectors, integer<uint64_t>(u.at("total"), "total"));
      COWSNAP_ASSIGN_OR_RETURN(usage.allocated_sectors, integer<uint64_t>(u.at("allocated"), "allocated"));
      COWSNAP_ASSIGN_OR_RETURN(usage.metadata_sectors, integer<uint64_t>(u.at("metadata"), "metadata"));
      s.usage = usage;
    }
    if (s.is_snapshot) {
      s.origin = j.value("origin", std::string());
      s.valid = j.value("valid", true);
      COWSNAP_ASSIGN_OR_RETURN(s.chunk_sectors, integer_or(j, "chunk_sectors", uint32_t{0}));
      s.data_percent = j.value("data_percent", 0.0);
      s.failure = j.value("failure", std::string());
      s.monitored = j.value("monitored", true);
    }
    return s;
  } catch (const json::exception& e) {
    return Status::Error(EPROTO, fmt::format("bad LV state from the server: {}", e.what()));
  }
}

json to_json(const Response& r) {
  json j = r.body.is_object() ? r.body : json::object();
  j["ok"] = r.ok;
  j["errno"] = r.errnum;
  j["message"] = r.message;
  j["notices"] = r.notices;
  return j;
}

Result<Response> response_from_json(const json& j) {
  try {
    Response r;
    r.ok = j.at("ok").get<bool>();
    COWSNAP_ASSIGN_OR_RETURN(r.errnum, integer_or(j, "errno", 0));
    r.message = j.value("message", std::string());
    r.notices = j.value("notices", std::vector<std::string>{});
    r.body = j;
    for (const char* key : {"ok", "errno", "message", "notices"}) r.body.erase(key);
    return r;
  } catch (const json::exception& e) {
    return Status::Error(EPROTO, fmt::format("bad response from the server: {}", e.what()));
  }
}

Result<json> parse_line(const std::string& line) {
  if (nested_too_deeply(line)) {
    return Status::Error(EPROTO,
                         fmt::format("control message is nested more than {} levels deep", kMaxNesting));
  }
  try {
    json j = json::parse(line);
    if (!j.is_object()) return Status::Error(EPROTO, "control message is not a JSON object");
    return j;
  } catch (const json::exception& e) {
    return Status::Error(EPROTO, fmt::format("control message is not valid JSON: {}", printable(e.what())));
  }
}

Result<std::string> string_arg(const json& request, const char* key) {
  auto it = request.find(key);
  if (it == request.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Status::Error(EINVAL, fmt::format("request needs a non-empty string \"{}\"", key));
  }
  return it->get<std::string>();
}

Result<uint64_t> uint_arg(const json& request, const char* key) {
  auto it = request.find(key);
  if (it == request.end() || !it->is_number_unsigned()) {
    return Status::Error(EINVAL, fmt::format("request needs an unsigned integer \"{}\"", key));
  }
  return it->get<uint64_t>();
}

bool bool_arg(const json& request, const char* key, bool fallback) {
  auto it = request.find(key);
  return it != request.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

}  // namespace cowsnap::control
