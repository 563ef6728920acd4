#include "cowsnap/vg/config_tree.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>

namespace cowsnap::vg {

ConfigValue ConfigValue::Int(int64_t v) {
  ConfigValue c;
  c.kind_ = Kind::kInt;
  c.int_ = v;
  return c;
}

ConfigValue ConfigValue::Float(std::string text) {
  ConfigValue c;
  c.kind_ = Kind::kFloat;
  c.text_ = std::move(text);
  return c;
}

ConfigValue ConfigValue::String(std::string s) {
  ConfigValue c;
  c.kind_ = Kind::kString;
  c.text_ = std::move(s);
  return c;
}

ConfigValue ConfigValue::Array(std::vector<ConfigValue> items) {
  ConfigValue c;
  c.kind_ = Kind::kArray;
  c.items_ = std::move(items);
  return c;
}

ConfigValue ConfigValue::StringArray(const std::vector<std::string>& items) {
  std::vector<ConfigValue> v;
  v.reserve(items.size());
  for (const std::string& s : items) v.push_back(String(s));
  return Array(std::move(v));
}

const ConfigValue* ConfigSection::find_value(std::string_view key) const {
  for (const ConfigEntry& e : entries) {
    if (!e.is_section && e.key == key) return &e.value;
  }
  return nullptr;
}

const ConfigSection* ConfigSection::find_section(std::string_view key) const {
  for (const ConfigEntry& e : entries) {
    if (e.is_section && e.key == key) return &e.section;
  }
  return nullptr;
}

ConfigSection* ConfigSection::find_section(std::string_view key) {
  for (ConfigEntry& e : entries) {
    if (e.is_section && e.key == key) return &e.section;
  }
  return nullptr;
}

void ConfigSection::set_value(std::string key, ConfigValue value) {
  for (ConfigEntry& e : entries) {
    if (!e.is_section && e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  ConfigEntry e;
  e.key = std::move(key);
  e.value = std::move(value);
  entries.push_back(std::move(e));
}

ConfigSection& ConfigSection::add_section(std::string key) {
  ConfigEntry e;
  e.key = std::move(key);
  e.is_section = true;
  entries.push_back(std::move(e));
  return entries.back().section;
}

namespace {

bool is_key_char(char c) {
  switch (c) {
    case '{':
    case '}':
    case '[':
    case ']':
    case ',':
    case '=':
    case '#':
    case '"':
    case '\'':
    case ' ':
    case '\t':
    case '\r':
    case '\n':
    case '\0':
      return false;
    default:
      return static_cast<unsigned char>(c) > 0x20;
  }
}

// A recursive-descent parser over the text; `pos_` never passes `end_`.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text.substr(0, text.find('\0'))) {}

  Result<ConfigSection> parse_all() {
    ConfigSection root;
    COWSNAP_RETURN_IF_ERROR(parse_entries(root, /*nested=*/false, 0));
    return root;
  }

 private:
  static constexpr int kMaxDepth = 64;

  Status error(std::string_view what) const {
    return Status::Error(EINVAL, fmt::format("line {}: {}", line_, what));
  }

  void skip_space() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  Status parse_entries(ConfigSection& section, bool nested, int depth) {
    if (depth > kMaxDepth) return error("sections nested too deeply");
    while (true) {
      skip_space();
      if (pos_ >= text_.size()) {
        if (nested) return error("unexpected end of text: missing '}'");
        return Status::Ok();
      }
      if (text_[pos_] == '}') {
        if (!nested) return error("unexpected '}'");
        ++pos_;
        return Status::Ok();
      }
      const size_t key_start = pos_;
      while (pos_ < text_.size() && is_key_char(text_[pos_])) ++pos_;
      if (pos_ == key_start) return error(fmt::format("unexpected '{}'", text_[pos_]));
      ConfigEntry entry;
      entry.key = std::string(text_.substr(key_start, pos_ - key_start));
      skip_space();
      if (pos_ >= text_.size()) return error(fmt::format("unexpected end of text after '{}'", entry.key));
      if (text_[pos_] == '{') {
        ++pos_;
        entry.is_section = true;
        COWSNAP_RETURN_IF_ERROR(parse_entries(entry.section, true, depth + 1));
      } else if (text_[pos_] == '=') {
        ++pos_;
        COWSNAP_ASSIGN_OR_RETURN(entry.value, parse_value(true));
      } else {
        return error(fmt::format("expected '=' or '{{' after '{}'", entry.key));
      }
      section.entries.push_back(std::move(entry));
    }
  }

  Result<ConfigValue> parse_value(bool allow_array) {
    skip_space();
    if (pos_ >= text_.size()) return error("expected a value");
    const char c = text_[pos_];
    if (c == '[') {
      if (!allow_array) return error("arrays cannot be nested");
      ++pos_;
      std::vector<ConfigValue> items;
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return ConfigValue::Array(std::move(items));
      }
      while (true) {
        COWSNAP_ASSIGN_OR_RETURN(ConfigValue v, parse_value(false));
        items.push_back(std::move(v));
        skip_space();
        if (pos_ >= text_.size()) return error("unterminated array: missing ']'");
        if (text_[pos_] == ']') {
          ++pos_;
          return ConfigValue::Array(std::move(items));
        }
        if (text_[pos_] != ',') return error("expected ',' or ']' in array");
        ++pos_;
      }
    }
    if (c == '"' || c == '\'') return parse_string(c);
    return parse_number();
  }

  Result<ConfigValue> parse_string(char quote) {
    const size_t start_line = line_;
    ++pos_;
    std::string s;
    while (true) {
      if (pos_ >= text_.size()) {
        return Status::Error(EINVAL, fmt::format("line {}: unterminated string", start_line));
      }
      char c = text_[pos_++];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c == '\\' && quote == '"') {
        if (pos_ >= text_.size()) continue;
        c = text_[pos_++];
        if (c == '\n') ++line_;
      }
      s.push_back(c);
    }
    return ConfigValue::String(std::move(s));
  }

  Result<ConfigValue> parse_number() {
    const size_t start = pos_;
    if (pos_ < text_.size() && (text_[pos_] == '-' || text_[pos_] == '+')) ++pos_;
    bool is_float = false;
    while (pos_ < text_.size() && ((text_[pos_] >= '0' && text_[pos_] <= '9') || text_[pos_] == '.')) {
      if (text_[pos_] == '.') is_float = true;
      ++pos_;
    }
    std::string_view token = text_.substr(start, pos_ - start);
    const bool ends_clean = pos_ >= text_.size() || !is_key_char(text_[pos_]);
    if (token.empty() || token == "-" || token == "+" || !ends_clean) {
      size_t end = pos_;
      while (end < text_.size() && is_key_char(text_[end])) ++end;
      return error(fmt::format("bad value '{}'", text_.substr(start, std::max(end, pos_ + 1) - start)));
    }
    if (is_float) return ConfigValue::Float(std::string(token));
    if (token.front() == '+') token.remove_prefix(1);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || ptr != token.data() + token.size()) {
      return error(fmt::format("bad number '{}'", token));
    }
    return ConfigValue::Int(v);
  }

