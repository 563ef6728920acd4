// names.h: the VG and LV name rules of lvm2 2.03.16, with its wording.
#include "cowsnap/vg/names.h"

#include <cerrno>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace cowsnap::vg {
namespace {

TEST_CASE("names: every allowed character, in any position but a leading '-'", "[vg][names]") {
  const std::string all = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-";
  CHECK(validate_vg_name(all).ok());
  CHECK(validate_lv_name("vg", all).ok());
  CHECK(lv_name_well_formed(all));
  for (const char* ok : {".x", "..x", "x.", "+", "_", "x-", "0", "a..b"}) {
    INFO(ok);
    CHECK(validate_vg_name(ok).ok());
    CHECK(validate_lv_name("vg", ok).ok());
    CHECK(lv_name_well_formed(ok));
  }
}

TEST_CASE("names: any other character, a leading '-', \".\" and \"..\" are invalid", "[vg][names]") {
  const std::string rule =
      "is invalid: valid characters are [a-zA-Z0-9.-_+], not starting with '-', not \".\" or \"..\"";
  const std::vector<std::string> bads = {"-",   "-x",  ".",    "..", "a b", "a/b",
                                         "a@b", "a:b", "a\tb", "a*", "é",   std::string("a\0b", 3)};
  for (const std::string& bad : bads) {
    INFO(bad);
    CHECK_FALSE(lv_name_well_formed(bad));
    const Status vg = validate_vg_name(bad);
    CHECK(vg.errnum() == EINVAL);
    CHECK(vg.message() == "Volume group name \"" + bad + "\" " + rule);
    const Status lv = validate_lv_name("vg", bad);
    CHECK(lv.errnum() == EINVAL);
    CHECK(lv.message() == "Logical volume name \"" + bad + "\" " + rule);
  }
}

TEST_CASE("names: empty, and the 127-character limit", "[vg][names]") {
  CHECK_FALSE(lv_name_well_formed(""));
  CHECK(validate_vg_name("").message() == "Volume group name is empty");
  CHECK(validate_lv_name("vg", "").message() == "Logical volume name is empty");
  CHECK(validate_lv_name("vg", "").errnum() == EINVAL);

  const std::string longest(kMaxNameChars, 'v');
  const std::string too_long(kMaxNameChars + 1, 'v');
  CHECK(kMaxNameChars == 127);
  CHECK(validate_vg_name(longest).ok());
  CHECK(lv_name_well_formed(longest));
  CHECK_FALSE(lv_name_well_formed(too_long));
  CHECK(validate_vg_name(too_long).errnum() == EINVAL);
  CHECK(validate_vg_name(too_long).message() ==
        "Volume group name \"" + too_long + "\" is invalid: name length exceeds maximum limit of 127");
  CHECK(validate_lv_name("v", too_long).message() ==
        "Logical volume name \"" + too_long + "\" is invalid: name length exceeds maximum limit of 127");
  // The length is checked before the characters.
  CHECK(validate_vg_name(std::string(128, '@')).message().find("name length exceeds") != std::string::npos);
}

TEST_CASE("names: LV names starting \"snapshot\" or \"pvmove\" are reserved, VG names not", "[vg][names]") {
  for (const char* prefix : {"snapshot", "pvmove"}) {
    const std::string p = prefix;
    for (const std::string& name : {p, p + "0", p + "_x", p + "x"}) {
      INFO(name);
      const Status s = validate_lv_name("vg", name);
      CHECK(s.errnum() == EINVAL);
      CHECK(s.message() == "Names starting \"" + p + "\" are reserved. Please choose a different LV name.");
      // Only the command line's reserved-word rules: the name itself is
      // well formed, and lvm2 accepts it as a VG name.
      CHECK(lv_name_well_formed(name));
      CHECK(validate_vg_name(name).ok());
    }
  }
  // Only as a prefix, and case matters.
  for (const char* ok : {"mysnapshot", "xpvmove", "Snapshot0", "PVMOVE", "snapshoT", "snap"}) {
    INFO(ok);
    CHECK(validate_lv_name("vg", ok).ok());
  }
}

TEST_CASE("names: LV names containing a sub-LV suffix anywhere are reserved", "[vg][names]") {
  const char* reserved[] = {"_cdata", "_cmeta",   "_corig",   "_cpool",  "_cvol",  "_wcorig",
                            "_mlog",  "_mimage",  "_pmspare", "_rimage", "_rmeta", "_tdata",
                            "_tmeta", "_vorigin", "_vdata",   "_imeta",  "_iorig"};
  for (const char* r : reserved) {
    const std::string s = r;
    const std::string message =
        "Names including \"" + s + "\" are reserved. Please choose a different LV name.";
    for (const std::string& name : {"lv" + s, s, "lv" + s + "_0", s + "x", "a" + s + "b"}) {
      INFO(name);
      CHECK(validate_lv_name("vg", name).errnum() == EINVAL);
      CHECK(validate_lv_name("vg", name).message() == message);
      CHECK(validate_vg_name(name).ok());
    }
  }
  // Without the underscore they are ordinary words.
  for (const char* ok : {"mlog", "tmeta", "lv-rimage", "cdata_", "x_t_meta", "lv_mlo"}) {
    INFO(ok);
    CHECK(validate_lv_name("vg", ok).ok());
  }
  // A reserved prefix is reported before a reserved suffix.
  CHECK(validate_lv_name("vg", "snapshot_mlog").message().find("Names starting \"snapshot\"") == 0);
}

TEST_CASE("names: \"vg/lv\" together may not pass the device-mapper name limit", "[vg][names]") {
  // vg + lv + 3 may be at most 128.
  const std::string vg(60, 'g');
  CHECK(validate_lv_name(vg, std::string(65, 'l')).ok());
  const std::string lv(66, 'l');
  const Status s = validate_lv_name(vg, lv);
  CHECK(s.errnum() == EINVAL);
  CHECK(s.message() == "LV name \"" + vg + "/" + lv + "\" is too long");
  CHECK(validate_lv_name("v", std::string(124, 'l')).ok());
  CHECK(validate_lv_name("v", std::string(125, 'l')).errnum() == EINVAL);
  // Each name alone is fine: only the pair is too long.
  CHECK(validate_vg_name(vg).ok());
  CHECK(lv_name_well_formed(lv));
}

}  // namespace
}  // namespace cowsnap::vg
