// `cowsnap serve`: runs nbdkit with the cowsnap plugin in the foreground,
// serving every LV under the root as export "VG/LV", with the control
// socket ROOT/control.sock that makes other cowsnap commands go online.
// It execs nbdkit (so signals, exit status and the log on stderr are
// nbdkit's own) rather than supervising it.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cowsnap/control/client.h"
#include "cowsnap/io/rbd.h"
#include "cowsnap/vg/root.h"
#include "online_backend.h"

namespace cowsnap::cli {
namespace {

constexpr const char* kPluginFile = "nbdkit-cowsnap-plugin.so";

struct ServeArgs {
  std::string socket;
  int port = 0;
  bool verbose = false;
  bool read_only = false;
  // nbdkit's default of 16 threads per connection caps a group commit's
  // batch at 16; more threads let more first writes share one flush.
  int threads = 64;
  // The plugin's writeback=on and writeback-memory=SIZE (SIZE as nbdkit
  // parses it, checked there).
  bool write_back = false;
  std::string write_back_memory;
  std::string plugin;
  std::string nbdkit = "nbdkit";
  // The plugin's takeover=on (--take-over) or takeover=force (--force).
  bool take_over = false;
  bool force = false;
};

// The plugin: --plugin, $COWSNAP_NBDKIT_PLUGIN, next to this binary in a
// build tree (BUILD/cli/cowsnap -> BUILD/nbdkit-plugin/), next to it when
// installed side by side, the install layout seen from this binary
// (BIN/../lib/x86_64-linux-gnu/nbdkit/plugins: a relocated prefix works),
// then nbdkit's own plugindir, where `nbdkit cowsnap` looks (both compiled
// in by cmake/InstallDirs.cmake).
Result<std::string> find_plugin(const ServeArgs& args) {
  namespace fs = std::filesystem;
  if (!args.plugin.empty()) return args.plugin;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): the CLI is single-threaded
  if (const char* env = std::getenv("COWSNAP_NBDKIT_PLUGIN"); env != nullptr && *env != '\0')
    return std::string(env);
  // Installed, the layout seen from the binary is nbdkit's plugindir: each
  // place is tried (and listed in the error) once.
  std::vector<fs::path> candidates;
  auto add = [&candidates](const fs::path& p) {
    fs::path normal = p.lexically_normal();
    if (std::find(candidates.begin(), candidates.end(), normal) == candidates.end())
      candidates.push_back(std::move(normal));
  };
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path dir = exe.parent_path();
    add(dir.parent_path() / "nbdkit-plugin" / kPluginFile);
    add(dir / kPluginFile);
#ifdef COWSNAP_PLUGINDIR_FROM_BINDIR
    add(dir / COWSNAP_PLUGINDIR_FROM_BINDIR / kPluginFile);
#else
    add(dir.parent_path() / "lib" / "nbdkit" / "plugins" / kPluginFile);
#endif
  }
#ifdef COWSNAP_PLUGIN_PATH
  add(COWSNAP_PLUGIN_PATH);
#endif
  std::string tried;
  for (const fs::path& p : candidates) {
    if (fs::exists(p, ec)) return p.string();
    tried += "\n    " + p.string();
  }
  return Status::Error(ENOENT,
                       fmt::format("cannot find {} (use --plugin PATH or COWSNAP_NBDKIT_PLUGIN); tried:{}",
                                   kPluginFile, tried));
}

// nbdkit -U refuses a path that exists, and a killed server (SIGKILL; also
// nbdkit on SIGTERM) leaves its socket behind. A socket nobody listens on
// is removed, as the control socket is; one that answers is another
// server's, and a path that is not a socket is not ours to remove.
Status clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Status::Ok() : Status::FromErrno(fmt::format("{}", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::Error(EEXIST, fmt::format("{}: exists and is not a socket (remove it or choose another "
                                             "--socket)",
                                             path));
  }
  auto probe = control::Client::connect(path);  // any Unix stream connect
  if (probe.ok()) {
    return Status::Error(EADDRINUSE,
                         fmt::format("{}: Address already in use (a server is listening there)", path));
  }
  if (probe.status().errnum() != ECONNREFUSED) return probe.status();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(fmt::format("cannot remove stale socket {}", path));
  }
  return Status::Ok();
}

