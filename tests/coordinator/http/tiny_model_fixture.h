// TinyModelFixture: the base of the HTTP server tests — the bundled tiny reasoner's ModelText and
// an InProcessDispatcher on it, made once per test suite, and a wait for the dispatcher to be idle.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "coordinator/model_text.h"
#include "coordinator/replicas/in_process_dispatcher.h"

namespace ponder::coordinator::http::testing {

inline const std::string kTinyModelDir = std::string(PONDER_SOURCE_DIR) + "/models/tiny-reasoner";

class TinyModelFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto text = ModelText::load(kTinyModelDir);
    ASSERT_TRUE(text.has_value()) << text.error().to_string();
    model_ = new ModelText(std::move(*text));
    auto d = InProcessDispatcher::create(
        {.model_dir = kTinyModelDir, .threads = 1, .engine = model_->engine_options()});
    ASSERT_TRUE(d.has_value()) << d.error().to_string();
    dispatcher_ = d->release();
  }
  static void TearDownTestSuite() {
    delete dispatcher_;
    dispatcher_ = nullptr;
    delete model_;
    model_ = nullptr;
  }

  // Waits until the dispatcher has nothing in flight.
  static bool wait_idle(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (dispatcher_->stats().requests_in_flight == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  static inline ModelText* model_ = nullptr;
  static inline InProcessDispatcher* dispatcher_ = nullptr;
};

}  // namespace ponder::coordinator::http::testing
