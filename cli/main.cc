// cowsnap: lvm2-style commands over the volume groups listed in a root
// directory.
#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "command.h"
#include "cowsnap/io/rbd.h"
#include "cowsnap/vg/root.h"
#include "online_backend.h"

#ifndef COWSNAP_VERSION
#define COWSNAP_VERSION "unknown"
#endif

namespace cowsnap::cli {
namespace {

// --root, else $COWSNAP_ROOT, else $XDG_DATA_HOME/cowsnap, else
// ~/.local/share/cowsnap. getenv is safe here: the CLI is single-threaded.
std::string default_root() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* env = std::getenv("COWSNAP_ROOT"); env != nullptr && *env != '\0') return env;
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/cowsnap";
  }
  const char* home = std::getenv("HOME");  // NOLINT(concurrency-mt-unsafe)
  return std::string(home != nullptr ? home : ".") + "/.local/share/cowsnap";
}

}  // namespace

Result<Backend*> Context::backend() {
  if (!backend_) {
    // Root::open makes the root itself but not its parents, and the default
    // (~/.local/share/cowsnap) may lack them on a fresh account.
    std::error_code ec;
    std::filesystem::create_directories(root_dir_, ec);
    if (ec)
      return Status::Error(ec.value(),
                           fmt::format("{}: cannot create the root directory: {}", root_dir_, ec.message()));
    COWSNAP_ASSIGN_OR_RETURN(backend_, select_backend(root_dir_, command_line_));
  }
  return backend_.get();
}

void say(std::string_view line) { fmt::print(stdout, "  {}\n", line); }
void complain(std::string_view line) {
  (void)std::fflush(stdout);  // keep the order of interleaved stdout and stderr
  fmt::print(stderr, "  {}\n", line);
}
int fail(const Status& status) {
  complain(status.message());
  return kExitFailed;
}

std::pair<std::string, std::string> split_lv_path(std::string_view arg) {
  if (arg.starts_with("/dev/")) arg.remove_prefix(5);
  const size_t slash = arg.find('/');
  if (slash == std::string_view::npos) return {std::string(arg), ""};
  return {std::string(arg.substr(0, slash)), std::string(arg.substr(slash + 1))};
}

int run(int argc, char** argv) {
  CLI::App app{"cowsnap: copy-on-write snapshots and an lvm2-compatible volume manager in user space"};
  app.set_version_flag("--version", std::string("cowsnap ") + COWSNAP_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  std::string root;
  app.add_option("--root", root,
                 "Root directory (devices file, locks); default $COWSNAP_ROOT, "
                 "$XDG_DATA_HOME/cowsnap or ~/.local/share/cowsnap");
  CephClient ceph;
  app.add_option("--ceph-conf", ceph.conf_path,
                 "Ceph config of the cluster holding rbd:POOL/IMAGE PVs (default $CEPH_CONF, "
                 "/etc/ceph/ceph.conf)");
  app.add_option("--ceph-id", ceph.id, "Ceph client id to connect as (client.ID; default admin)");
  CommandTable table;
  register_pv_commands(app, table);
  register_vg_commands(app, table);
  register_lv_commands(app, table);
  register_lvconvert_command(app, table);
  register_config_command(app, table);
  register_report_commands(app, table);
  register_dmsetup_command(app, table);
  register_backup_commands(app, table);
  register_hot_backup_command(app, table);
  register_restore_commands(app, table);
  register_serve_command(app, table);
  // lvm2 takes "-L -32M" (shrink by 32 MiB) and "-O -lv_size" (sort
  // descending); CLI11 would read "-32M" or "-lv_size" as an option, so
  // such a value is glued to its option first.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);  // CLI11 wants them reversed
  for (size_t i = args.size(); i-- > 1;) {
    const std::string& opt = args[i];
    const std::string& value = args[i - 1];
    const bool size_value = (opt == "-L" || opt == "-l" || opt == "--size" || opt == "--extents") &&
                            value.size() > 1 && value[0] == '-' &&
                            std::isdigit(static_cast<unsigned char>(value[1]));
    const bool sort_value = (opt == "-O" || opt == "--sort") && value.size() > 1 && value[0] == '-';
    if (size_value || sort_value) {
      args[i] = opt.size() == 2 ? opt + value : fmt::format("{}={}", opt, value);
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i - 1));
    }
  }
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitInvalidCommandLine;
  }
  std::string command_line = "cowsnap";
  for (int i = 1; i < argc; ++i) {
    command_line += ' ';
    command_line += argv[i];
  }
  if (!ceph.conf_path.empty()) ceph.conf_path = vg::absolute_path(ceph.conf_path);
  set_ceph_client(ceph);
  Context context(root.empty() ? default_root() : root, command_line);
  const Handler* handler = table.chosen();
  if (handler == nullptr) return kExitInvalidCommandLine;
  return (*handler)(context);
}

}  // namespace cowsnap::cli

int main(int argc, char** argv) {
  try {
    return cowsnap::cli::run(argc, argv);
  } catch (const std::exception& e) {
    // Out of memory and the like: a message, not an abort.
    (void)std::fprintf(stderr, "  cowsnap: %s\n", e.what());
  } catch (...) {
    (void)std::fputs("  cowsnap: unknown exception\n", stderr);
  }
  return cowsnap::cli::kExitFailed;
}
