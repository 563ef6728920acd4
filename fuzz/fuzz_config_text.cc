// VG metadata text, as read from a metadata area: lvm2's config syntax
// (parse_config), then the VG model (parse_vg_text, validate_vg) and what
// activation asks of it. Round trips the headers promise are checked:
// parse_config(write_config(s)) == s, and a valid VG written and read back
// is valid and writes the same text.
#include <cstdint>
#include <string>
#include <string_view>

#include "cowsnap/vg/config_tree.h"
#include "cowsnap/vg/vg_model.h"
#include "fuzz_util.h"

using namespace cowsnap;
using namespace cowsnap::vg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tree = parse_config(text);
  if (!tree.ok()) return 0;
  for (TextStyle style : {TextStyle::kDisk, TextStyle::kFile}) {
    auto again = parse_config(write_config(*tree, style));
    fuzz::check(again.ok() && *again == *tree, "parse_config(write_config(s)) == s");
  }

  auto vg = parse_vg_text(text);
  if (!vg.ok() || !validate_vg(*vg).ok()) return 0;
  for (const LogicalVolume& lv : vg->lvs) {
    (void)lv_role(*vg, lv.name);
    (void)snapshot_for(*vg, lv.name);
  }
  (void)snapshots(*vg);
  // What cowsnap writes must read back as a valid VG that it writes the
  // same way (unknown keys may move: values before, sections after the
  // modelled ones, so the models themselves need not compare equal).
  const std::string written = vg_to_text(*vg, TextStyle::kDisk, TextTrailer{});
  auto back = parse_vg_text(written);
  fuzz::check(back.ok() && validate_vg(*back).ok(), "a valid VG written reads back valid");
  fuzz::check(vg_to_text(*back, TextStyle::kDisk, TextTrailer{}) == written,
              "a VG read back writes the same text");
  return 0;
}
