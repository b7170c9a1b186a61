#include "cli/keys.h"

#include <cstdio>
#include <ctime>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/audit_record.h"
#include "cli/context.h"
#include "cli/format.h"
#include "cli/key_file.h"
#include "ssh/key.h"
#include "store/store.h"

namespace touchgate::cli {
namespace {

int64_t now() {
  return static_cast<int64_t>(std::time(nullptr));
}

// full_fingerprint accepts a fingerprint with or without its "SHA256:" prefix.
std::string full_fingerprint(const std::string& text) {
  if (text.rfind("SHA256:", 0) == 0) return text;
  return "SHA256:" + text;
}

// recorded reports a revocation that is made (it stands in any case); it is on record in the
// audit log, or the command fails saying that it is not.
int recorded(const std::filesystem::path& config_file, gateway::KeyChange change,
             const store::EnrolledKey& key) {
  auto r = record_key_change(config_file, change, key);
  if (!r) {
    return report(Error{r.error().code,
                        fmt::format("the change was made, but its audit record could not be "
                                    "written: {}",
                                    r.error().message)});
  }
  return kExitOk;
}

std::string flags_of(const store::EnrolledKey& k) {
  std::vector<std::string> flags;
  if (k.pin_required) flags.push_back("pin");
  if (!k.touch_proven.empty()) flags.push_back("touch-proven");
  return flags.empty() ? "-" : fmt::format("{}", fmt::join(flags, ","));
}

std::string table_of(const std::vector<store::EnrolledKey>& keys) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& k : keys) {
    rows.push_back({
        k.principal,
        k.fingerprint,
        std::string(store::kind_name(k.kind)),
        k.key_type,
        k.label.empty() ? "-" : k.label,
        flags_of(k),
        std::string(store::status_name(k.status)),
        format_time(k.created_at),
        k.last_used_at == 0 ? "-" : format_time(k.last_used_at),
        k.last_counter ? std::to_string(*k.last_counter) : "-",
    });
  }
  return render_table({"PRINCIPAL", "FINGERPRINT", "KIND", "TYPE", "LABEL", "FLAGS", "STATUS",
                       "CREATED", "LAST USED", "COUNTER"},
                      rows);
}

