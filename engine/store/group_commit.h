// GroupCommit: many threads commit items; each caller's items become durable
// together, as part of a batch written by one of the callers, in the manner
// of LevelDB's writer queue.
//
// A caller queues its items and waits. The caller at the front of the queue
// becomes the leader: it takes every item queued so far (its own first, in
// arrival order) as one batch, releases the mutex, runs `write_batch` on
// the batch, then hands the batch's Status to every caller in it and wakes
// the next front, which leads the following batch. Callers arriving during
// the leader's I/O form that next batch, so under load one metadata write
// and one flush serve many commits.
//
// Invariant: at most one write_batch call runs at a time, and batches run in
// queue order; the state a write_batch touches therefore needs no lock of
// its own against other batches.
//
// GroupCommit suits a batch that needs one flush (the transient store).
// PipelinedCommit, below, is for a batch that needs two ordered flushes
// (data, then the metadata naming it): it keeps two batches in flight so
// that one flush is the second of one batch and the first of the next.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "cowsnap/common/status.h"

namespace cowsnap {

template <typename Item>
class GroupCommit {
 public:
  // Returns the Status write_batch returned for the batch holding `items`
  // (a caller's items always go into one batch, in order).
  // `write_batch` is called as Status(std::span<const Item>) with the lock
  // released; it must not call commit() on this object.
  template <typename WriteBatch>
  Status commit(std::span<const Item> items, WriteBatch&& write_batch) {
    Waiter self{items};
    std::unique_lock lock(mu_);
    queue_.push_back(&self);
    while (!self.done && queue_.front() != &self) self.cv.wait(lock);
    if (self.done) return std::move(self.result);

    std::vector<Item> batch;
    const size_t batch_size = queue_.size();
    for (Waiter* w : queue_) batch.insert(batch.end(), w->items.begin(), w->items.end());
    lock.unlock();
    Status result = write_batch(std::span<const Item>(batch));
    lock.lock();

    for (size_t i = 0; i < batch_size; ++i) {
      Waiter* w = queue_.front();
      queue_.pop_front();
      if (w == &self) continue;
      w->result = result;
      w->done = true;
      w->cv.notify_one();
    }
    if (!queue_.empty()) queue_.front()->cv.notify_one();
    return result;
  }

 private:
  // Lives on its caller's stack until `done`, or until that caller leads.
  struct Waiter {
    explicit Waiter(std::span<const Item> i) : items(i) {}
    std::span<const Item> items;  // owned by the waiting caller
    Status result;                // guarded by mu_
    bool done = false;            // guarded by mu_
    std::condition_variable cv;
  };

