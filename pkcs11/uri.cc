#include "pkcs11/uri.h"

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>

namespace touchgate::pkcs11 {
namespace {

constexpr std::string_view kScheme = "pkcs11:";

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// RFC 7512 pk11-path-res-avail, plus "&" (a query delimiter only, harmless in the path).
bool is_path_char(char c) {
  return is_unreserved(c) || std::string_view(":[]@!$'()*+,=&").find(c) != std::string_view::npos;
}

// RFC 7512 pk11-query-res-avail.
bool is_query_char(char c) {
  return is_unreserved(c) || std::string_view(":[]@!$'()*+,=/?|").find(c) != std::string_view::npos;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_decimal(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

tl::unexpected<Error> bad(std::string message) {
  return fail("pkcs11_bad_uri", "PKCS#11 URI: " + std::move(message));
}

// decode percent-decodes value (attribute name for messages), allowing raw characters `allowed`.
Result<std::string> decode(std::string_view name, std::string_view value, bool (*allowed)(char)) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '%') {
      if (i + 2 >= value.size()) return bad(fmt::format("{}: truncated percent escape", name));
      const int hi = hex_value(value[i + 1]);
      const int lo = hex_value(value[i + 2]);
      if (hi < 0 || lo < 0) return bad(fmt::format("{}: bad percent escape", name));
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (allowed(c)) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      return bad(byte >= 0x20 && byte < 0x7f
                     ? fmt::format("{}: character '{}' must be percent-encoded", name, c)
                     : fmt::format("{}: byte 0x{:02x} must be percent-encoded", name, byte));
    }
  }
  return out;
}

// A text attribute: its Uri member and the size of the PKCS#11 field it is compared with.
struct TextAttr {
  std::string_view name;
  std::optional<std::string> Uri::*member;
  size_t max;
};

constexpr std::array kPathText = {
    TextAttr{"token", &Uri::token, 32},
    TextAttr{"manufacturer", &Uri::manufacturer, 32},
    TextAttr{"serial", &Uri::serial, 16},
    TextAttr{"model", &Uri::model, 16},
    TextAttr{"library-manufacturer", &Uri::library_manufacturer, 32},
    TextAttr{"library-description", &Uri::library_description, 32},
    TextAttr{"slot-description", &Uri::slot_description, 64},
    TextAttr{"slot-manufacturer", &Uri::slot_manufacturer, 32},
    TextAttr{"object", &Uri::object, 255},
};

constexpr std::array kQueryText = {
    TextAttr{"pin-source", &Uri::pin_source, 1024},
    TextAttr{"module-name", &Uri::module_name, 255},
    TextAttr{"module-path", &Uri::module_path, 1024},
};

constexpr std::array<std::pair<std::string_view, ObjectType>, 5> kTypes = {{
    {"private", ObjectType::kPrivate},
    {"public", ObjectType::kPublic},
    {"cert", ObjectType::kCert},
    {"secret-key", ObjectType::kSecretKey},
    {"data", ObjectType::kData},
}};

constexpr size_t kMaxId = 255;

bool is_vendor_name(std::string_view name) {
  if (name.size() <= 2 || !name.starts_with("x-")) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// split_attribute splits "name=value"; false when there is no '=' or the name is empty.
bool split_attribute(std::string_view attr, std::string_view* name, std::string_view* value) {
  const size_t eq = attr.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  *name = attr.substr(0, eq);
  *value = attr.substr(eq + 1);
  return true;
}

Result<void> set_text(const TextAttr& attr, std::string_view raw, bool (*allowed)(char), Uri* uri) {
  auto value = decode(attr.name, raw, allowed);
  if (!value) return tl::unexpected(value.error());
  if (value->find('\0') != std::string::npos)
    return bad(fmt::format("{}: NUL byte in value", attr.name));
  if (value->size() > attr.max)
    return bad(fmt::format("{}: value longer than {} bytes", attr.name, attr.max));
  uri->*attr.member = std::move(*value);
  return {};
}

Result<void> parse_path_attribute(std::string_view attr, Uri* uri) {
  std::string_view name;
  std::string_view raw;
  if (!split_attribute(attr, &name, &raw)) return bad("path attribute without name=value");
  for (const auto& t : kPathText)
    if (name == t.name) return set_text(t, raw, is_path_char, uri);
  if (name == "type") {
    auto value = decode(name, raw, is_path_char);
    if (!value) return tl::unexpected(value.error());
    for (const auto& [spelling, type] : kTypes) {
      if (*value == spelling) {
        uri->type = type;
        return {};
      }
    }
    return bad("type must be one of private, public, cert, secret-key, data");
  }
  if (name == "id") {
    auto value = decode(name, raw, is_path_char);
    if (!value) return tl::unexpected(value.error());
    if (value->size() > kMaxId) return bad(fmt::format("id: longer than {} bytes", kMaxId));
    uri->id = std::vector<uint8_t>(value->begin(), value->end());
    return {};
  }
  if (name == "slot-id") {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
    if (!is_decimal(raw) || ec != std::errc() || end != raw.data() + raw.size())
      return bad("slot-id must be a decimal number");
    uri->slot_id = v;
    return {};
  }
  if (name == "library-version") {
    const size_t dot = raw.find('.');
    const std::string_view major = raw.substr(0, dot);
    const std::string_view minor = dot == std::string_view::npos ? "0" : raw.substr(dot + 1);
    LibraryVersion v;
    if (!is_decimal(major) || !is_decimal(minor) || major.size() > 3 || minor.size() > 3 ||
        std::from_chars(major.data(), major.data() + major.size(), v.major).ec != std::errc() ||
        std::from_chars(minor.data(), minor.data() + minor.size(), v.minor).ec != std::errc() ||
        v.major > 255 || v.minor > 255)
      return bad("library-version must be MAJOR[.MINOR], each 0..255");
    uri->library_version = v;
    return {};
  }
  if (is_vendor_name(name)) {
    auto value = decode(name, raw, is_path_char);
    if (!value) return tl::unexpected(value.error());
    return {};
  }
  return bad(fmt::format("unknown path attribute '{}' (vendor attributes start with x-)",
                         decode(name, name, is_unreserved).value_or("?")));
}

Result<void> parse_query_attribute(std::string_view attr, Uri* uri) {
  std::string_view name;
  std::string_view raw;
  if (!split_attribute(attr, &name, &raw)) return bad("query attribute without name=value");
  if (name == "pin-value")
    return bad(
        "pin-value is refused: a PIN must not be written in configuration; put it in a "
        "file readable only by the gateway and name it with pin-source or the pin file "
        "setting");
  for (const auto& t : kQueryText) {
    if (name != t.name) continue;
    auto set = set_text(t, raw, is_query_char, uri);
    if (!set) return set;
    if (name == "module-path" && !uri->module_path->starts_with('/'))
      return bad("module-path must be an absolute path");
    if (name == "module-name" &&
        (uri->module_name->empty() || uri->module_name->find('/') != std::string::npos))
      return bad("module-name must be a name without '/'");
    return {};
  }
  if (is_vendor_name(name)) {
    auto value = decode(name, raw, is_query_char);
    if (!value) return tl::unexpected(value.error());
    return {};
  }
  return bad(fmt::format("unknown query attribute '{}' (vendor attributes start with x-)",
                         decode(name, name, is_unreserved).value_or("?")));
}

// each_component splits text on sep and hands each piece to parse. Empty pieces and a name seen
// before (in seen) are refused; an entirely empty text is no component at all.
template <class Parse>
Result<void> each_component(std::string_view text, char sep, std::string_view what,
                            std::vector<std::string>* seen, Parse parse) {
  if (text.empty()) return {};
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    const std::string_view piece =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (piece.empty()) return bad(fmt::format("empty {} attribute", what));
    const std::string name(piece.substr(0, piece.find('=')));
    if (std::find(seen->begin(), seen->end(), name) != seen->end() && name != "pin-value")
      return bad(
          fmt::format("attribute {} given twice", decode(name, name, is_unreserved).value_or("?")));
    seen->push_back(name);
    auto r = parse(piece);
    if (!r) return r;
    if (end == std::string_view::npos) return {};
    start = end + 1;
  }
}

void append_encoded(std::string* out, std::string_view value, bool (*allowed)(char)) {
  for (const char c : value) {
    if (allowed(c) && c != '&' && c != '%') {
      out->push_back(c);
    } else {
      *out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
}

}  // namespace

std::string_view object_type_name(ObjectType type) {
  for (const auto& [spelling, t] : kTypes)
    if (t == type) return spelling;
  return "?";
}

Result<Uri> parse_uri(std::string_view text) {
  if (text.size() > kMaxUri) return bad(fmt::format("longer than {} bytes", kMaxUri));
  if (text.size() < kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), text.begin(),
                  [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b); }))
    return bad("does not start with pkcs11:");
  text.remove_prefix(kScheme.size());
  const size_t q = text.find('?');
  const std::string_view path = text.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : text.substr(q + 1);

  Uri uri;
  std::vector<std::string> seen;
  auto r = each_component(path, ';', "path", &seen,
                          [&](std::string_view a) { return parse_path_attribute(a, &uri); });
  if (!r) return tl::unexpected(r.error());
  seen.clear();
  r = each_component(query, '&', "query", &seen,
                     [&](std::string_view a) { return parse_query_attribute(a, &uri); });
  if (!r) return tl::unexpected(r.error());
  return uri;
}

