// Trust boundary: reads a file of the gateway's own state (written by the gateway, readable by
// root only); every line is parsed as untrusted anyway.
#include "gateway/known_hosts.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "ssh/key.h"
#include "ssh/unique_fd.h"

namespace touchgate::gateway {
namespace {

constexpr off_t kMaxFileBytes = 16 << 20;

std::mutex& file_mutex() {
  static std::mutex mu;
  return mu;
}

tl::unexpected<Error> io_error(const std::filesystem::path& file, const std::string& what) {
  return fail("known_hosts_io",
              fmt::format("{}: {}: {}", file.string(), what, std::strerror(errno)));
}

}  // namespace

Result<KnownHostKey> check_or_record(const std::filesystem::path& file, const std::string& target,
                                     std::span<const uint8_t> blob) {
  std::lock_guard lock(file_mutex());  // flock does not order threads of one process
  const ssh::UniqueFd f(
      ::open(file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (f.get() < 0) return io_error(file, "cannot open");
  if (::flock(f.get(), LOCK_EX) != 0) return io_error(file, "cannot lock");
  struct stat st {};
  if (::fstat(f.get(), &st) != 0) return io_error(file, "cannot stat");
  if (st.st_size > kMaxFileBytes) {
    return fail("known_hosts_too_large",
                fmt::format("{} holds {} bytes, more than the {} a known-hosts file may",
                            file.string(), static_cast<int64_t>(st.st_size), kMaxFileBytes));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n =
        ::pread(f.get(), text.data() + got, text.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(file, "cannot read");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);

  std::string_view rest(text);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.substr(0, sp) != target) continue;
    auto known = ssh::parse_key_line(line.substr(sp + 1));
    if (!known) continue;
    KnownHostKey k;
    if (std::equal(known->blob.begin(), known->blob.end(), blob.begin(), blob.end())) {
      k.outcome = KnownHostKey::Outcome::kSame;
    } else {
      k.outcome = KnownHostKey::Outcome::kOther;
      k.known_blob.assign(known->blob.begin(), known->blob.end());
    }
    return k;
  }

  // First use. A file cut inside a line (a crash while writing) gets its line ended first.
  std::string line;
  if (!text.empty() && text.back() != '\n') line.push_back('\n');
  line += target;
  line.push_back(' ');
  line += ssh::format_key_line(blob);
  line.push_back('\n');
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(f.get(), line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(file, "cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(f.get()) != 0) return io_error(file, "cannot sync");
  KnownHostKey k;
  k.outcome = KnownHostKey::Outcome::kRecorded;
  return k;
}

}  // namespace touchgate::gateway