  std::string_view text_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

void append_value(std::string& out, const ConfigValue& v) {
  switch (v.kind()) {
    case ConfigValue::Kind::kInt:
      out += fmt::format("{}", v.as_int());
      break;
    case ConfigValue::Kind::kFloat:
      out += v.as_string();
      break;
    case ConfigValue::Kind::kString:
      out += quote_config_string(v.as_string());
      break;
    case ConfigValue::Kind::kArray: {
      out += '[';
      bool first = true;
      for (const ConfigValue& item : v.items()) {
        if (!first) out += ", ";
        first = false;
        append_value(out, item);
      }
      out += ']';
      break;
    }
  }
}

}  // namespace

Result<ConfigSection> parse_config(std::string_view text) { return Parser(text).parse_all(); }

std::string quote_config_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

void append_config(std::string& out, const ConfigSection& section, TextStyle style, int depth) {
  const std::string indent = style == TextStyle::kFile ? std::string(static_cast<size_t>(depth), '\t') : "";
  for (const ConfigEntry& e : section.entries) {
    if (e.is_section) {
      out += '\n';
      out += indent + e.key + " {\n";
      append_config(out, e.section, style, depth + 1);
      out += indent + "}\n";
    } else {
      out += indent + e.key + " = ";
      append_value(out, e.value);
      out += '\n';
    }
  }
}

std::string write_config(const ConfigSection& section, TextStyle style) {
  std::string out;
  append_config(out, section, style, 0);
  return out;
}

}  // namespace cowsnap::vg
