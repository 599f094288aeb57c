#include "model/nn/parallel.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace srn {
namespace {

using Chunk = std::tuple<int, int, int>;  // begin, end, chunk index

// Every (begin, end, chunk) a call produced, sorted by chunk.
std::vector<Chunk> Chunks(ThreadPool& pool, int n, int threads) {
  std::mutex mu;
  std::vector<Chunk> out;
  pool.ParallelFor(n, threads, [&](int begin, int end, int chunk) {
    std::lock_guard<std::mutex> lock(mu);
    out.emplace_back(begin, end, chunk);
  });
  std::sort(out.begin(), out.end(),
            [](const Chunk& a, const Chunk& b) { return std::get<2>(a) < std::get<2>(b); });
  return out;
}

TEST(ThreadPoolTest, CoversTheRangeOnceInContiguousChunks) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.threads(), 3);
  for (int n : {1, 2, 3, 7, 100, 1001}) {
    for (int threads : {1, 2, 3, 5, 16}) {
      const std::vector<Chunk> chunks = Chunks(pool, n, threads);
      ASSERT_EQ(static_cast<int>(chunks.size()), std::min(n, threads)) << n << " " << threads;
      int expected_begin = 0;
      for (int c = 0; c < static_cast<int>(chunks.size()); ++c) {
        const auto [begin, end, chunk] = chunks[c];
        EXPECT_EQ(chunk, c);
        EXPECT_EQ(begin, expected_begin);
        EXPECT_LT(begin, end);  // never an empty chunk
        expected_begin = end;
      }
      EXPECT_EQ(expected_begin, n);
    }
  }
}

TEST(ThreadPoolTest, ChunkingDependsOnlyOnNAndThreads) {
  ThreadPool one(1);  // no workers: runs everything on the caller
  ThreadPool four(4);
  for (int n : {5, 64, 257}) {
    for (int threads : {2, 3, 4, 9}) {
      EXPECT_EQ(Chunks(one, n, threads), Chunks(four, n, threads)) << n << " " << threads;
    }
  }
}

TEST(ThreadPoolTest, EmptyRangeRunsNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.ParallelFor(0, 2, [&](int, int, int) { ++calls; });
  pool.ParallelFor(-3, 2, [&](int, int, int) { ++calls; });
  EXPECT_EQ(calls, 0);
}

// Runs two chunks that each wait (up to 2 s) for the other to start, and
// returns the ids of the threads that ran them: two chunks that overlap in time
// ran on two threads.
std::vector<std::thread::id> RendezvousThreads(ThreadPool& pool, std::vector<int>* nice = nullptr) {
  std::vector<std::thread::id> ids(2);
  if (nice != nullptr) nice->assign(2, -100);
  std::atomic<int> started{0};
  pool.ParallelFor(2, 2, [&](int, int, int chunk) {
    ids[chunk] = std::this_thread::get_id();
    if (nice != nullptr)
      (*nice)[chunk] = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
    started.fetch_add(1);
    for (int i = 0; i < 2000 && started.load() < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  return ids;
}

TEST(ThreadPoolTest, RunsChunksAtOnceOnTwoThreads) {
  ThreadPool pool(2);
  const std::vector<std::thread::id> ids = RendezvousThreads(pool);
  EXPECT_NE(ids[0], ids[1]) << "both chunks ran on one thread although a worker was idle";
  EXPECT_TRUE(ids[0] == std::this_thread::get_id() || ids[1] == std::this_thread::get_id())
      << "the caller did not take part";
}

TEST(ThreadPoolTest, ConcurrentAndNestedCallsAllComplete) {
  ThreadPool pool(2);
  constexpr int kCallers = 6;
  constexpr int kN = 300;
  std::vector<std::vector<std::atomic<int>>> hits(kCallers);
  for (auto& h : hits) h = std::vector<std::atomic<int>>(kN);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        pool.ParallelFor(kN / 10, 3, [&](int begin, int end, int) {
          for (int i = begin; i < end; ++i) {
            // A nested call inside a chunk: the chunk's thread works on it
            // itself.
            pool.ParallelFor(10, 2, [&](int b, int e, int) {
              for (int j = b; j < e; ++j) hits[c][i * 10 + j].fetch_add(1);
            });
          }
        });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) {
    for (int i = 0; i < kN; ++i)
      ASSERT_EQ(hits[c][i].load(), 20) << "caller " << c << " item " << i;
  }
}

// Back-to-back calls whose chunks finish at once: a caller often sees its job
// done while spinning and returns, and the next call's job takes the same stack
// slot. A worker that still touches the old job then races with the new one's
// construction (ThreadSanitizer reports it: CI runs this test under TSan) and
// can corrupt its counters, which shows as a chunk run twice or never.
TEST(ThreadPoolTest, BackToBackCallsEachRunEveryChunkOnce) {
  ThreadPool pool(3);
  for (int call = 0; call < 20000; ++call) {
    std::atomic<int> runs[3] = {0, 0, 0};
    pool.ParallelFor(3, 3, [&](int, int, int chunk) { runs[chunk].fetch_add(1); });
    for (int c = 0; c < 3; ++c) ASSERT_EQ(runs[c].load(), 1) << "call " << call << " chunk " << c;
  }
}

// A pool destroyed while its workers spin for the next job stops them and
// returns (a worker spinning without looking at `stop` would hang the
// destructor).
TEST(ThreadPoolTest, DestroyingAPoolRightAfterACallStopsItsWorkers) {
  for (int i = 0; i < 200; ++i) {
    ThreadPool pool(3);
    std::atomic<int> runs{0};
    pool.ParallelFor(3, 3, [&](int, int, int) { runs.fetch_add(1); });
    EXPECT_EQ(runs.load(), 3);
  }
}

TEST(ThreadPoolTest, WorkersInheritTheCreatorsPriority) {
  const int caller_nice = getpriority(PRIO_PROCESS, 0);
  if (caller_nice >= 19) GTEST_SKIP() << "already at the lowest priority";
  std::vector<int> nice;
  std::thread creator([&] {
    // Lowering one's own priority needs no privilege; on Linux it applies to
    // this thread only.
    ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), caller_nice + 1),
              0);
    ThreadPool pool(2);  // its worker starts here, after the change
    const std::vector<std::thread::id> ids = RendezvousThreads(pool, &nice);
    ASSERT_NE(ids[0], ids[1]);
  });
  creator.join();
  EXPECT_THAT(nice, ::testing::ElementsAre(caller_nice + 1, caller_nice + 1));
  EXPECT_EQ(getpriority(PRIO_PROCESS, 0), caller_nice) << "the test thread's own priority changed";
}

TEST(ParallelForTest, UsesTheDefaultPool) {
  std::atomic<int> sum{0};
  ParallelFor(100, DefaultThreads(), [&](int begin, int end, int) {
    for (int i = begin; i < end; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 4950);
  EXPECT_EQ(ThreadPool::Default().threads(), DefaultThreads());
}

}  // namespace
}  // namespace srn
