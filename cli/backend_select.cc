// The one place that decides which backend a command uses.
#include "backend.h"

namespace cowsnap::cli {

Result<std::unique_ptr<Backend>> select_backend(const std::string& root_dir,
                                                const std::string& command_line) {
  if (std::unique_ptr<Backend> online = connect_online_backend(root_dir, command_line)) return online;
  return make_offline_backend(root_dir, command_line);
}

}  // namespace cowsnap::cli
