// The online side of the CLI: a Backend that talks to a running server over
// ROOT/control.sock (online_backend.cc), and `cowsnap serve`, which runs
// that server (serve_command.cc).
//
// connect_online_backend() (declared in backend.h) is defined in
// online_backend.cc: it returns an online backend when a server answers on
// ROOT/control.sock, nullptr otherwise.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "backend.h"
#include "command.h"

namespace cowsnap::cli {

// An online backend for ROOT; ECONNREFUSED/ENOENT when no server answers.
Result<std::unique_ptr<Backend>> make_online_backend(const std::string& root_dir,
                                                     const std::string& command_line);

// `cowsnap serve [--socket PATH | --port N] [-v] [-r]`: runs nbdkit with the
// cowsnap plugin in the foreground, serving every LV under --root.
void register_serve_command(CLI::App& app, CommandTable& table);

}  // namespace cowsnap::cli
