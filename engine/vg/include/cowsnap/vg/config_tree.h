// lvm2's configuration syntax (the language of VG metadata text) as a
// generic tree, with a strict parser and a writer.
//
//   # comment
//   name = 42            name = "text \"quoted\""       name = [1, "a"]
//   section { name = value ... }
//
// The tree keeps entries in file order and keeps everything it is given:
// the typed model (vg_model.h) takes what it understands and carries the
// rest through unchanged, so VGs made by lvm2 survive a cowsnap edit.
// Comments are not kept (lvm2 writes only informational ones).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cowsnap/common/status.h"

namespace cowsnap::vg {

class ConfigValue {
 public:
  enum class Kind { kInt, kFloat, kString, kArray };

  ConfigValue() = default;  // the integer 0
  static ConfigValue Int(int64_t v);
  // Floats are rare in VG metadata; they are kept as their source text so
  // they are written back exactly.
  static ConfigValue Float(std::string text);
  static ConfigValue String(std::string s);
  static ConfigValue Array(std::vector<ConfigValue> items);
  static ConfigValue StringArray(const std::vector<std::string>& items);

  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] bool is_int() const { return kind_ == Kind::kInt; }
  [[nodiscard]] bool is_string() const { return kind_ == Kind::kString; }
  [[nodiscard]] bool is_array() const { return kind_ == Kind::kArray; }
  // REQUIRES: the matching kind.
  [[nodiscard]] int64_t as_int() const { return int_; }
  [[nodiscard]] const std::string& as_string() const { return text_; }  // also a float's text
  [[nodiscard]] const std::vector<ConfigValue>& items() const { return items_; }

  bool operator==(const ConfigValue&) const = default;

 private:
  Kind kind_ = Kind::kInt;
  int64_t int_ = 0;
  std::string text_;
  std::vector<ConfigValue> items_;
};

struct ConfigEntry;

// An ordered list of entries (`key = value` or `key { ... }`). Keys are not
// required to be unique by the syntax; lookups return the first match.
class ConfigSection {
 public:
  std::vector<ConfigEntry> entries;

  [[nodiscard]] const ConfigValue* find_value(std::string_view key) const;
  [[nodiscard]] const ConfigSection* find_section(std::string_view key) const;
  [[nodiscard]] ConfigSection* find_section(std::string_view key);
  [[nodiscard]] bool empty() const { return entries.empty(); }
  void set_value(std::string key, ConfigValue value);  // replaces or appends
  ConfigSection& add_section(std::string key);         // appends
  bool operator==(const ConfigSection&) const = default;
};

struct ConfigEntry {
  std::string key;
  bool is_section = false;
  ConfigValue value;      // when !is_section
  ConfigSection section;  // when is_section
  bool operator==(const ConfigEntry&) const = default;
};

// Parses a whole text. EINVAL with "line N: ..." on any syntax error
// (unterminated string, missing '=' or '}', bad number, stray bytes).
// Stops at a NUL byte as lvm2 does (the on-disk text ends with one).
Result<ConfigSection> parse_config(std::string_view text);

enum class TextStyle {
  kDisk,  // no indentation, as lvm2 stores text in the metadata area
  kFile,  // tab-indented, as in vgcfgbackup files
};

// Writes entries one per line; a blank line before each section; arrays on
// one line. parse_config(write_config(s)) == s for every section s.
std::string write_config(const ConfigSection& section, TextStyle style);
// The same for entries nested `depth` levels deep.
void append_config(std::string& out, const ConfigSection& section, TextStyle style, int depth);

// "text" -> "\"text\"" with '"' and '\' escaped.
std::string quote_config_string(std::string_view s);

}  // namespace cowsnap::vg