int serve(Context& context, const ServeArgs& args) {
  const std::string root = vg::absolute_path(context.root_dir());
  if (!std::filesystem::is_directory(root)) {
    return fail(
        Status::Error(ENOENT, fmt::format("root directory {} does not exist (create a PV first: cowsnap "
                                          "--root {} pvcreate ...)",
                                          root, root)));
  }
  if (control::Client::server_running(root)) {
    return fail(
        Status::Error(EADDRINUSE, fmt::format("a cowsnap server already serves {} (control socket {})", root,
                                              control::socket_path(root))));
  }
  auto plugin = find_plugin(args);
  if (!plugin.ok()) return fail(plugin.status());

  std::vector<std::string> argv = {args.nbdkit, "-f"};
  if (args.verbose) argv.emplace_back("-v");
  if (args.read_only) argv.emplace_back("-r");
  argv.insert(argv.end(), {"-t", std::to_string(args.threads)});
  std::string where;
  if (args.port != 0) {
    argv.insert(argv.end(), {"-p", std::to_string(args.port)});
    where = fmt::format("nbd://localhost:{}/VG/LV", args.port);
  } else {
    const std::string socket = args.socket.empty() ? root + "/nbd.sock" : vg::absolute_path(args.socket);
    if (Status s = clear_stale_socket(socket); !s.ok()) return fail(s);
    argv.insert(argv.end(), {"-U", socket});
    where = fmt::format("nbd+unix:///VG/LV?socket={}", socket);
  }
  argv.push_back(*plugin);
  argv.push_back("root=" + root);
  if (args.write_back) argv.emplace_back("writeback=on");
  if (!args.write_back_memory.empty()) argv.push_back("writeback-memory=" + args.write_back_memory);
  const CephClient ceph = ceph_client();
  if (!ceph.conf_path.empty()) argv.push_back("ceph-conf=" + ceph.conf_path);
  if (!ceph.id.empty()) argv.push_back("ceph-id=" + ceph.id);
  if (args.take_over) argv.emplace_back(args.force ? "takeover=force" : "takeover=on");

  fmt::print(stderr, "cowsnap serve: every LV under {} as {} (control socket {})\n", root, where,
             control::socket_path(root));
  std::string shown;
  for (const std::string& a : argv) shown += (shown.empty() ? "" : " ") + a;
  fmt::print(stderr, "cowsnap serve: exec {}\n", shown);
  (void)std::fflush(stderr);

  std::vector<char*> c_argv;
  c_argv.reserve(argv.size() + 1);
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  ::execvp(c_argv[0], c_argv.data());
  return fail(
      Status::FromErrno(fmt::format("cannot run {} (install nbdkit, or pass --nbdkit PATH)", args.nbdkit)));
}

}  // namespace

void register_serve_command(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve every LV as an NBD export VG/LV (nbdkit in the foreground, log on stderr)");
  auto* socket =
      cmd->add_option("--socket,-U", args->socket, "Unix socket to listen on (default ROOT/nbd.sock)");
  auto* port = cmd->add_option("--port,-p", args->port, "TCP port to listen on instead of a Unix socket")
                   ->check(CLI::Range(1, 65535));
  socket->excludes(port);
  cmd->add_flag("--verbose,-v", args->verbose, "nbdkit debug messages (nbdkit -v)");
  cmd->add_flag("--readonly,-r", args->read_only, "Serve read-only (nbdkit -r)");
  cmd->add_option("--threads,-t", args->threads, "Threads per connection (nbdkit -t; default 64)")
      ->check(CLI::Range(1, 1024));
  auto* write_back = cmd->add_flag(
      "--writeback", args->write_back,
      "Write-back mode: acknowledge origin writes before their snapshot copy-out is durable (a crash "
      "may lose writes since the last flush, never a snapshot's view)");
  cmd->add_option("--writeback-memory", args->write_back_memory,
                  "Memory for pending copy-outs in write-back mode, e.g. 256M (default 64M)")
      ->needs(write_back);
  cmd->add_option("--plugin", args->plugin,
                  "Path of nbdkit-cowsnap-plugin.so (default: the one beside a build tree's cowsnap, "
                  "else the installed one, in nbdkit's plugin directory)");
  cmd->add_option("--nbdkit", args->nbdkit, "The nbdkit program (default: nbdkit from PATH)");
  auto* take_over =
      cmd->add_flag("--take-over", args->take_over,
                    "Serve RBD PVs another server owns once that server is dead: break its exclusive lock "
                    "(the cluster blocklists it) after its watch lapses");
  cmd->add_flag("--force", args->force, "With --take-over: break the owner's lock even while it is alive")
      ->needs(take_over);
  table.add(cmd, [args](Context& context) { return serve(context, *args); });
}

}  // namespace cowsnap::cli
