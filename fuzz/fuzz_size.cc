// Size arguments as the CLI parses them (-L/--size/-s/-c: parse_size; -l:
// parse_extents; --units: parse_units), and every parsed size printed in
// every unit, as reports print sizes.
#include <cstdint>
#include <string_view>

#include "cowsnap/report/size.h"
#include "fuzz_util.h"

using namespace cowsnap;
using namespace cowsnap::report;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The CLI's defaults: MiB for -L/-s, KiB for -c; the others are lvm2's.
  for (char default_unit : {'m', 'k', 's', 'b'}) {
    auto parsed = parse_size(text, default_unit);
    if (!parsed.ok()) continue;
    for (std::string_view units : {"r", "h", "H", "b", "s", "k", "M", "4m", "e"}) {
      auto u = parse_units(units);
      fuzz::check(u.ok(), "the target's units parse");
      fuzz::check(!format_size(parsed->bytes, *u).empty(), "a size prints");
    }
    (void)format_size_long(parsed->bytes);
  }
  if (auto extents = parse_extents(text); extents.ok()) {
    (void)percent_of_extents(extents->value, UINT64_MAX);
    (void)percent_of_extents(extents->value, 207);
  }
  if (auto units = parse_units(text); units.ok()) {
    for (uint64_t bytes : {uint64_t{0}, uint64_t{511}, uint64_t{6945767424}, UINT64_MAX}) {
      (void)format_size(bytes, *units);
    }
  }
  return 0;
}
