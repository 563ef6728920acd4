#include "cowsnap/vg/names.h"

#include <fmt/format.h>

#include <cerrno>

namespace cowsnap::vg {
namespace {

// Checked against lvm2 2.03.16's lvcreate (apply_lvname_restrictions).
constexpr std::string_view kReservedPrefixes[] = {"snapshot", "pvmove"};
constexpr std::string_view kReservedStrings[] = {
    "_cdata",  "_cmeta", "_corig", "_cpool", "_cvol",    "_wcorig", "_mlog",  "_mimage", "_pmspare",
    "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata",  "_imeta", "_iorig"};

bool valid_chars(std::string_view name) {
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == '+';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool lv_name_well_formed(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameChars && name.front() != '-' && name != "." &&
         name != ".." && valid_chars(name);
}

namespace {

Status check_common(std::string_view what, std::string_view name) {
  if (name.empty()) return Status::Error(EINVAL, fmt::format("{} name is empty", what));
  if (name.size() > kMaxNameChars) {
    return Status::Error(EINVAL, fmt::format("{} name \"{}\" is invalid: name length exceeds maximum "
                                             "limit of {}",
                                             what, name, kMaxNameChars));
  }
  if (name.front() == '-' || name == "." || name == ".." || !valid_chars(name)) {
    return Status::Error(EINVAL, fmt::format("{} name \"{}\" is invalid: valid characters are "
                                             "[a-zA-Z0-9.-_+], not starting with '-', not \".\" or \"..\"",
                                             what, name));
  }
  return Status::Ok();
}

}  // namespace

Status validate_vg_name(std::string_view name) { return check_common("Volume group", name); }

Status validate_lv_name(std::string_view vg_name, std::string_view lv_name) {
  COWSNAP_RETURN_IF_ERROR(check_common("Logical volume", lv_name));
  for (std::string_view p : kReservedPrefixes) {
    if (lv_name.substr(0, p.size()) == p) {
      return Status::Error(EINVAL, fmt::format("Names starting \"{}\" are reserved. Please choose a "
                                               "different LV name.",
                                               p));
    }
  }
  for (std::string_view s : kReservedStrings) {
    if (lv_name.find(s) != std::string_view::npos) {
      return Status::Error(EINVAL, fmt::format("Names including \"{}\" are reserved. Please choose a "
                                               "different LV name.",
                                               s));
    }
  }
  // lvm2 also bounds the device-mapper name built from both; it refuses
  // "vg/lv" combinations past this (measured with lvm2 2.03.16).
  if (vg_name.size() + lv_name.size() + 3 > kMaxNameChars + 1) {
    return Status::Error(EINVAL, fmt::format("LV name \"{}/{}\" is too long", vg_name, lv_name));
  }
  return Status::Ok();
}

}  // namespace cowsnap::vg
