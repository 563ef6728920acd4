// cowsnap config (lvm2's lvmconfig): ROOT/lvm.conf as cowsnap reads it. The
// settings cowsnap acts on are lvm.conf's snapshot autoextend policy
// (vg/lvm_config.h); --type default and full show them with lvm2's
// defaults, as lvmconfig does.
#include <fmt/format.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "command.h"
#include "cowsnap/vg/config_tree.h"
#include "cowsnap/vg/lvm_config.h"

namespace cowsnap::cli {
namespace {

struct ConfigArgs {
  std::string type = "current";
  std::vector<std::string> nodes;
};

// The settings cowsnap knows, with lvm2's defaults.
const std::map<std::string, int64_t>& known_defaults() {
  static const std::map<std::string, int64_t> defaults = {
      {"activation/monitoring", vg::LvmConfig{}.monitoring},
      {"activation/snapshot_autoextend_percent", vg::LvmConfig{}.snapshot_autoextend_percent},
      {"activation/snapshot_autoextend_threshold", vg::LvmConfig{}.snapshot_autoextend_threshold},
  };
  return defaults;
}

std::string value_text(const vg::ConfigValue& v) {
  if (v.is_int()) return std::to_string(v.as_int());
  if (v.is_string()) return vg::quote_config_string(v.as_string());
  if (v.is_array()) {
    std::string out = "[";
    for (const vg::ConfigValue& item : v.items()) out += (out.size() > 1 ? "," : "") + value_text(item);
    return out + "]";
  }
  return v.as_string();  // a float keeps its text
}

// lvmconfig's layout: "key=value", sections as "name {", tab-indented.
void print_section(const vg::ConfigSection& section, int depth) {
  const std::string indent(static_cast<size_t>(depth), '\t');
  for (const vg::ConfigEntry& e : section.entries) {
    if (e.is_section) {
      fmt::print("{}{} {{\n", indent, e.key);
      print_section(e.section, depth + 1);
      fmt::print("{}}}\n", indent);
    } else {
      fmt::print("{}{}={}\n", indent, e.key, value_text(e.value));
    }
  }
}

Result<vg::ConfigSection> read_tree(const std::string& root_dir) {
  const std::string path = root_dir + "/lvm.conf";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return vg::ConfigSection{};
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) return Status::Error(EIO, fmt::format("{}: cannot be read", path));
  auto tree = vg::parse_config(text.str());
  if (!tree.ok()) return tree.status().with_context(path);
  // The same checks the server makes before it serves (an integer each).
  COWSNAP_RETURN_IF_ERROR(vg::parse_lvm_config(text.str(), path).status());
  return tree;
}

// The entry at "section/.../key", or null.
const vg::ConfigEntry* find_node(const vg::ConfigSection& tree, const std::string& node) {
  const vg::ConfigSection* section = &tree;
  size_t start = 0;
  for (;;) {
    const size_t slash = node.find('/', start);
    const std::string part =
        node.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    const vg::ConfigEntry* found = nullptr;
    for (const vg::ConfigEntry& e : section->entries) {
      if (e.key == part) found = &e;
    }
    if (found == nullptr || slash == std::string::npos) return found;
    if (!found->is_section) return nullptr;
    section = &found->section;
    start = slash + 1;
  }
}

std::string leaf(const std::string& node) { return node.substr(node.rfind('/') + 1); }

int run_config(Context& ctx, const ConfigArgs& args) {
  auto tree = read_tree(ctx.root_dir());
  if (!tree.ok()) return fail(tree.status());
  const auto& defaults = known_defaults();
  if (args.type == "default") {
    // lvmconfig prints defaults commented out.
    std::vector<std::string> nodes = args.nodes;
    if (nodes.empty()) {
      for (const auto& [node, value] : defaults) nodes.push_back(node);
    }
    int rc = kExitOk;
    for (const std::string& node : nodes) {
      auto it = defaults.find(node);
      if (it == defaults.end()) {
        complain(fmt::format("Configuration node {} not found", node));
        rc = kExitFailed;
        continue;
      }
      fmt::print("# {}={}\n", leaf(node), it->second);
    }
    return rc;
  }
  if (args.nodes.empty()) {
    if (args.type == "full") {
      // What is in force: the file's settings, lvm2's defaults for the rest.
      vg::ConfigSection full = *tree;
      for (const auto& [node, value] : defaults) {
        const std::string section = node.substr(0, node.find('/'));
        vg::ConfigSection* s = full.find_section(section);
        if (s == nullptr) s = &full.add_section(section);
        if (s->find_value(leaf(node)) == nullptr) s->set_value(leaf(node), vg::ConfigValue::Int(value));
      }
      print_section(full, 0);
    } else {
      print_section(*tree, 0);
    }
    return kExitOk;
  }
  int rc = kExitOk;
  for (const std::string& node : args.nodes) {
    const vg::ConfigEntry* e = find_node(*tree, node);
    if (e == nullptr && args.type == "full") {
      if (auto it = defaults.find(node); it != defaults.end()) {
        fmt::print("{}={}\n", leaf(node), it->second);
        continue;
      }
    }
    if (e == nullptr) {
      complain(fmt::format("Configuration node {} not found", node));
      rc = kExitFailed;
    } else if (e->is_section) {
      fmt::print("{} {{\n", e->key);
      print_section(e->section, 1);
      fmt::print("}}\n");
    } else {
      fmt::print("{}={}\n", e->key, value_text(e->value));
    }
  }
  return rc;
}

}  // namespace

void register_config_command(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* cmd = app.add_subcommand("config", "Show ROOT/lvm.conf as lvm2's lvmconfig does");
  cmd->alias("lvmconfig");
  cmd->add_option("--type", args->type,
                  "current (ROOT/lvm.conf as written, the default), default (lvm2's defaults, commented), "
                  "full (the values in force)")
      ->check(CLI::IsMember({"current", "default", "full"}));
  cmd->add_option("nodes", args->nodes,
                  "SECTION or SECTION/KEY, e.g. activation/snapshot_autoextend_threshold");
  cmd->footer("Example:\n  cowsnap config --type full activation/snapshot_autoextend_threshold");
  table.add(cmd, [args](Context& ctx) { return run_config(ctx, *args); });
}

}  // namespace cowsnap::cli
