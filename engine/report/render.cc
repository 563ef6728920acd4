// Text and JSON output of a report, laid out as lvm2 lays it out.
#include <fmt/format.h>

#include <algorithm>

#include "cowsnap/report/report.h"

namespace cowsnap::report {
namespace {

std::string_view json_key(ReportKind kind) {
  switch (kind) {
    case ReportKind::kLv:
      return "lv";
    case ReportKind::kVg:
      return "vg";
    case ReportKind::kPv:
      return "pv";
  }
  return "";
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string render_json(ReportKind kind, const std::vector<const FieldDef*>& fields,
                        const std::vector<Row>& rows) {
  std::string out;
  out += "  {\n";
  out += "      \"report\": [\n";
  out += "          {\n";
  out += fmt::format("              \"{}\": [\n", json_key(kind));
  for (size_t r = 0; r < rows.size(); ++r) {
    out += "                  {";
    for (size_t c = 0; c < fields.size(); ++c) {
      if (c > 0) out += ", ";
      out += fmt::format("\"{}\":\"{}\"", fields[c]->name, json_escape(rows[r][c]));
    }
    out += r + 1 < rows.size() ? "},\n" : "}\n";
  }
  out += "              ]\n";
  out += "          }\n";
  out += "      ]\n";
  out += "  }\n";
  return out;
}

std::string pad(const std::string& s, size_t width, bool right) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return right ? fill + s : s + fill;
}

}  // namespace

std::string render(ReportKind kind, const std::vector<const FieldDef*>& fields, const std::vector<Row>& rows,
                   const OutputOptions& options) {
  if (options.json) return render_json(kind, fields, rows);
  if (rows.empty()) return "";  // lvm2 prints nothing, not even headings
  const bool padded = !options.separator || options.aligned;
  const std::string sep = options.separator.value_or(" ");
  std::vector<size_t> widths(fields.size(), 0);
  for (size_t c = 0; c < fields.size(); ++c) {
    // As wide as the heading even with --noheadings, as in lvm2.
    widths[c] = std::max(fields[c]->min_width, fields[c]->heading.size());
    for (const Row& row : rows) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells, bool heading) {
    out += "  ";
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) out += sep;
      out += padded ? pad(cells[c], widths[c], !heading && right_aligned(*fields[c])) : cells[c];
    }
    out += '\n';
  };
  if (options.headings) {
    std::vector<std::string> headings;
    headings.reserve(fields.size());
    for (const FieldDef* f : fields) headings.emplace_back(f->heading);
    line(headings, true);
  }
  for (const Row& row : rows) line(row, false);
  return out;
}

}  // namespace cowsnap::report
