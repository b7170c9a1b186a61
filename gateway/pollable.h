// Something a worker's epoll loop can wake: a client connection, an upstream socket, an eventfd.
#pragma once

#include <cstdint>

namespace touchgate::gateway {

class Pollable {
 public:
  virtual ~Pollable() = default;
  // on_events runs on the owning worker thread with the epoll event mask.
  virtual void on_events(uint32_t events) = 0;
};

}  // namespace touchgate::gateway
