#include "policy/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ssh/unique_fd.h"

namespace touchgate::policy {

Result<std::vector<uint8_t>> read_file(const std::filesystem::path& file, size_t max_size,
                                       const std::string& code) {
  const std::string name = file.string();
  ssh::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    return fail(code, fmt::format("{}: cannot open: {}", name, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail(code, fmt::format("{}: cannot stat: {}", name, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return fail(code, fmt::format("{}: not a regular file", name));
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return fail(
        code, fmt::format("{}: file too large ({} bytes, at most {})", name, st.st_size, max_size));
  }
  std::vector<uint8_t> data;
  data.reserve(static_cast<size_t>(st.st_size));
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(code, fmt::format("{}: cannot read: {}", name, std::strerror(errno)));
    }
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > max_size) {
      return fail(code, fmt::format("{}: file too large (more than {} bytes)", name, max_size));
    }
    data.insert(data.end(), buf, buf + n);
  }
  return data;
}

}  // namespace touchgate::policy
