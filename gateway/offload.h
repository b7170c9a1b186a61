// Offload: one thread for work that may block and must not run on a worker — signing with the
// CA key in a PKCS#11 token (a hardware token may take a while), the known-hosts file. Jobs run
// in submission order; each job posts its result back to the worker that asked.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace touchgate::gateway {

class Offload {
 public:
  explicit Offload(std::string name);
  ~Offload();  // runs the jobs already queued, then ends the thread
  Offload(const Offload&) = delete;
  Offload& operator=(const Offload&) = delete;

  // submit queues job (thread-safe). After stop() the job runs on the caller's thread.
  void submit(std::function<void()> job);
  void stop();

 private:
  void run();

  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace touchgate::gateway
