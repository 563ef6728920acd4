#include "cowsnap/report/size.h"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <limits>

namespace cowsnap::report {
namespace {

__extension__ typedef unsigned __int128 U128;

constexpr std::string_view kUnitLetters = "bskmgtpe";

// Bytes per unit letter (binary), 0 for an unknown letter.
uint64_t binary_unit_bytes(char letter) {
  switch (std::tolower(static_cast<unsigned char>(letter))) {
    case 'b':
      return 1;
    case 's':
      return 512;
    case 'k':
      return uint64_t{1} << 10;
    case 'm':
      return uint64_t{1} << 20;
    case 'g':
      return uint64_t{1} << 30;
    case 't':
      return uint64_t{1} << 40;
    case 'p':
      return uint64_t{1} << 50;
    case 'e':
      return uint64_t{1} << 60;
    default:
      return 0;
  }
}

uint64_t si_unit_bytes(char letter) {
  uint64_t v = 1;
  const size_t power = kUnitLetters.find(static_cast<char>(std::tolower(static_cast<unsigned char>(letter))));
  if (letter == 'S') return 512;
  for (size_t i = 2; i <= power && power != std::string_view::npos; ++i) v *= 1000;
  return v;
}

Result<SizeSign> take_sign(std::string_view& text) {
  if (text.empty()) return Status::Error(EINVAL, "empty size argument");
  if (text.front() == '+') {
    text.remove_prefix(1);
    return SizeSign::kPlus;
  }
  if (text.front() == '-') {
    text.remove_prefix(1);
    return SizeSign::kMinus;
  }
  return SizeSign::kNone;
}

// Two-decimal rendering of bytes/unit; sets `rounded_up` when the shown
// value exceeds the real one.
// REQUIRES: unit > 0.
std::string two_decimals(uint64_t bytes, uint64_t unit, bool& rounded_up) {
  if (unit == 0) unit = 1;  // unreachable: callers pass a unit's size
  const U128 scaled = static_cast<U128>(bytes) * 100;
  U128 hundredths = scaled / unit;
  const U128 rest = scaled % unit;
  if (rest * 2 >= unit) ++hundredths;  // half up, as printf on these values
  rounded_up = hundredths * unit > scaled;
  const auto whole = static_cast<uint64_t>(hundredths / 100);
  const auto frac = static_cast<unsigned>(hundredths % 100);
  return fmt::format("{}.{:02}", whole, frac);
}

}  // namespace

Result<SizeArg> parse_size(std::string_view text, char default_unit) {
  const std::string original(text);
  COWSNAP_ASSIGN_OR_RETURN(SizeSign sign, take_sign(text));
  size_t i = 0;
  bool digits = false;
  bool dot = false;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !dot))) {
    if (text[i] == '.')
      dot = true;
    else
      digits = true;
    ++i;
  }
  const std::string number(text.substr(0, i));
  std::string_view unit_text = text.substr(i);
  char unit = default_unit;
  if (unit_text.size() == 1) {
    unit = unit_text.front();
  } else if (!unit_text.empty()) {
    return Status::Error(EINVAL, fmt::format("Invalid size argument \"{}\"", original));
  }
  const uint64_t unit_bytes = binary_unit_bytes(unit);
  if (!digits || unit_bytes == 0) {
    return Status::Error(EINVAL, fmt::format("Invalid size argument \"{}\"", original));
  }
  // Whole and fractional parts separately, so integer sizes stay exact.
  const size_t dot_at = number.find('.');
  const std::string whole = number.substr(0, dot_at);
  const std::string frac = dot_at == std::string::npos ? "" : number.substr(dot_at + 1);
  U128 bytes = 0;
  for (char c : whole) {
    bytes = bytes * 10 + static_cast<unsigned>(c - '0');
    if (bytes > std::numeric_limits<uint64_t>::max()) {
      return Status::Error(EINVAL, fmt::format("Size argument \"{}\" is too large", original));
    }
  }
  bytes *= unit_bytes;
  U128 frac_num = 0;
  U128 frac_den = 1;
  for (char c : frac.substr(0, 18)) {
    frac_num = frac_num * 10 + static_cast<unsigned>(c - '0');
    frac_den *= 10;
  }
  bytes += frac_num * unit_bytes / frac_den;
  if (bytes > std::numeric_limits<uint64_t>::max()) {
    return Status::Error(EINVAL, fmt::format("Size argument \"{}\" is too large", original));
  }
  return SizeArg{sign, static_cast<uint64_t>(bytes)};
}

