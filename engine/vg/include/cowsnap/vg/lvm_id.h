// lvm2 identifiers (VG, PV and LV UUIDs): 32 characters from lvm2's
// alphabet, stored without dashes in the PV header and printed 6-4-4-4-4-4-6
// with dashes in metadata text and reports.
#pragma once

#include <string>
#include <string_view>

#include "cowsnap/common/status.h"

namespace cowsnap::vg {

inline constexpr size_t kLvmIdChars = 32;

// A fresh random id (32 chars, no dashes) drawn from [a-zA-Z0-9] as lvm2
// does. Thread-safe.
std::string new_lvm_id();

// "abcdef..." (32 chars) -> "abcdef-ghij-...-uvwxyz".
// REQUIRES: raw.size() == kLvmIdChars.
std::string format_lvm_id(std::string_view raw);

// Accepts the dashed or the raw form; returns the raw 32 chars. EINVAL when
// the length is wrong or a character is outside lvm2's alphabet
// ([a-zA-Z0-9!#]).
Result<std::string> parse_lvm_id(std::string_view text);

}  // namespace cowsnap::vg
