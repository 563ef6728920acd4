// lvm2's sizes as people type and read them.
//
// Input (-L, --size, -s, -c): a decimal number with an optional unit letter
// b s k m g t p e, case ignored and always binary (lvm2 treats input units
// as powers of two whatever their case); no letter means `default_unit`
// (MiB for lvm2's -L). An optional leading + or - says "relative".
//
// Output: lvm2's display rules. Units h/H pick the largest unit not above
// the value (H: powers of 1000); r/R do the same and put '<' in front when
// the two-decimal value shown is larger than the real one (lvm2's default,
// "<6.47g"); b and s print whole numbers ("6945767424B", "13565952S");
// other letters print two decimals, lower case binary, upper case SI;
// "4m" (a count before the letter) prints in multiples of that unit with
// suffix "U". --nosuffix drops the unit letter except with h/H/r/R.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cowsnap/common/status.h"

namespace cowsnap::report {

enum class SizeSign { kNone, kPlus, kMinus };

struct SizeArg {
  SizeSign sign = SizeSign::kNone;
  uint64_t bytes = 0;
};

// EINVAL "Invalid size argument: X" style errors.
Result<SizeArg> parse_size(std::string_view text, char default_unit = 'm');

// -l / --extents: "N", "+N", "N%FREE", "N%VG", "N%ORIGIN", "N%PVS".
enum class ExtentsBase { kExtents, kFree, kVg, kOrigin, kPvs };
struct ExtentsArg {
  SizeSign sign = SizeSign::kNone;
  uint64_t value = 0;  // extents, or a percentage for the other bases
  ExtentsBase base = ExtentsBase::kExtents;
};
Result<ExtentsArg> parse_extents(std::string_view text);
// `percent` of `count` extents, rounded down as lvm2's lvcreate does.
uint64_t percent_of_extents(uint64_t percent, uint64_t count);

struct Units {
  char unit = 'r';          // h H r R b B s S k K m M g G t T p P e E
  uint64_t multiplier = 1;  // "4m" -> 4
  bool suffix = true;       // false: --nosuffix
};
// Parses a --units argument. EINVAL for anything else.
Result<Units> parse_units(std::string_view text);

std::string format_size(uint64_t bytes, const Units& units = {});
// "64.00 MiB", "<6.47 GiB": the long form used in messages and *display.
std::string format_size_long(uint64_t bytes);

}  // namespace cowsnap::report
