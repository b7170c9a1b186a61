// Text checks and encodings shared by everything that writes or reads JSON lines (the audit log,
// the control socket): UTF-8 well-formedness and one canonical JSON string escaping.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace touchgate::ssh {

// utf8_sequence_length is the length of the well-formed UTF-8 sequence at s[i] (1 for ASCII;
// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), 0 if there is none.
size_t utf8_sequence_length(std::string_view s, size_t i);

// append_json_string appends s as a JSON string, quotes included, in one canonical form: '"' and
// '\' escaped with a backslash, control characters and DEL as \u00xx (lower-case hex),
// well-formed UTF-8 kept, every other byte replaced by U+FFFD (its UTF-8 bytes). The output is
// valid JSON whatever s holds.
void append_json_string(std::string& out, std::string_view s);

}  // namespace touchgate::ssh
