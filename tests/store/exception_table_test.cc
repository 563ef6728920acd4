// ExceptionTable against a plain std::map model, run merging and memory.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "cowsnap/store/exception_table.h"

using namespace cowsnap;

namespace {

using Model = std::map<uint64_t, uint64_t>;

std::vector<std::pair<uint64_t, uint64_t>> contents(const ExceptionTable& table) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  table.for_each([&](ChunkIndex o, ChunkIndex c) { out.emplace_back(o.value, c.value); });
  return out;
}

void check_equal(const ExceptionTable& table, const Model& model) {
  REQUIRE(table.size() == model.size());
  const auto got = contents(table);
  const std::vector<std::pair<uint64_t, uint64_t>> want(model.begin(), model.end());
  REQUIRE(got == want);
}

ExceptionTable sequential(uint64_t n, uint64_t old_base, uint64_t cow_base) {
  ExceptionTable t;
  for (uint64_t i = 0; i < n; ++i) t.insert(ChunkIndex{old_base + i}, ChunkIndex{cow_base + i});
  return t;
}

}  // namespace

TEST_CASE("ExceptionTable: random operations agree with a std::map") {
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    // Small key spaces make neighbours (and so merges) common.
    const uint64_t key_space = seed % 3 == 0 ? 400 : (seed % 3 == 1 ? 5000 : 1u << 30);
    ExceptionTable table;
    Model model;
    uint64_t next_cow = 2;
    auto insert = [&](uint64_t old_chunk, uint64_t cow) {
      if (model.count(old_chunk) != 0) return;
      table.insert(ChunkIndex{old_chunk}, ChunkIndex{cow});
      model.emplace(old_chunk, cow);
    };
    for (int op = 0; op < 20000; ++op) {
      const uint64_t old_chunk = rng() % key_space;
      const uint64_t kind = rng() % 10;
      auto left = old_chunk > 0 ? model.find(old_chunk - 1) : model.end();
      auto right = model.find(old_chunk + 1);
      if (kind < 2) {
        // Continue the left neighbour's run: a forward merge, or a bridge
        // when the right neighbour continues it too.
        insert(old_chunk, left != model.end() ? left->second + 1 : next_cow++);
      } else if (kind < 3) {
        // Extend the right neighbour's run backward.
        insert(old_chunk, right != model.end() && right->second > 0 ? right->second - 1 : next_cow++);
      } else if (kind < 4) {
        // Two chunks one apart whose cows leave the gap for a bridge.
        const uint64_t cow = next_cow;
        next_cow += 3;
        insert(old_chunk, cow);
        insert(old_chunk + 2, cow + 2);
      } else if (kind < 6) {
        insert(old_chunk, next_cow++);
      } else {
        auto got = table.lookup(ChunkIndex{old_chunk});
        auto want = model.find(old_chunk);
        if (want == model.end()) {
          CHECK_FALSE(got.has_value());
        } else {
          REQUIRE(got.has_value());
          CHECK(got->value == want->second);
        }
      }
    }
    check_equal(table, model);
    for (const auto& [o, c] : model) REQUIRE(table.lookup(ChunkIndex{o})->value == c);
  }
}

TEST_CASE("ExceptionTable: lookups around runs and leaf boundaries") {
  ExceptionTable table;
  Model model;
  // Many separate runs of 3 across many leaves.
  for (uint64_t r = 0; r < 2000; ++r) {
    for (uint64_t i = 0; i < 3; ++i) {
      table.insert(ChunkIndex{r * 10 + i}, ChunkIndex{r * 100 + i});
      model.emplace(r * 10 + i, r * 100 + i);
    }
  }
  check_equal(table, model);
  for (uint64_t k = 0; k < 20010; ++k) {
    auto got = table.lookup(ChunkIndex{k});
    auto want = model.find(k);
    REQUIRE(got.has_value() == (want != model.end()));
    if (got) REQUIRE(got->value == want->second);
  }
}

TEST_CASE("ExceptionTable: sequential runs merge forward, into one entry per 65535 chunks") {
  const ExceptionTable t = sequential(200000, 1000, 5);
  CHECK(t.size() == 200000);
  CHECK(t.memory_bytes() < 4096);  // 4 runs of 16 bytes, one leaf, one node (200000 runs: 3.2 MB)
  CHECK(t.lookup(ChunkIndex{999}) == std::nullopt);
  CHECK(t.lookup(ChunkIndex{1000})->value == 5);
  CHECK(t.lookup(ChunkIndex{1000 + 65534})->value == 5 + 65534);
  CHECK(t.lookup(ChunkIndex{1000 + 65535})->value == 5 + 65535);
  CHECK(t.lookup(ChunkIndex{1000 + 199999})->value == 5 + 199999);
  CHECK(t.lookup(ChunkIndex{1000 + 200000}) == std::nullopt);
}

TEST_CASE("ExceptionTable: runs extend backward") {
  ExceptionTable t;
  for (uint64_t i = 100000; i-- > 0;) t.insert(ChunkIndex{50 + i}, ChunkIndex{7 + i});
  CHECK(t.size() == 100000);
  CHECK(t.memory_bytes() < 4096);
  Model model;
  for (uint64_t i = 0; i < 100000; ++i) model.emplace(50 + i, 7 + i);
  check_equal(t, model);
}

