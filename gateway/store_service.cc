#include "gateway/store_service.h"

#include <time.h>

#include <utility>

namespace touchgate::gateway {

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

StoreService::StoreService(std::unique_ptr<store::Store> store) : store_(std::move(store)) {}

StoreService::~StoreService() {
  stop();
}

Result<std::unique_ptr<StoreService>> StoreService::start(const std::string& path) {
  auto store = store::Store::open(path);
  if (!store) return tl::unexpected(store.error());
  std::unique_ptr<StoreService> service(new StoreService(std::move(*store)));
  service->thread_ = std::thread([s = service.get()] { s->run(); });
  return service;
}

void StoreService::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      jobs_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  job(nullptr);
}

void StoreService::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void StoreService::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job(store_.get());
  }
}

}  // namespace touchgate::gateway
