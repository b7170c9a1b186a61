// The store on its own thread: workers never wait on SQLite (its locks may be held by another
// gateway or the admin CLI). Jobs run in submission order on one thread that owns the one Store
// connection; each job posts its result back to the worker that asked.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/worker.h"
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

// thread_cpu_ns is the calling thread's CPU time, for the gateway's accounting of a touch.
int64_t thread_cpu_ns();

// ask_store runs query on the store thread, then done(result, CPU ns the query took) on
// `worker`, unless `alive` has expired by then (the asker is gone). Without a store (none
// configured, or stopped) done gets the error "store_io": callers fail closed.
template <class T>
void ask_store(Worker& worker, std::weak_ptr<int> alive,
               std::function<Result<T>(store::Store&)> query,
               std::function<void(Result<T>, int64_t)> done) {
  auto answer = [w = &worker, alive, done = std::move(done)](Result<T> r, int64_t ns) mutable {
    w->post([alive, done = std::move(done), r = std::move(r), ns]() mutable {
      if (!alive.expired()) done(std::move(r), ns);
    });
  };
  StoreService* service = worker.runtime().store;
  if (service == nullptr) {
    answer(tl::unexpected(Error{"store_io", "the gateway has no key store"}), 0);
    return;
  }
  service->submit([query = std::move(query), answer = std::move(answer)](store::Store* st) mutable {
    if (st == nullptr) {
      answer(tl::unexpected(Error{"store_io", "the key store is shut down"}), 0);
      return;
    }
    const int64_t t0 = thread_cpu_ns();
    Result<T> r = query(*st);
    answer(std::move(r), thread_cpu_ns() - t0);
  });
}

}  // namespace touchgate::gateway
