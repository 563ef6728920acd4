#include "control/protocol.h"

#include <cerrno>

#include <fmt/format.h>

namespace cowsnap::control {

using nlohmann::json;

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
  if (s.is_snapshot) {
    j["origin"] = s.origin;
    j["valid"] = s.valid;
    j["chunk_sectors"] = s.chunk_sectors;
    j["data_percent"] = s.data_percent;
    if (!s.failure.empty()) j["failure"] = s.failure;
    if (s.usage) {
      j["usage"] = {{"total", s.usage->total_sectors},
                    {"allocated", s.usage->allocated_sectors},
                    {"metadata", s.usage->metadata_sectors}};
    }
  }
  return j;
}

Result<LvState> lv_state_from_json(const json& j) {
  try {
    LvState s;
    s.vg = j.at("vg").get<std::string>();
    s.lv = j.at("lv").get<std::string>();
    s.active = j.value("active", false);
    s.open_connections = j.value("open", int64_t{0});
    s.size_bytes = j.value("size_bytes", uint64_t{0});
    s.is_snapshot = j.value("snapshot", false);
    s.snapshot_count = j.value("snapshot_count", int64_t{0});
    s.preferred_block_bytes = j.value("preferred_block_bytes", uint32_t{0});
    if (s.is_snapshot) {
      s.origin = j.value("origin", std::string());
      s.valid = j.value("valid", true);
      s.chunk_sectors = j.value("chunk_sectors", uint32_t{0});
      s.data_percent = j.value("data_percent", 0.0);
      s.failure = j.value("failure", std::string());
      if (j.contains("usage")) {
        const json& u = j.at("usage");
        s.usage = Usage{u.at("total").get<uint64_t>(), u.at("allocated").get<uint64_t>(),
                        u.at("metadata").get<uint64_t>()};
      }
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
    r.errnum = j.value("errno", 0);
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
  try {
    json j = json::parse(line);
    if (!j.is_object()) return Status::Error(EPROTO, "control message is not a JSON object");
    return j;
  } catch (const json::exception& e) {
    return Status::Error(EPROTO, fmt::format("control message is not valid JSON: {}", e.what()));
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