Result<ExtentsArg> parse_extents(std::string_view text) {
  const std::string original(text);
  COWSNAP_ASSIGN_OR_RETURN(SizeSign sign, take_sign(text));
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (value > std::numeric_limits<uint64_t>::max() / 10 - 10) {
      return Status::Error(EINVAL, fmt::format("Invalid argument for --extents: {}", original));
    }
    value = value * 10 + static_cast<unsigned>(text[i] - '0');
    ++i;
  }
  if (i == 0) return Status::Error(EINVAL, fmt::format("Invalid argument for --extents: {}", original));
  const std::string_view rest = text.substr(i);
  ExtentsArg arg{sign, value, ExtentsBase::kExtents};
  if (rest.empty()) return arg;
  if (rest == "%FREE")
    arg.base = ExtentsBase::kFree;
  else if (rest == "%VG")
    arg.base = ExtentsBase::kVg;
  else if (rest == "%ORIGIN")
    arg.base = ExtentsBase::kOrigin;
  else if (rest == "%PVS")
    arg.base = ExtentsBase::kPvs;
  else
    return Status::Error(EINVAL, fmt::format("Invalid argument for --extents: {}", original));
  if (value > 100 && arg.base != ExtentsBase::kOrigin) {
    return Status::Error(EINVAL, fmt::format("Percentage {} is above 100 in --extents {}", value, original));
  }
  return arg;
}

uint64_t percent_of_extents(uint64_t percent, uint64_t count) {
  return static_cast<uint64_t>(static_cast<U128>(percent) * count / 100);
}

Result<Units> parse_units(std::string_view text) {
  Units units;
  size_t i = 0;
  uint64_t count = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    count = count * 10 + static_cast<unsigned>(text[i] - '0');
    if (count > (uint64_t{1} << 32)) break;
    ++i;
  }
  const std::string_view letter = text.substr(i);
  if (letter.size() != 1 ||
      std::string_view("hHrRbBsSkKmMgGtTpPeE").find(letter.front()) == std::string_view::npos ||
      (i > 0 && (count == 0 || std::string_view("hHrR").find(letter.front()) != std::string_view::npos))) {
    return Status::Error(EINVAL, fmt::format("Invalid units specification: {}", text));
  }
  units.unit = letter.front();
  units.multiplier = i > 0 ? count : 1;
  return units;
}

std::string format_size(uint64_t bytes, const Units& units) {
  const char u = units.unit;
  const bool human = u == 'h' || u == 'H' || u == 'r' || u == 'R';
  if (bytes == 0) return units.suffix || human ? "0 " : "0";
  const bool si = std::isupper(static_cast<unsigned char>(u)) && u != 'B' && u != 'S';
  if (human) {
    // The largest unit not above the value (bytes print as a count).
    char letter = 'b';
    uint64_t unit_bytes = 1;
    for (char c : std::string_view("kmgtpe")) {
      const uint64_t ub = si ? si_unit_bytes(c) : binary_unit_bytes(c);
      if (bytes >= ub) {
        letter = c;
        unit_bytes = ub;
      }
    }
    if (letter == 'b') return fmt::format("{}B", bytes);
    bool rounded_up = false;
    const std::string value = two_decimals(bytes, unit_bytes, rounded_up);
    const bool mark = (u == 'r' || u == 'R') && rounded_up;
    const char shown = si ? static_cast<char>(std::toupper(static_cast<unsigned char>(letter))) : letter;
    return fmt::format("{}{}{}", mark ? "<" : "", value, shown);
  }
  if (u == 'b' || u == 'B' || u == 's' || u == 'S') {
    const uint64_t unit_bytes = (u == 'b' || u == 'B' ? 1 : 512) * units.multiplier;
    const std::string suffix = !units.suffix            ? ""
                               : units.multiplier > 1   ? "U"
                               : (u == 'b' || u == 'B') ? "B"
                                                        : "S";
    if (units.multiplier == 1) return fmt::format("{}{}", bytes / unit_bytes, suffix);
    bool ignored = false;
    return two_decimals(bytes, unit_bytes, ignored) + suffix;
  }
  const uint64_t unit_bytes = (si ? si_unit_bytes(u) : binary_unit_bytes(u)) * units.multiplier;
  bool ignored = false;
  std::string out = two_decimals(bytes, unit_bytes, ignored);
  if (units.suffix) out += units.multiplier > 1 ? 'U' : u;
  return out;
}

std::string format_size_long(uint64_t bytes) {
  if (bytes == 0) return "0   ";
  static constexpr std::string_view kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t idx = 0;
  uint64_t unit_bytes = 1;
  for (size_t i = 1; i < std::size(kNames); ++i) {
    const uint64_t ub = uint64_t{1} << (10 * i);
    if (bytes >= ub) {
      idx = i;
      unit_bytes = ub;
    }
  }
  if (idx == 0) return fmt::format("{} B", bytes);
  bool rounded_up = false;
  const std::string value = two_decimals(bytes, unit_bytes, rounded_up);
  return fmt::format("{}{} {}", rounded_up ? "<" : "", value, kNames[idx]);
}

}  // namespace cowsnap::report
