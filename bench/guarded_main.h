// The benchmarks' main(): runs the program and reports an exception that
// escapes it (out of memory, a JSON type error) instead of aborting.
#pragma once

#include <cstdio>
#include <exception>

namespace cowsnap::bench {

inline int guarded_main(int argc, char** argv, int (*run)(int, char**)) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
}

}  // namespace cowsnap::bench
