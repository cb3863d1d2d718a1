// SlowDispatcher: a Dispatcher that delays every output by `delay` on the dispatcher's thread, so
// that a generation lasts a while (disconnects, drains and aborts mid-request in the HTTP tests).
#pragma once

#include <chrono>
#include <thread>
#include <utility>

#include "coordinator/replicas/dispatcher.h"

namespace ponder::coordinator::http::testing {

class SlowDispatcher final : public Dispatcher {
 public:
  SlowDispatcher(Dispatcher& inner, std::chrono::milliseconds delay)
      : inner_(inner), delay_(delay) {}
  Expected<int64_t> submit(worker::EngineRequest r, OutputFn fn) override {
    return inner_.submit(std::move(r),
                         [fn = std::move(fn), d = delay_](const worker::EngineOutput& o) {
                           std::this_thread::sleep_for(d);
                           fn(o);
                         });
  }
  void cancel(int64_t id) override { inner_.cancel(id); }
  DispatcherStats stats() const override { return inner_.stats(); }

 private:
  Dispatcher& inner_;
  std::chrono::milliseconds delay_;
};

}  // namespace ponder::coordinator::http::testing
