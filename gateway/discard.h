// Callbacks for a channel the gateway is done with but libssh still keeps (until the client's
// CLOSE): whatever the client still sends on it is dropped instead of buffered without bound.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

namespace touchgate::gateway {

inline ssh_channel_callbacks discard_callbacks() {
  static ssh_channel_callbacks_struct cb = [] {
    ssh_channel_callbacks_struct c{};
    c.channel_data_function = [](ssh_session, ssh_channel, void*, uint32_t len, int,
                                 void*) -> int { return static_cast<int>(len); };
    ssh_callbacks_init(&c);
    return c;
  }();
  return &cb;
}

// retire_channel detaches `owner` from channel, leaves the discarding callbacks in its place,
// and frees it (libssh sends CLOSE if still needed and keeps it until the client's CLOSE).
inline void retire_channel(ssh_channel channel, ssh_channel_callbacks owner, bool close) {
  ssh_remove_channel_callbacks(channel, owner);
  ssh_set_channel_callbacks(channel, discard_callbacks());
  if (close && ssh_channel_is_open(channel)) ssh_channel_close(channel);
  ssh_channel_free(channel);
}

}  // namespace touchgate::gateway