std::string format_uri(const Uri& uri) {
  std::string out(kScheme);
  bool first = true;
  auto attr = [&](std::string_view name) {
    if (!first) out.push_back(';');
    first = false;
    out += name;
    out.push_back('=');
  };
  for (const auto& t : kPathText) {
    if (t.name == "object") continue;
    if (const auto& v = uri.*t.member) {
      attr(t.name);
      append_encoded(&out, *v, is_path_char);
    }
  }
  if (uri.library_version) {
    attr("library-version");
    out += fmt::format("{}.{}", uri.library_version->major, uri.library_version->minor);
  }
  if (uri.slot_id) {
    attr("slot-id");
    out += fmt::format("{}", *uri.slot_id);
  }
  if (uri.object) {
    attr("object");
    append_encoded(&out, *uri.object, is_path_char);
  }
  if (uri.type) {
    attr("type");
    out += object_type_name(*uri.type);
  }
  if (uri.id) {
    attr("id");
    for (const uint8_t b : *uri.id) out += fmt::format("%{:02X}", b);
  }
  char sep = '?';
  for (const auto& t : kQueryText) {
    if (const auto& v = uri.*t.member) {
      out.push_back(sep);
      sep = '&';
      out += t.name;
      out.push_back('=');
      append_encoded(&out, *v, is_query_char);
    }
  }
  return out;
}

std::string describe_uri(const Uri& uri) {
  Uri brief;
  brief.token = uri.token;
  brief.object = uri.object;
  brief.id = uri.id;
  return format_uri(brief);
}

}  // namespace touchgate::pkcs11