// json_of renders keys as a JSON array; the field names are part of touchgate's interface.
std::string json_of(const std::vector<store::EnrolledKey>& keys) {
  using Json = nlohmann::ordered_json;
  Json out = Json::array();
  for (const auto& k : keys) {
    Json j;
    j["principal"] = k.principal;
    j["fingerprint"] = k.fingerprint;
    j["kind"] = store::kind_name(k.kind);
    j["key_type"] = k.key_type;
    j["public_key"] = ssh::format_key_line(k.key_blob);
    j["label"] = k.label;
    j["pin_required"] = k.pin_required;
    j["touch_proven"] = k.touch_proven;
    j["status"] = store::status_name(k.status);
    j["status_reason"] = k.status_reason;
    j["status_changed_at"] = format_time(k.status_changed_at);
    j["created_at"] = format_time(k.created_at);
    j["last_used_at"] = k.last_used_at == 0 ? Json(nullptr) : Json(format_time(k.last_used_at));
    j["last_counter"] = k.last_counter ? Json(*k.last_counter) : Json(nullptr);
    out.push_back(std::move(j));
  }
  // Text that is not valid UTF-8 is replaced rather than refused: listing must always work.
  return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace

KeysCommand::KeysCommand(CLI::App& app) {
  keys_ = app.add_subcommand("keys", "Enroll, list and revoke users' hardware keys");
  keys_->require_subcommand(0, 1);

  add_ = keys_->add_subcommand("add", "Enroll a FIDO2 security key or PIV key for a user");
  add_->add_option("--user", user_, "User (certificate principal) the key belongs to")
      ->required()
      ->option_text("USER");
  add_->add_option("--kind", kind_, "fido2 (sk-ecdsa, sk-ed25519) or piv (ecdsa, ed25519, rsa)")
      ->required()
      ->check(CLI::IsMember({"fido2", "piv"}))
      ->option_text("fido2|piv");
  add_->add_option("--label", label_, "A name for the key, e.g. \"yubikey 5c\"")
      ->option_text("TEXT");
  add_->add_flag("--pin-required", pin_required_, "Record that this key must be used with its PIN");
  add_->add_option("KEYFILE", key_file_, "OpenSSH public key file (.pub) of the key")
      ->required()
      ->option_text(" ");

  list_ = keys_->add_subcommand("list", "List enrolled keys");
  list_->add_option("--user", user_, "Only the keys of this user")->option_text("USER");
  list_->add_flag("--json", json_, "Print a JSON array instead of a table");

  revoke_ = keys_->add_subcommand("revoke", "Revoke a key: it is refused from now on");
  revoke_->add_option("FINGERPRINT", fingerprint_, "The key's SHA256 fingerprint")
      ->required()
      ->option_text(" ");

  clear_clone_ = keys_->add_subcommand(
      "clear-clone", "Return a suspected clone to active and forget its last counter");
  clear_clone_->add_option("FINGERPRINT", fingerprint_, "The key's SHA256 fingerprint")
      ->required()
      ->option_text(" ");
}

bool KeysCommand::selected() const {
  return keys_->parsed();
}

bool KeysCommand::command_chosen() const {
  return !keys_->get_subcommands().empty();
}

std::string KeysCommand::missing_command_message() const {
  return "a keys command is required: add, list, revoke, clear-clone";
}

int KeysCommand::run(const std::filesystem::path& config_file) const {
  if (add_->parsed()) return add(config_file);
  if (list_->parsed()) return list(config_file);
  if (revoke_->parsed()) return revoke(config_file);
  if (clear_clone_->parsed()) return clear_clone(config_file);
  return kExitUsage;
}

int KeysCommand::add(const std::filesystem::path& config_file) const {
  store::NewKey key;
  if (!store::parse_kind(kind_, &key.kind)) return kExitUsage;  // CLI11 checked it
  auto blob = read_public_key_file(key_file_);
  if (!blob) return report(blob.error());
  key.key_blob = std::move(*blob);
  key.principal = user_;
  key.label = label_;
  key.pin_required = pin_required_;
  auto store = open_store(config_file);
  if (!store) return report(store.error());
  auto added = (*store)->add_key(key, now());
  if (!added) return report(added.error());
  // Fail closed: a key whose enrollment is not on record does not stay usable.
  if (auto r = record_key_change(config_file, gateway::KeyChange::kAdded, *added); !r) {
    auto undone = (*store)->revoke_key(added->fingerprint, now());
    return report(Error{r.error().code,
                        fmt::format("key {} was not enrolled: its audit record could not be "
                                    "written ({}); {}",
                                    added->fingerprint, r.error().message,
                                    undone ? "it was revoked at once"
                                           : "revoking it failed too: " + undone.error().message +
                                                 "; revoke it by hand")});
  }
  std::printf("enrolled %s (%s, %s) for %s\n", added->fingerprint.c_str(), added->key_type.c_str(),
              std::string(store::kind_name(added->kind)).c_str(), added->principal.c_str());
  return kExitOk;
}

int KeysCommand::list(const std::filesystem::path& config_file) const {
  auto store = open_store(config_file);
  if (!store) return report(store.error());
  std::optional<std::string_view> principal;
  if (!user_.empty()) principal = user_;
  auto keys = (*store)->list_keys(principal);
  if (!keys) return report(keys.error());
  const std::string text = json_ ? json_of(*keys) : table_of(*keys);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

int KeysCommand::revoke(const std::filesystem::path& config_file) const {
  auto store = open_store(config_file);
  if (!store) return report(store.error());
  auto key = (*store)->revoke_key(full_fingerprint(fingerprint_), now());
  if (!key) return report(key.error());
  std::printf("revoked %s (%s) of %s\n", key->fingerprint.c_str(), key->key_type.c_str(),
              key->principal.c_str());
  std::fflush(stdout);
  return recorded(config_file, gateway::KeyChange::kRevoked, *key);
}

int KeysCommand::clear_clone(const std::filesystem::path& config_file) const {
  auto store = open_store(config_file);
  if (!store) return report(store.error());
  // On record before the key is trusted again (the store refuses keys that are not suspected).
  auto before = (*store)->find_key(full_fingerprint(fingerprint_));
  if (!before) return report(before.error());
  if (before->status == store::KeyStatus::kSuspectedClone) {
    if (auto r = record_key_change(config_file, gateway::KeyChange::kCloneCleared, *before); !r) {
      return report(Error{r.error().code,
                          fmt::format("key {} stays suspended: the audit record could not be "
                                      "written ({})",
                                      before->fingerprint, r.error().message)});
    }
  }
  auto key = (*store)->clear_clone(full_fingerprint(fingerprint_), now());
  if (!key) return report(key.error());
  std::printf("cleared %s (%s) of %s: active again; its next touch is accepted with any counter\n",
              key->fingerprint.c_str(), key->key_type.c_str(), key->principal.c_str());
  return kExitOk;
}

}  // namespace touchgate::cli
