#include "cowsnap/vg/lvm_id.h"

#include <fmt/format.h>

#include <cerrno>
#include <random>

namespace cowsnap::vg {
namespace {

// lvm2 generates ids from the first 62 characters and accepts all 64.
constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#";
constexpr size_t kGeneratedChars = 62;
// Group lengths of the printed form.
constexpr size_t kGroups[] = {6, 4, 4, 4, 4, 4, 6};

}  // namespace

std::string new_lvm_id() {
  std::random_device rd;
  std::uniform_int_distribution<size_t> pick(0, kGeneratedChars - 1);
  std::string id;
  id.reserve(kLvmIdChars);
  for (size_t i = 0; i < kLvmIdChars; ++i) id.push_back(kAlphabet[pick(rd)]);
  return id;
}

std::string format_lvm_id(std::string_view raw) {
  assert(raw.size() == kLvmIdChars);
  std::string out;
  size_t at = 0;
  for (size_t g : kGroups) {
    if (!out.empty()) out.push_back('-');
    out.append(raw.substr(at, g));
    at += g;
  }
  return out;
}

Result<std::string> parse_lvm_id(std::string_view text) {
  std::string raw;
  for (char c : text) {
    if (c == '-') continue;
    if (kAlphabet.find(c) == std::string_view::npos) {
      return Status::Error(EINVAL, fmt::format("invalid character '{}' in id \"{}\"", c, text));
    }
    raw.push_back(c);
  }
  if (raw.size() != kLvmIdChars) {
    return Status::Error(
        EINVAL, fmt::format("id \"{}\" has {} characters, expected {}", text, raw.size(), kLvmIdChars));
  }
  return raw;
}

}  // namespace cowsnap::vg
