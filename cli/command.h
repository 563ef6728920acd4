// What every verb shares: the backend (opened after the command line is
// parsed, since --root may come anywhere), lvm2-style output, exit codes,
// and the table that maps a parsed subcommand to its handler.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend.h"
#include "cowsnap/common/status.h"

namespace cowsnap::cli {

// lvm2's exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalidCommandLine = 3;  // EINVALID_CMD_LINE
inline constexpr int kExitFailed = 5;              // ECMD_FAILED

class Context {
 public:
  Context(std::string root_dir, std::string command_line)
      : root_dir_(std::move(root_dir)), command_line_(std::move(command_line)) {}
  // Opened on first use.
  Result<Backend*> backend();
  [[nodiscard]] const std::string& root_dir() const { return root_dir_; }
  [[nodiscard]] const std::string& command_line() const { return command_line_; }

 private:
  std::string root_dir_;
  std::string command_line_;
  std::unique_ptr<Backend> backend_;
};

// lvm2 indents its messages by two spaces: results on stdout, errors on
// stderr.
void say(std::string_view line);
void complain(std::string_view line);
// Prints the error and returns kExitFailed.
int fail(const Status& status);

using Handler = std::function<int(Context&)>;

class CommandTable {
 public:
  void add(CLI::App* command, Handler handler) { entries_.emplace_back(command, std::move(handler)); }
  // The handler of the subcommand the user chose, or null.
  [[nodiscard]] const Handler* chosen() const {
    for (const auto& [command, handler] : entries_) {
      if (command->parsed()) return &handler;
    }
    return nullptr;
  }

 private:
  std::vector<std::pair<CLI::App*, Handler>> entries_;
};

void register_report_commands(CLI::App& app, CommandTable& table);
void register_pv_commands(CLI::App& app, CommandTable& table);
void register_vg_commands(CLI::App& app, CommandTable& table);
void register_lv_commands(CLI::App& app, CommandTable& table);
void register_lvconvert_command(CLI::App& app, CommandTable& table);  // lvconvert --merge
void register_config_command(CLI::App& app, CommandTable& table);     // config (lvmconfig)
void register_dmsetup_command(CLI::App& app, CommandTable& table);
void register_backup_commands(CLI::App& app, CommandTable& table);     // vgcfgbackup, vgcfgrestore, vgck
void register_hot_backup_command(CLI::App& app, CommandTable& table);  // backup
void register_restore_commands(CLI::App& app, CommandTable& table);    // restore, changed

// "vg/lv" or "/dev/vg/lv" -> {vg, lv}; "vg" -> {vg, ""}.
std::pair<std::string, std::string> split_lv_path(std::string_view arg);

}  // namespace cowsnap::cli
