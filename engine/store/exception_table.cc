// ExceptionTable as a B+tree whose leaves are sorted vectors of 16-byte runs.
//
// Shape: inner nodes route by separator keys; the lowest level of inner
// nodes ("bottom" nodes) holds the leaves' vectors inline, so a lookup
// touches one cold cache area only, the leaf's runs: the inner nodes are
// small enough to stay cached (about 0.5 byte per exception).
//
// Invariants:
// - A node's seps[i] is a lower bound of subtree i's old chunks, and every
//   run of subtree i lies wholly below seps[i + 1]. seps[0] is the node's
//   own lower bound; the leftmost one is 0.
// - Runs are sorted by old chunk and never overlap; a run has
//   1..kMaxRunLength chunks. No leaf is empty.
// - Separators never change after a split, so a run never merges across a
//   leaf boundary (that would break the first invariant); it costs one
//   extra run per boundary at most.
// - A leaf holds at most kMaxRunsPerLeaf runs. Its vector grows by
//   kCapacityStep runs at a time and is trimmed when split, so slack stays
//   a few percent instead of the up-to-50% of doubling.
//
// Memory: 16 bytes per run plus, per leaf of 64..128 runs, the vector's
// slack and a malloc header: about 17-18 bytes per random exception, and
// one run per 65535 exceptions for sequential ones.
#include "cowsnap/store/exception_table.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <optional>
#include <vector>

namespace cowsnap {
namespace {

constexpr uint64_t kLengthBits = 16;
constexpr uint64_t kMaxRunLength = (uint64_t{1} << kLengthBits) - 1;
constexpr uint64_t kMaxCowChunk = (uint64_t{1} << (64 - kLengthBits)) - 1;
constexpr size_t kMaxRunsPerLeaf = 128;
constexpr size_t kCapacityStep = 8;
constexpr uint32_t kFanout = 64;  // children per inner node

// old_first + i -> cow_first + i for i < length.
class Run {
 public:
  Run(uint64_t old_first, uint64_t cow_first, uint64_t length)
      : old_first_(old_first), packed_(cow_first << kLengthBits | length) {
    assert(cow_first <= kMaxCowChunk && length >= 1 && length <= kMaxRunLength);
  }
  [[nodiscard]] uint64_t old_first() const { return old_first_; }
  [[nodiscard]] uint64_t cow_first() const { return packed_ >> kLengthBits; }
  [[nodiscard]] uint64_t length() const { return packed_ & kMaxRunLength; }
  [[nodiscard]] uint64_t old_end() const { return old_first_ + length(); }
  [[nodiscard]] uint64_t cow_end() const { return cow_first() + length(); }
  [[nodiscard]] bool full() const { return length() == kMaxRunLength; }

  void grow_forward(uint64_t chunks) { packed_ += chunks; }
  void grow_backward() {
    --old_first_;
    packed_ = (cow_first() - 1) << kLengthBits | (length() + 1);
  }

 private:
  uint64_t old_first_;
  uint64_t packed_;  // cow_first << 16 | length
};
static_assert(sizeof(Run) == 16);

using Leaf = std::vector<Run>;

struct Inner;
struct Bottom;

// Arrays have one spare slot: a node overflows by one, then splits.
struct Bottom {
  uint32_t size = 0;
  std::array<uint64_t, kFanout + 1> seps{};
  std::array<Leaf, kFanout + 1> leaves;
};

// A child pointer; the level it sits at says which kind it is.
class Child {
 public:
  Child() = default;
  explicit Child(Inner* n) : node_(n) {}
  explicit Child(Bottom* n) : node_(n) {}
  [[nodiscard]] bool empty() const { return node_ == nullptr; }
  [[nodiscard]] Inner* inner() const { return static_cast<Inner*>(node_); }
  [[nodiscard]] Bottom* bottom() const { return static_cast<Bottom*>(node_); }