  std::mutex mu_;
  std::deque<Waiter*> queue_;  // guarded by mu_; front is the leader
};

// PipelinedCommit: group commit for a two-phase durable write, with two
// batches in flight so that one flush serves two batches in steady state.
//
// A batch goes through three stages, which the caller's `Stages` object
// implements:
//   prepare(batch)  writes that must be durable before the batch may be
//                   published (its callers wrote their data before
//                   committing, so this flush covers those too);
//   flush()         makes every write issued before the call durable;
//   publish(batch)  the write that makes the batch reachable; it is
//                   durable, and the batch acknowledged, after the next
//                   flush.
// The leader runs:
//   [prepare(k); flush();]             only when k was not prepared yet
//   publish(k); take the queue as k+1; prepare(k+1); flush(); ack k
// and hands the prepared batch k+1 to its first caller, which leads it
// from publish(k + 1) on. So a flush makes batch k's publish AND batch
// k+1's prepared writes (and data) durable, and a leader runs at most two
// flushes before it returns, which bounds its own request's latency.
//
// Ordering guarantees Stages may rely on (what crash safety rests on):
//   - publish(b) starts only after a flush that started after prepare(b)
//     returned (and after every caller of b called commit());
//   - stages never run concurrently, and run in the order
//     prepare(1) ... publish(1), prepare(2), flush, publish(2), ...:
//     batches are prepared, published and acknowledged in queue order;
//   - a caller is acknowledged OK only after the flush that followed its
//     batch's publish returned OK.
// Errors: when any stage fails, every caller of every batch in flight (the
// one being published and the one being prepared) gets that Status, and
// the pipeline drains; the Stages object is expected to have invalidated
// itself, so later batches fail in their own prepare. Callers still queued
// are not failed here.
template <typename Item>
class PipelinedCommit {
 public:
  // Returns the Status of the batch holding `items` (a caller's items
  // always go into one batch, in order). The stages run with the lock
  // released; they must not call commit() on this object.
  template <typename Stages>
  Status commit(std::span<const Item> items, Stages& stages) {
    Waiter self{items};
    std::unique_lock lock(mu_);
    queue_.push_back(&self);
    if (!leading_) {
      leading_ = true;
      self.lead = true;
    }
    while (!self.done && !self.lead) self.cv.wait(lock);
    if (self.done) return std::move(self.result);

    Batch cur;
    if (self.prepared) {
      cur = std::exchange(handed_, Batch{});
    } else {
      cur = take_queue_locked();
      lock.unlock();
      Status s = stages.prepare(std::span<const Item>(cur.items));
      if (s.ok()) s = stages.flush();
      lock.lock();
      if (!s.ok()) {
        finish_locked(cur, s);
        pass_on_locked();
        return s;
      }
    }

    lock.unlock();
    Status s = stages.publish(std::span<const Item>(cur.items));
    Batch next;
    if (s.ok()) {
      lock.lock();
      next = take_queue_locked();
      lock.unlock();
      if (!next.waiters.empty()) s = stages.prepare(std::span<const Item>(next.items));
      if (s.ok()) s = stages.flush();
    }
    lock.lock();
    finish_locked(cur, s);
    if (!s.ok()) {
      finish_locked(next, s);
      pass_on_locked();
    } else if (!next.waiters.empty()) {
      Waiter* leader = next.waiters.front();
      handed_ = std::move(next);
      leader->prepared = true;
      leader->lead = true;
      leader->cv.notify_one();
    } else {
      pass_on_locked();
    }
    return s;
  }

  // Callers queued and in no batch yet (for tests that stage a race).
  [[nodiscard]] size_t waiting() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }

 private:
  // Lives on its caller's stack until `done`, or until that caller leads.
  struct Waiter {
    explicit Waiter(std::span<const Item> i) : items(i) {}
    std::span<const Item> items;  // owned by the waiting caller
    Status result;                // guarded by mu_
    bool done = false;            // guarded by mu_
    bool lead = false;            // guarded by mu_: run the pipeline
    bool prepared = false;        // guarded by mu_: lead handed_, which is prepared
    std::condition_variable cv;
  };
  struct Batch {
    std::vector<Waiter*> waiters;  // the first one leads the batch
    std::vector<Item> items;
  };

  Batch take_queue_locked() {
    Batch b;
    b.waiters.assign(queue_.begin(), queue_.end());
    queue_.clear();
    for (Waiter* w : b.waiters) b.items.insert(b.items.end(), w->items.begin(), w->items.end());
    return b;
  }

  // Hands `s` to every caller of `b` but the leader, which returns it.
  static void finish_locked(Batch& b, const Status& s) {
    for (Waiter* w : b.waiters) {
      if (w->lead) continue;
      w->result = s;
      w->done = true;
      w->cv.notify_one();
    }
    b.waiters.clear();
  }

  // Leadership passes to the front of the queue, which starts afresh.
  void pass_on_locked() {
    if (queue_.empty()) {
      leading_ = false;
      return;
    }
    queue_.front()->lead = true;
    queue_.front()->cv.notify_one();
  }

  mutable std::mutex mu_;
  std::deque<Waiter*> queue_;  // guarded by mu_: callers in no batch yet
  bool leading_ = false;       // guarded by mu_; false only when queue_ is empty
  Batch handed_;               // guarded by mu_: prepared, waiting for its leader
};

}  // namespace cowsnap
