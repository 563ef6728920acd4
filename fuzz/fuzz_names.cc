// VG and LV names as the CLI and the control server check them: the input
// is a name, or "VG/LV" as lvm2's commands take it.
#include <cstdint>
#include <string_view>

#include "cowsnap/vg/names.h"
#include "fuzz_util.h"

using namespace cowsnap;
using namespace cowsnap::vg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool vg_ok = validate_vg_name(text).ok();
  fuzz::check(!vg_ok || (!text.empty() && text.size() <= kMaxNameChars), "a valid VG name has 1-127 chars");
  (void)validate_lv_name("vg", text);
  if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    const std::string_view vg_name = text.substr(0, slash);
    const std::string_view lv_name = text.substr(slash + 1);
    if (validate_vg_name(vg_name).ok()) (void)validate_lv_name(vg_name, lv_name);
  }
  return 0;
}
