#ifndef SRN_MODEL_NN_PARALLEL_H_
#define SRN_MODEL_NN_PARALLEL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "base/mutex.h"

namespace srn {

// The number of worker threads srn uses by default: $SRN_THREADS if set, else
// the hardware's; read once per process.
int DefaultThreads();

// A fixed set of long-lived worker threads that run ParallelFor chunks.
//
// Threads are started once, so per-thread state (thread_local workspaces, warm
// caches) survives from one call to the next; starting threads per call cost
// more than the work at small sizes. The pool's threads inherit the scheduling
// priority (nice value) of the thread that constructs the pool: a low-priority
// training worker gets low-priority helpers by owning its own pool.
//
// Thread-safe: any number of threads may call ParallelFor at once, and a chunk
// may itself call ParallelFor (the calling thread always works on its own job,
// so nesting cannot deadlock).
//
// Waiting polls for up to kSpinNanoseconds before it sleeps: an idle worker
// polls for the next job, and a caller whose own chunks are done polls for the
// others. A training step on short series takes a few hundred microseconds and
// would otherwise wait for two wake-ups, the worker's before its chunk and the
// caller's after it; polling made the Arabic-shape training benchmark 4-13%
// faster on 2 threads (docs/BENCHMARKS.md). Idle threads stop polling after
// that time, so an idle pool costs nothing.
class ThreadPool final {
 public:
  // `threads` counts the calling thread: a pool of n runs up to n chunks at
  // once, with n - 1 workers of its own. n <= 1 runs everything on the caller.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // How long an idle worker, or a caller waiting for the other chunks, polls
  // before it sleeps.
  static constexpr int64_t kSpinNanoseconds = 100'000;

  // Runs fn(begin, end, chunk) over [0, n) split into at most `threads`
  // contiguous chunks and returns when all are done. Chunks, and each chunk's
  // index, are fixed by n and threads alone (never by which thread runs them),
  // so results that depend only on the chunking are deterministic; `chunk` is
  // unique within the call, for per-chunk scratch space.
  void ParallelFor(int n, int threads,
                   const std::function<void(int begin, int end, int chunk)>& fn);

  // The process-wide pool of DefaultThreads() threads, started on first use.
  static ThreadPool& Default();

 private:
  struct Job;

  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs chunks of `job` until none is left to claim.
  static void Drain(Job* job);

  Mutex mu_;
  std::condition_variable_any work_;  // a job was queued, or stop_
  std::condition_variable_any done_;  // a worker left a job
  std::deque<Job*> queue_ ABSL_GUARDED_BY(mu_);  // jobs with chunks still unclaimed
  std::atomic<int> queued_{0};    // queue_.size(), readable without mu_
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

// ThreadPool::Default().ParallelFor(n, threads, fn).
void ParallelFor(int n, int threads, const std::function<void(int begin, int end, int chunk)>& fn);

}  // namespace srn

#endif  // SRN_MODEL_NN_PARALLEL_H_
