#include "copy_out_pool.h"

#include <algorithm>
#include <atomic>
#include <system_error>

namespace cowsnap {

struct CopyOutPool::Job {
  Job(size_t n, const std::function<void(size_t)>* f) : count(n), fn(f) {}
  const size_t count;
  // Points into the caller's frame; dereferenced only for a claimed index,
  // and the caller waits for every claimed index to finish.
  const std::function<void(size_t)>* fn;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable all_done;
  size_t finished = 0;  // guarded by mu
};

CopyOutPool& CopyOutPool::shared() {
  static CopyOutPool pool(kWorkers);
  return pool;
}

CopyOutPool::CopyOutPool(size_t workers) {
  for (size_t i = 0; i < workers; ++i) {
    try {
      threads_.emplace_back([this] { work(); });
    } catch (const std::system_error&) {
      break;  // fewer helpers; callers still do all the work themselves
    }
  }
}

CopyOutPool::~CopyOutPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void CopyOutPool::help(Job& job) noexcept {
  for (size_t i = job.next.fetch_add(1); i < job.count; i = job.next.fetch_add(1)) {
    try {
      (*job.fn)(i);
    } catch (...) {  // NOLINT(bugprone-empty-catch): fn's contract is not to throw
    }
    std::lock_guard lock(job.mu);
    if (++job.finished == job.count) job.all_done.notify_all();
  }
}

void CopyOutPool::work() noexcept {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to help with
    std::shared_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    help(*job);
    job.reset();
    lock.lock();
  }
}

void CopyOutPool::run(size_t count, const std::function<void(size_t)>& fn) noexcept {
  if (count == 0) return;
  std::shared_ptr<Job> job;
  try {
    job = std::make_shared<Job>(count, &fn);
  } catch (...) {
    // No memory for the job: run every index here.
    for (size_t i = 0; i < count; ++i) {
      try {
        fn(i);
      } catch (...) {  // NOLINT(bugprone-empty-catch): as in help()
      }
    }
    return;
  }
  {
    std::lock_guard lock(mu_);
    const size_t helpers = std::min(count - 1, threads_.size());
    try {
      for (size_t i = 0; i < helpers; ++i) queue_.push_back(job);
    } catch (...) {  // NOLINT(bugprone-empty-catch): fewer helpers, same result
    }
  }
  wake_.notify_all();
  help(*job);
  {
    // Helpers that have not started are not needed any more.
    std::lock_guard lock(mu_);
    std::erase(queue_, job);
  }
  std::unique_lock lock(job->mu);
  job->all_done.wait(lock, [&] { return job->finished == job->count; });
}

}  // namespace cowsnap
