// Backup manifests: what they hold survives a round trip, damage to them
// is refused with the field named, and chains and --at pick the right
// backups.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "backup/manifest.h"
#include "support/system.h"

using namespace cowsnap;
using namespace cowsnap::backup;
using cowsnap::testing::TempDir;

namespace {

Manifest sample(const std::string& name, bool incremental, const std::string& parent,
                const std::string& created) {
  Manifest m;
  m.name = name;
  m.incremental = incremental;
  m.parent = parent;
  m.vg = "vg0";
  m.lv = "b64m";
  m.size_bytes = 10 * 4096 + 512;  // a short last chunk
  m.chunk_bytes = 4096;
  m.snapshot = "b64m-backup-x";
  m.snapshot_time = created;
  m.created = created;
  for (uint64_t i = 0; i < m.chunk_count(); ++i) {
    const std::vector<uint8_t> data(m.chunk_length(i), static_cast<uint8_t>(i + (incremental ? 100 : 0)));
    m.digests.push_back(digest_of(data));
  }
  if (incremental) m.changed = {{2, 3}, {9, 2}};
  m.image = image_digest(m.digests);
  return m;
}

void write_backup(const TempDir& dir, const Manifest& m) {
  std::filesystem::create_directories(dir / m.name);
  std::ofstream(dir / (m.name + "/manifest.json")) << to_json_text(m);
}

}  // namespace

TEST_CASE("manifest: a round trip keeps every field", "[backup]") {
  const Manifest m =
      sample("20261202T100000Z-incr", true, "20261202T090000Z-full", "2026-12-02T10:00:00.000Z");
  auto back = manifest_from_json_text(to_json_text(m), "test");
  INFO(back.status().message());
  REQUIRE(back.ok());
  CHECK(back->name == m.name);
  CHECK(back->incremental);
  CHECK(back->parent == m.parent);
  CHECK(back->chunk_count() == 11);
  CHECK(back->chunk_length(10) == 512);
  CHECK(back->changed_chunks() == 5);
  REQUIRE(back->digests.size() == m.digests.size());
  for (size_t i = 0; i < m.digests.size(); ++i) CHECK(same_digest(back->digests[i], m.digests[i]));
  CHECK(to_hex(back->image) == to_hex(m.image));
  CHECK(std::string(back->data_file()) == "delta.raw");
}

TEST_CASE("manifest: damage is refused, naming what is wrong", "[backup]") {
  const Manifest m = sample("b", false, "", "2026-12-02T10:00:00.000Z");
  std::string text = to_json_text(m);
  auto refused = [](const std::string& t, const std::string& what) {
    auto r = manifest_from_json_text(t, "DIR/b/manifest.json");
    REQUIRE_FALSE(r.ok());
    INFO(r.status().message());
    CHECK(r.status().errnum() == EINVAL);
    CHECK(r.status().message().find("DIR/b/manifest.json") != std::string::npos);
    CHECK(r.status().message().find(what) != std::string::npos);
  };
  refused(text.substr(0, text.size() / 2), "not a JSON object");
  // One chunk digest changed: the image digest no longer matches.
  const std::string first = to_hex(m.digests[0]);
  std::string flipped = text;
  flipped.replace(flipped.find(first), 1, first[0] == '0' ? "1" : "0");
  refused(flipped, "image_digest does not match");
  std::string short_list = text;
  short_list.replace(short_list.find("\"" + first + "\","), first.size() + 3, "");
  refused(short_list, "10 chunk digests for 11 chunks");
  std::string bad_kind = text;
  bad_kind.replace(bad_kind.find("\"full\""), 6, "\"half\"");
  refused(bad_kind, "unknown kind");
  refused("{\"format\": \"something else\"}", "format is not");
}

TEST_CASE("manifest: chains, --at and listing", "[backup]") {
  TempDir dir;
  const Manifest full = sample("20261202T090000Z-full", false, "", "2026-12-02T09:00:00.000Z");
  const Manifest i1 = sample("20261202T100000Z-incr", true, full.name, "2026-12-02T10:00:00.000Z");
  const Manifest i2 = sample("20261202T110000Z-incr", true, i1.name, "2026-12-02T11:00:00.000Z");
  for (const Manifest* m : {&i2, &full, &i1}) write_backup(dir, *m);
  // A backup being written is not listed.
  std::filesystem::create_directories(dir / ".partial-20261202T120000Z-full");

  auto list = list_backups(dir / "");
  REQUIRE(list.ok());
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].name == full.name);
  CHECK((*list)[2].name == i2.name);

  auto chain = chain_of(*list, i2.name);
  REQUIRE(chain.ok());
  REQUIRE(chain->size() == 3);
  CHECK((*chain)[0].name == full.name);
  CHECK((*chain)[1].name == i1.name);

  CHECK(pick_backup(*list, "")->name == i2.name);
  CHECK(pick_backup(*list, i1.name)->name == i1.name);
  CHECK(pick_backup(*list, "2026-12-02T10:30:00")->name == i1.name);
  CHECK(pick_backup(*list, "2026-12-02 10:00")->name == i1.name);
  CHECK(pick_backup(*list, "2026-12-02T08:00:00Z").status().errnum() == ENOENT);
  CHECK(pick_backup(*list, "yesterday").status().errnum() == EINVAL);

  // A missing parent breaks the chain, named.
  std::filesystem::remove_all(dir / i1.name);
  auto relisted = list_backups(dir / "");
  REQUIRE(relisted.ok());
  auto broken = chain_of(*relisted, i2.name);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.status().message().find("needs its parent " + i1.name) != std::string::npos);
}

TEST_CASE("backup names and digests", "[backup]") {
  CHECK(backup_name_for("2026-12-02T15:22:07.123Z", false) == "20261202T152207Z-full");
  CHECK(backup_name_for("2026-12-02T15:22:07.123Z", true) == "20261202T152207Z-incr");
  const std::string now = utc_now_iso();
  CHECK(now.size() == 24);
  CHECK(now.back() == 'Z');
  // XXH3-128 of nothing, as xxhsum -H2 prints it.
  CHECK(to_hex(digest_of({})) == "99aa06d3014798d86001c324468d497f");
  auto parsed = digest_from_hex("99aa06d3014798d86001c324468d497f");
  REQUIRE(parsed.ok());
  CHECK(same_digest(*parsed, digest_of({})));
  CHECK(digest_from_hex("99aa").status().errnum() == EINVAL);
  CHECK(digest_from_hex(std::string(32, 'g')).status().errnum() == EINVAL);
}
