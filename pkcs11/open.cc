#include "pkcs11/open.h"

#include <fmt/format.h>

#include "pkcs11/file_signer.h"
#include "pkcs11/token_signer.h"
#include "pkcs11/uri.h"

namespace touchgate::pkcs11 {

Result<std::unique_ptr<ssh::Signer>> open_ca_signer(const CaKeyConfig& config) {
  return open_signer(config, kCaKey);
}

Result<std::unique_ptr<ssh::Signer>> open_signer(const CaKeyConfig& config, const KeyRole& role) {
  const auto config_error = [&role](std::string message) -> tl::unexpected<Error> {
    return fail(std::string(role.config_code), fmt::format("{}: {}", role.name, message));
  };
  const bool token = !config.pkcs11_uri.empty();
  const bool file = !config.key_file.empty();
  if (token == file)
    return config_error(token ? "both a PKCS#11 URI and a key file are set; choose one"
                              : "neither a PKCS#11 URI nor a key file is set");
  if (file) {
    if (!config.module.empty() || !config.pin_file.empty())
      return config_error("a PKCS#11 module or PIN file is set with a key file");
    auto signer = FileSigner::open(config.key_file);
    if (!signer) return tl::unexpected(signer.error());
    return std::unique_ptr<ssh::Signer>(std::move(*signer));
  }

  auto uri = parse_uri(config.pkcs11_uri);
  if (!uri) return tl::unexpected(uri.error());

  std::filesystem::path module = config.module;
  if (uri->module_path) {
    if (!module.empty() && module != std::filesystem::path(*uri->module_path))
      return config_error(fmt::format("the module {} and the URI's module-path {} differ",
                                      module.string(), *uri->module_path));
    module = *uri->module_path;
  }
  if (module.empty())
    return config_error(uri->module_name
                            ? "module-name is not resolved; give the module's path"
                            : "no PKCS#11 module: set the module path or the URI's module-path");

  std::filesystem::path pin_file = config.pin_file;
  if (uri->pin_source) {
    std::string_view source = *uri->pin_source;
    if (source.starts_with("file:")) source.remove_prefix(5);
    if (!source.starts_with('/'))
      return config_error("pin-source must name a file (file:/path or /path)");
    if (!pin_file.empty() && pin_file != std::filesystem::path(source))
      return config_error(
          fmt::format("the PIN file {} and the URI's pin-source differ", pin_file.string()));
    pin_file = std::string(source);
  }
  if (pin_file.empty())
    return config_error("no PIN file: set the PIN file or the URI's pin-source");

  auto signer = TokenSigner::open(module, *uri, pin_file);
  if (!signer) return tl::unexpected(signer.error());
  return std::unique_ptr<ssh::Signer>(std::move(*signer));
}

}  // namespace touchgate::pkcs11
