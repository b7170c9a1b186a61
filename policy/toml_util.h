// Shared by the TOML readers (the configuration, policy test files): parsing with line-numbered
// errors, and how messages name value types ("must be a string, not an integer").
#pragma once

#include <exception>
#include <string_view>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "ssh/error.h"

namespace touchgate::policy {

inline std::string_view toml_type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown value";
}

// parse_toml parses text into a table; a syntax error becomes "SOURCE:LINE:COL: what" with
// `code`, any other exception "SOURCE: what".
inline Result<toml::table> parse_toml(std::string_view text, std::string_view source_name,
                                      const char* code) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return fail(code, fmt::format("{}:{}:{}: {}", source_name, where.line == 0 ? 1 : where.line,
                                  where.line == 0 ? 1 : where.column, e.description()));
  } catch (const std::exception& e) {
    return fail(code, fmt::format("{}: {}", source_name, e.what()));
  }
}

}  // namespace touchgate::policy