 private:
  void* node_ = nullptr;
};

struct Inner {
  uint32_t size = 0;
  std::array<uint64_t, kFanout + 1> seps{};
  std::array<Child, kFanout + 1> kids{};
};

// Allocation sizes as glibc malloc rounds them: the request plus an 8-byte
// header, in 16-byte steps, 32 bytes at least.
size_t malloc_footprint(size_t request) { return std::max<size_t>(32, (request + 8 + 15) & ~size_t{15}); }

// The child whose range holds `old_chunk`: the last i with i == 0 or
// seps[i] <= old_chunk.
uint32_t route(const std::array<uint64_t, kFanout + 1>& seps, uint32_t size, uint64_t old_chunk) {
  const auto it = std::upper_bound(seps.begin() + 1, seps.begin() + size, old_chunk);
  return static_cast<uint32_t>(it - seps.begin()) - 1;
}

// Index of the first run starting after `old_chunk`.
size_t first_after(const Leaf& leaf, uint64_t old_chunk) {
  const auto it = std::upper_bound(leaf.begin(), leaf.end(), old_chunk,
                                   [](uint64_t v, const Run& r) { return v < r.old_first(); });
  return static_cast<size_t>(it - leaf.begin());
}

// Opens slot `at` in the first `size` elements of `a` (one spare slot).
template <typename T>
void open_slot(std::array<T, kFanout + 1>& a, uint32_t size, uint32_t at) {
  std::move_backward(a.begin() + at, a.begin() + size, a.begin() + size + 1);
}

// Where a split hands its new right sibling to the parent.
struct Split {
  uint64_t sep;
  Child node;
};

// Which ends of the whole table the path to a leaf touches.
struct Edges {
  bool leftmost;
  bool rightmost;
};

}  // namespace

struct ExceptionTable::Impl {
  Child root{};
  uint32_t height = 0;  // 0: root is a Bottom (or null when empty)
  uint64_t exceptions = 0;
  size_t inner_nodes = 0;
  size_t bottom_nodes = 0;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { destroy(); }

  void destroy() {
    if (!root.empty()) destroy(root, height);
    root = Child{};
    height = 0;
    exceptions = 0;
    inner_nodes = 0;
    bottom_nodes = 0;
  }

  static void destroy(Child node, uint32_t level) {
    if (level == 0) {
      delete node.bottom();
      return;
    }
    for (uint32_t i = 0; i < node.inner()->size; ++i) destroy(node.inner()->kids[i], level - 1);
    delete node.inner();
  }

  [[nodiscard]] const Leaf* find_leaf(uint64_t old_chunk) const {
    if (root.empty()) return nullptr;
    Child node = root;
    for (uint32_t level = height; level > 0; --level) {
      const Inner& n = *node.inner();
      node = n.kids[route(n.seps, n.size, old_chunk)];
    }
    const Bottom& b = *node.bottom();
    return &b.leaves[route(b.seps, b.size, old_chunk)];
  }

  void insert(uint64_t old_chunk, uint64_t cow_chunk) {
    assert(cow_chunk <= kMaxCowChunk);
    if (root.empty()) {
      auto* b = new Bottom;
      ++bottom_nodes;
      b->size = 1;
      b->leaves[0].reserve(kCapacityStep);
      b->leaves[0].emplace_back(old_chunk, cow_chunk, 1);
      root = Child(b);
      exceptions = 1;
      return;
    }
    bool inserted = false;
    const std::optional<Split> split =
        insert_into(root, height, old_chunk, cow_chunk, Edges{true, true}, inserted);
    if (split) {
      Inner* top = new Inner;
      ++inner_nodes;
      top->size = 2;
      top->seps[0] = 0;
      top->kids[0] = root;
      top->seps[1] = split->sep;
      top->kids[1] = split->node;
      root = Child(top);
      ++height;
    }
    if (inserted) ++exceptions;
  }

