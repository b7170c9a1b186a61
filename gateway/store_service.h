// The store on its own thread: workers never wait on SQLite (its locks may be held by another
// gateway or the admin CLI). Jobs run in submission order on one thread that owns the one Store
// connection; each job posts its result back to the worker that asked.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ssh/error.h"
#include "store/store.h"

namespace touchgate::gateway {

class StoreService {
 public:
  using Job = std::function<void(store::Store*)>;

  ~StoreService();
  StoreService(const StoreService&) = delete;
  StoreService& operator=(const StoreService&) = delete;

  // start opens the database at path (creating and migrating it) and starts the thread.
  static Result<std::unique_ptr<StoreService>> start(const std::string& path);

  // submit queues job; it runs on the store thread with the open store. After stop() jobs run
  // with nullptr (the caller must then fail closed). Thread-safe.
  void submit(Job job);
  // stop runs the jobs already queued, then ends the thread.
  void stop();

 private:
  explicit StoreService(std::unique_ptr<store::Store> store);
  void run();

  std::unique_ptr<store::Store> store_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace touchgate::gateway
