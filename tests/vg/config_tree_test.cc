#include "cowsnap/vg/config_tree.h"

#include <catch2/catch.hpp>

namespace cowsnap::vg {
namespace {

TEST_CASE("config: values, sections, arrays, comments, escapes", "[vg][config]") {
  auto root = parse_config(
      "# header comment\n"
      "top = 1\n"
      "vg {\n"
      "\tid = \"a\\\"b\\\\c\"   # trailing comment\n"
      "\tneg = -42\n"
      "\tratio = 0.5\n"
      "\tstatus = [\"READ\", \"WRITE\"]\n"
      "\tempty = []\n"
      "\tmixed = [\n\"pv0\", 0\n]\n"
      "\tsub { k = 'single' }\n"
      "}\n");
  REQUIRE(root.ok());
  CHECK(root->find_value("top")->as_int() == 1);
  const ConfigSection* vg = root->find_section("vg");
  REQUIRE(vg != nullptr);
  CHECK(vg->find_value("id")->as_string() == "a\"b\\c");
  CHECK(vg->find_value("neg")->as_int() == -42);
  CHECK(vg->find_value("ratio")->kind() == ConfigValue::Kind::kFloat);
  CHECK(vg->find_value("ratio")->as_string() == "0.5");
  CHECK(vg->find_value("status")->items().size() == 2);
  CHECK(vg->find_value("empty")->items().empty());
  CHECK(vg->find_value("mixed")->items()[1].as_int() == 0);
  CHECK(vg->find_section("sub")->find_value("k")->as_string() == "single");

  // Written and parsed again: the same tree, in both styles.
  for (TextStyle style : {TextStyle::kDisk, TextStyle::kFile}) {
    auto again = parse_config(write_config(*root, style));
    REQUIRE(again.ok());
    CHECK(*again == *root);
  }
}

TEST_CASE("config: the writer indents with tabs in file style", "[vg][config]") {
  ConfigSection root;
  ConfigSection& vg = root.add_section("vg");
  vg.set_value("seqno", ConfigValue::Int(3));
  vg.set_value("status", ConfigValue::StringArray({"READ", "WRITE"}));
  CHECK(write_config(root, TextStyle::kFile) == "\nvg {\n\tseqno = 3\n\tstatus = [\"READ\", \"WRITE\"]\n}\n");
  CHECK(write_config(root, TextStyle::kDisk) == "\nvg {\nseqno = 3\nstatus = [\"READ\", \"WRITE\"]\n}\n");
}

TEST_CASE("config: stops at a NUL like lvm2", "[vg][config]") {
  std::string text("a = 1\n", 6);
  text.push_back('\0');
  text += "garbage {{{";
  auto root = parse_config(text);
  REQUIRE(root.ok());
  CHECK(root->entries.size() == 1);
}

TEST_CASE("config: syntax errors say where", "[vg][config]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"a = \"unterminated\n", "line 1: unterminated string"},
      {"vg {\n a = 1\n", "line 3: unexpected end of text: missing '}'"},
      {"a = 1\n}\n", "line 2: unexpected '}'"},
      {"a 1\n", "line 1: expected '=' or '{' after 'a'"},
      {"a = [1, 2\n", "line 2: unterminated array: missing ']'"},
      {"a = 12x\n", "line 1: bad value '12x'"},
      {"a = [[1]]\n", "line 1: arrays cannot be nested"},
      {"a = \n", "line 2: expected a value"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto r = parse_config(c.text);
    REQUIRE(!r.ok());
    CHECK(r.status().errnum() == EINVAL);
    CHECK(r.status().message() == c.message);
  }
}

}  // namespace
}  // namespace cowsnap::vg
