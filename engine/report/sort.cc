// lvs/vgs/pvs -O: ordering report rows by field values.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <numeric>
#include <optional>

#include "cowsnap/report/report.h"

namespace cowsnap::report {
namespace {

std::optional<double> number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return std::nullopt;
  return v;
}

// <0, 0, >0 as a is below, equal to or above b.
int compare_values(const FieldDef& field, const std::string& a, const std::string& b) {
  if (field.numeric) {
    const auto x = number(a);
    const auto y = number(b);
    if (x != y) return !x ? -1 : !y ? 1 : (*x < *y ? -1 : 1);
    if (x) return 0;
  }
  return a.compare(b);
}

}  // namespace

Result<std::vector<SortKey>> select_sort_keys(ReportKind kind, const std::vector<std::string>& options) {
  std::vector<SortKey> keys;
  for (const std::string& option : options) {
    keys.clear();
    size_t start = 0;
    while (start <= option.size()) {
      size_t comma = option.find(',', start);
      if (comma == std::string::npos) comma = option.size();
      std::string_view name = std::string_view(option).substr(start, comma - start);
      start = comma + 1;
      SortKey key;
      if (!name.empty() && (name.front() == '-' || name.front() == '+')) {
        key.descending = name.front() == '-';
        name.remove_prefix(1);
      }
      if (name.empty()) continue;
      key.field = find_field(kind, name);
      if (key.field == nullptr) return Status::Error(EINVAL, fmt::format("Unrecognised field: {}", name));
      keys.push_back(key);
    }
  }
  return keys;
}

Units sort_units() { return Units{'b', 1, false}; }

void sort_rows(std::vector<Row>& rows, const std::vector<Row>& keys, const std::vector<SortKey>& sort) {
  if (sort.empty() || rows.size() != keys.size()) return;
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    for (size_t k = 0; k < sort.size(); ++k) {
      const int c = compare_values(*sort[k].field, keys[a][k], keys[b][k]);
      if (c != 0) return sort[k].descending ? c > 0 : c < 0;
    }
    return false;
  });
  std::vector<Row> sorted;
  sorted.reserve(rows.size());
  for (size_t i : order) sorted.push_back(std::move(rows[i]));
  rows = std::move(sorted);
}

}  // namespace cowsnap::report