  std::optional<Split> insert_into(Child node, uint32_t level, uint64_t old_chunk, uint64_t cow_chunk,
                                   Edges edges, bool& inserted) {
    if (level == 0) return insert_into_bottom(*node.bottom(), old_chunk, cow_chunk, edges, inserted);
    Inner& n = *node.inner();
    const uint32_t i = route(n.seps, n.size, old_chunk);
    const Edges child_edges{edges.leftmost && i == 0, edges.rightmost && i + 1 == n.size};
    const std::optional<Split> split =
        insert_into(n.kids[i], level - 1, old_chunk, cow_chunk, child_edges, inserted);
    if (!split) return std::nullopt;
    open_slot(n.seps, n.size, i + 1);
    open_slot(n.kids, n.size, i + 1);
    n.seps[i + 1] = split->sep;
    n.kids[i + 1] = split->node;
    if (++n.size <= kFanout) return std::nullopt;

    Inner* right = new Inner;
    ++inner_nodes;
    const uint32_t half = n.size / 2;
    right->size = n.size - half;
    std::copy(n.seps.begin() + half, n.seps.begin() + n.size, right->seps.begin());
    std::copy(n.kids.begin() + half, n.kids.begin() + n.size, right->kids.begin());
    n.size = half;
    return Split{right->seps[0], Child(right)};
  }

  std::optional<Split> insert_into_bottom(Bottom& b, uint64_t old_chunk, uint64_t cow_chunk, Edges edges,
                                          bool& inserted) {
    const uint32_t i = route(b.seps, b.size, old_chunk);
    Leaf& leaf = b.leaves[i];
    const size_t at = first_after(leaf, old_chunk);
    if (at > 0 && old_chunk < leaf[at - 1].old_end()) return std::nullopt;  // mapped: keep the first mapping
    inserted = true;

    const bool joins_pred = at > 0 && leaf[at - 1].old_end() == old_chunk &&
                            leaf[at - 1].cow_end() == cow_chunk && !leaf[at - 1].full();
    const bool joins_succ = at < leaf.size() && leaf[at].old_first() == old_chunk + 1 &&
                            leaf[at].cow_first() == cow_chunk + 1 && !leaf[at].full();
    if (joins_pred && joins_succ && leaf[at - 1].length() + 1 + leaf[at].length() <= kMaxRunLength) {
      leaf[at - 1].grow_forward(1 + leaf[at].length());
      leaf.erase(leaf.begin() + static_cast<ptrdiff_t>(at));
      // Bridges can empty a leaf bit by bit; give back halved capacity.
      if (leaf.capacity() > 2 * leaf.size() + kCapacityStep) {
        Leaf trimmed;
        trimmed.reserve(leaf.size() + kCapacityStep);
        trimmed.assign(leaf.begin(), leaf.end());
        leaf.swap(trimmed);
      }
      return std::nullopt;
    }
    if (joins_pred) {
      leaf[at - 1].grow_forward(1);
      return std::nullopt;
    }
    if (joins_succ) {
      leaf[at].grow_backward();
      return std::nullopt;
    }
    if (leaf.size() == leaf.capacity()) leaf.reserve(leaf.size() + kCapacityStep);
    leaf.insert(leaf.begin() + static_cast<ptrdiff_t>(at), Run(old_chunk, cow_chunk, 1));
    if (leaf.size() <= kMaxRunsPerLeaf) return std::nullopt;

    // Split the leaf. An insert past the table's last exception (ascending
    // writes) or before its first (descending ones) splits off just that
    // run, so the leaves such a sweep leaves behind stay full; other
    // splits halve.
    size_t cut = leaf.size() / 2;
    if (at + 1 == leaf.size() && edges.rightmost && i + 1 == b.size) cut = leaf.size() - 1;
    if (at == 0 && edges.leftmost && i == 0) cut = 1;
    Leaf left;
    left.reserve(cut + kCapacityStep);
    left.assign(leaf.begin(), leaf.begin() + static_cast<ptrdiff_t>(cut));
    Leaf right;
    right.reserve(leaf.size() - cut + kCapacityStep);
    right.assign(leaf.begin() + static_cast<ptrdiff_t>(cut), leaf.end());
    leaf.swap(left);
    open_slot(b.seps, b.size, i + 1);
    open_slot(b.leaves, b.size, i + 1);
    b.seps[i + 1] = right.front().old_first();
    b.leaves[i + 1] = std::move(right);
    if (++b.size <= kFanout) return std::nullopt;

    Bottom* sibling = new Bottom;
    ++bottom_nodes;
    const uint32_t half = b.size / 2;
    sibling->size = b.size - half;
    std::copy(b.seps.begin() + half, b.seps.begin() + b.size, sibling->seps.begin());
    std::move(b.leaves.begin() + half, b.leaves.begin() + b.size, sibling->leaves.begin());
    b.size = half;
    return Split{sibling->seps[0], Child(sibling)};
  }

