#include "base/mutex.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

class Counter {
 public:
  void Add() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    ++value_;
  }
  int Read() ABSL_LOCKS_EXCLUDED(mu_) {
    ReaderMutexLock lock(&mu_);
    return value_;
  }
  // Waits until the value reaches `target`.
  void AwaitAtLeast(int target) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    mu_.Await([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return value_ >= target; });
  }
  bool AwaitAtLeastFor(int target, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return value_ >= target; }, timeout);
  }

 private:
  Mutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(MutexTest, ExcludesWritersAcrossThreads) {
  Counter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) counter.Add();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter.Read(), 40000);
}

TEST(MutexTest, AwaitReturnsOnceAnotherThreadMakesTheConditionTrue) {
  Counter counter;
  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    counter.AwaitAtLeast(3);
    returned.store(true);
  });
  counter.Add();
  counter.Add();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(returned.load());  // 2 < 3: still waiting
  counter.Add();
  waiter.join();
  EXPECT_TRUE(returned.load());
}

TEST(MutexTest, AwaitWithTimeoutSaysWhetherTheConditionHeld) {
  Counter counter;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(counter.AwaitAtLeastFor(1, absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  counter.Add();
  EXPECT_TRUE(counter.AwaitAtLeastFor(1, absl::Seconds(10)));
  std::thread adder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    counter.Add();
  });
  EXPECT_TRUE(counter.AwaitAtLeastFor(2, absl::Seconds(10)));
  adder.join();
}

TEST(MutexTest, ReadersShareTheMutex) {
  Mutex mu;
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      ReaderMutexLock lock(&mu);
      const int now = inside.fetch_add(1) + 1;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      // Stay until every reader is inside (they could not all be inside an exclusive lock).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (inside.load() < 3 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
    });
  }
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(most.load(), 3);
}

}  // namespace
}  // namespace srn