TEST_CASE("ExceptionTable: an insert between two runs bridges them") {
  ExceptionTable t;
  // Even chunks first: 50000 separate runs, then the odd ones join them.
  for (uint64_t i = 0; i < 100000; i += 2) t.insert(ChunkIndex{i}, ChunkIndex{1000 + i});
  const size_t apart = t.memory_bytes();
  CHECK(apart > 50000 * 16);
  for (uint64_t i = 1; i < 100000; i += 2) t.insert(ChunkIndex{i}, ChunkIndex{1000 + i});
  CHECK(t.size() == 100000);
  // Leaves keep their vectors' capacity after the bridging erasures, but
  // the entries themselves collapse: far less than 16 bytes per chunk.
  CHECK(t.memory_bytes() < apart / 2);
  ExceptionTable fresh;
  for (uint64_t i = 0; i < 100000; ++i) fresh.insert(ChunkIndex{i}, ChunkIndex{1000 + i});
  CHECK(contents(t) == contents(fresh));
}

TEST_CASE("ExceptionTable: consecutive old chunks with unrelated cow chunks stay separate") {
  ExceptionTable t;
  for (uint64_t i = 0; i < 1000; ++i) t.insert(ChunkIndex{i}, ChunkIndex{(i * 7) % 1000 + 5000});
  for (uint64_t i = 0; i < 1000; ++i) REQUIRE(t.lookup(ChunkIndex{i})->value == (i * 7) % 1000 + 5000);
  CHECK(t.memory_bytes() >= 1000 * 16);
}

TEST_CASE("ExceptionTable: memory stays within 24 bytes per random exception") {
  constexpr uint64_t kCount = 200000;
  std::vector<uint64_t> olds(kCount);
  std::iota(olds.begin(), olds.end(), 0);
  std::shuffle(olds.begin(), olds.end(), std::mt19937_64(7));
  ExceptionTable dense;   // every chunk of a range, in random order
  ExceptionTable sparse;  // scattered over a large origin
  for (uint64_t i = 0; i < kCount; ++i) {
    dense.insert(ChunkIndex{olds[i]}, ChunkIndex{2 + i});
    sparse.insert(ChunkIndex{(i * 0x9E3779B1ULL) & 0xffffffffULL}, ChunkIndex{2 + i});
  }
  REQUIRE(dense.size() == kCount);
  REQUIRE(sparse.size() == kCount);
  const double dense_per = double(dense.memory_bytes()) / kCount;
  const double sparse_per = double(sparse.memory_bytes()) / kCount;
  INFO("dense " << dense_per << " B/exception, sparse " << sparse_per << " B/exception");
  CHECK(dense_per <= 24.0);
  CHECK(sparse_per <= 24.0);
  CHECK(sparse_per >= 16.0);  // the runs themselves are 16 bytes: the count is honest
}

TEST_CASE("ExceptionTable: duplicates, clear and move") {
  ExceptionTable t;
  t.insert(ChunkIndex{5}, ChunkIndex{50});
  t.insert(ChunkIndex{5}, ChunkIndex{60});  // ignored: the first mapping stays
  CHECK(t.size() == 1);
  CHECK(t.lookup(ChunkIndex{5})->value == 50);

  ExceptionTable moved(std::move(t));
  CHECK(moved.lookup(ChunkIndex{5})->value == 50);
  CHECK(t.size() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty and usable
  CHECK(t.lookup(ChunkIndex{5}) == std::nullopt);
  t.insert(ChunkIndex{1}, ChunkIndex{2});
  CHECK(t.lookup(ChunkIndex{1})->value == 2);

  moved.clear();
  CHECK(moved.size() == 0);
  CHECK(moved.lookup(ChunkIndex{5}) == std::nullopt);
  CHECK(contents(moved).empty());
  CHECK(ExceptionTable().memory_bytes() < 128);
}

TEST_CASE("ExceptionTable: insert_batch equals one insert each, first mapping kept") {
  std::mt19937_64 rng(3);
  std::vector<std::pair<ChunkIndex, ChunkIndex>> batch;
  ExceptionTable one_by_one;
  for (uint64_t i = 0; i < 50000; ++i) {
    // Runs of 1..4 consecutive chunks at random places, and duplicates.
    const uint64_t base = rng() % 1000000;
    for (uint64_t k = 0; k < 1 + i % 4; ++k) {
      batch.emplace_back(ChunkIndex{base + k}, ChunkIndex{10 * i + k});
      one_by_one.insert(ChunkIndex{base + k}, ChunkIndex{10 * i + k});
    }
  }
  ExceptionTable batched;
  batched.insert(ChunkIndex{5000000}, ChunkIndex{1});  // batches add to what is there
  one_by_one.insert(ChunkIndex{5000000}, ChunkIndex{1});
  batched.insert_batch(batch);
  CHECK(batched.size() == one_by_one.size());
  CHECK(contents(batched) == contents(one_by_one));
  CHECK(batched.memory_bytes() <= 24 * batched.size());
}