  template <typename Fn>
  static void visit_leaves(Child node, uint32_t level, const Fn& fn) {
    if (level == 0) {
      for (uint32_t i = 0; i < node.bottom()->size; ++i) fn(node.bottom()->leaves[i]);
      return;
    }
    for (uint32_t i = 0; i < node.inner()->size; ++i) visit_leaves(node.inner()->kids[i], level - 1, fn);
  }

  template <typename Fn>
  void for_each_leaf(const Fn& fn) const {
    if (!root.empty()) visit_leaves(root, height, fn);
  }
};

ExceptionTable::ExceptionTable() : impl_(std::make_unique<Impl>()) {}
ExceptionTable::~ExceptionTable() = default;
ExceptionTable::ExceptionTable(ExceptionTable&&) noexcept = default;
ExceptionTable& ExceptionTable::operator=(ExceptionTable&&) noexcept = default;

std::optional<ChunkIndex> ExceptionTable::lookup(ChunkIndex old_chunk) const {
  if (!impl_) return std::nullopt;  // moved from
  const Leaf* leaf = impl_->find_leaf(old_chunk.value);
  if (leaf == nullptr) return std::nullopt;
  const size_t at = first_after(*leaf, old_chunk.value);
  if (at == 0) return std::nullopt;
  const Run& run = (*leaf)[at - 1];
  if (old_chunk.value >= run.old_end()) return std::nullopt;
  return ChunkIndex{run.cow_first() + (old_chunk.value - run.old_first())};
}

void ExceptionTable::insert(ChunkIndex old_chunk, ChunkIndex cow_chunk) {
  if (!impl_) impl_ = std::make_unique<Impl>();
  impl_->insert(old_chunk.value, cow_chunk.value);
}

void ExceptionTable::insert_batch(std::vector<std::pair<ChunkIndex, ChunkIndex>> exceptions) {
  // Ascending inserts all land in the few leaves last touched, which stay
  // cached, where random ones each wait for a cache miss. Stable, so that
  // of two mappings for one chunk the first is kept, as insert() does.
  std::stable_sort(exceptions.begin(), exceptions.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [old_chunk, cow_chunk] : exceptions) insert(old_chunk, cow_chunk);
}

uint64_t ExceptionTable::size() const { return impl_ ? impl_->exceptions : 0; }

size_t ExceptionTable::memory_bytes() const {
  if (!impl_) return 0;
  size_t bytes = malloc_footprint(sizeof(Impl)) + impl_->inner_nodes * malloc_footprint(sizeof(Inner)) +
                 impl_->bottom_nodes * malloc_footprint(sizeof(Bottom));
  impl_->for_each_leaf([&](const Leaf& leaf) {
    if (leaf.capacity() > 0) bytes += malloc_footprint(leaf.capacity() * sizeof(Run));
  });
  return bytes;
}

void ExceptionTable::for_each(
    const std::function<void(ChunkIndex old_chunk, ChunkIndex cow_chunk)>& fn) const {
  if (!impl_) return;
  impl_->for_each_leaf([&](const Leaf& leaf) {
    for (const Run& run : leaf) {
      for (uint64_t i = 0; i < run.length(); ++i)
        fn(ChunkIndex{run.old_first() + i}, ChunkIndex{run.cow_first() + i});
    }
  });
}

void ExceptionTable::clear() {
  if (impl_) impl_->destroy();
}

}  // namespace cowsnap
