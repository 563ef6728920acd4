#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

namespace cowsnap::backup {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(units)) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[u]);
}

Progress::Progress(std::string label, uint64_t total, const std::atomic<uint64_t>& done, bool quiet)
    : label_(std::move(label)), total_(total), done_(done), terminal_(::isatty(STDERR_FILENO) == 1) {
  if (!quiet) thread_ = std::thread([this] { run(); });
}

Progress::~Progress() { stop(); }

void Progress::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  show(true);
}

void Progress::run() {
  const auto period = terminal_ ? std::chrono::milliseconds(250) : std::chrono::seconds(5);
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stopping_; })) show(false);
}

void Progress::show(bool last) {
  const uint64_t done = std::min(done_.load(std::memory_order_relaxed), total_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  const double fraction = total_ == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total_);
  const std::string eta =
      rate > 0 && done < total_ ? fmt::format("ETA {:.0f}s", static_cast<double>(total_ - done) / rate) : "";
  const std::string figures = fmt::format("{} / {}, {}/s {}", human_bytes(static_cast<double>(done)),
                                          human_bytes(static_cast<double>(total_)), human_bytes(rate), eta);
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    fmt::print(
        stderr, "\r  {} [{}{}] {:3.0f}% {}\033[K{}", label_, std::string(static_cast<size_t>(filled), '#'),
        std::string(static_cast<size_t>(kWidth - filled), '.'), fraction * 100, figures, last ? "\n" : "");
  } else {
    fmt::print(stderr, "  {}: {:.0f}% {}\n", label_, fraction * 100, figures);
  }
  (void)std::fflush(stderr);
}

}  // namespace cowsnap::backup
