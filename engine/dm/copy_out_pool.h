// CopyOutPool: a fixed set of threads, shared by every origin, that runs a
// request's copy-outs to several snapshots side by side.
//
// run(count, fn) calls fn(i) once for every i < count and returns when all
// calls have finished. The calling thread claims indices too, so a request
// completes even when every worker is busy or none could be started: the
// pool adds parallelism, never a wait for a thread. Workers take no locks
// of their own while running fn, so fn may block (on a store's group
// commit, say) without deadlocking the pool.
// Exceptions: none leaves run(); fn must not throw (a throwing fn ends
// that call only, and the exception is swallowed).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace cowsnap {

class CopyOutPool {
 public:
  static constexpr size_t kWorkers = 4;
  // The process's pool, started on first use.
  static CopyOutPool& shared();

  explicit CopyOutPool(size_t workers);
  CopyOutPool(const CopyOutPool&) = delete;
  CopyOutPool& operator=(const CopyOutPool&) = delete;
  ~CopyOutPool();

  void run(size_t count, const std::function<void(size_t)>& fn) noexcept;

 private:
  struct Job;
  // Claims and runs the job's indices until none is left.
  static void help(Job& job) noexcept;
  void work() noexcept;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mu_; one entry per helper wanted
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace cowsnap
