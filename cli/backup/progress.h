// Progress of a long copy on stderr: a bar redrawn in place on a terminal
// (bytes, rate, ETA), a plain line every few seconds otherwise, nothing
// when quiet.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace cowsnap::backup {

std::string human_bytes(double bytes);

class Progress {
 public:
  // Watches `done` (of `total` bytes) until stop() or destruction.
  Progress(std::string label, uint64_t total, const std::atomic<uint64_t>& done, bool quiet);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void stop();

 private:
  void run();
  void show(bool last);

  std::string label_;
  uint64_t total_;
  const std::atomic<uint64_t>& done_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace cowsnap::backup
