// Text output of touchgate: aligned tables and timestamps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace touchgate::cli {

// format_time renders unix seconds as "2026-03-01T09:12:44Z" (UTC).
std::string format_time(int64_t unix_seconds);

// render_table lays out a header and rows as left-aligned columns separated by two spaces (one
// line each, "\n"-terminated, no trailing blanks). Widths count UTF-8 characters. Cells must not
// contain control characters; rows shorter than the header are padded with empty cells.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace touchgate::cli
