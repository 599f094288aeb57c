#include "model/nn/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace srn {

int DefaultThreads() {
  // Computed once: hardware_concurrency() reads /sys on every call, and servers
  // ask per request.
  static const int threads = [] {
    if (const char* env = std::getenv("SRN_THREADS"); env != nullptr && *env != '\0') {
      const int n = std::atoi(env);
      if (n > 0) return n;
    }
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return threads;
}

namespace {

// Polls `done` for up to ThreadPool::kSpinNanoseconds; returns whether it became true.
template <typename Done>
bool SpinUntil(Done done) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::nanoseconds(ThreadPool::kSpinNanoseconds);
  while (true) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#else
      std::this_thread::yield();
#endif
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace

// One ParallelFor call. It lives on the caller's stack; the caller returns only
// once it is off the queue, every chunk has run and no worker still holds a
// pointer to it (`active`).
struct ThreadPool::Job {
  const std::function<void(int, int, int)>* fn;
  int n;
  int chunks;
  std::atomic<int> next{0};  // the next chunk to claim
  std::atomic<int> pending;  // chunks not yet finished
  // Workers inside Drain(this); changed under the pool's mu_, read without it
  // by a spinning caller.
  std::atomic<int> active{0};
};

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    MutexLock lock(&mu_);
    stop_.store(true);
  }
  work_.notify_all();
  for (std::thread& t : workers_) t.join();
}

ThreadPool& ThreadPool::Default() {
  // Never destroyed: threads still running chunks at exit must not find the
  // pool gone.
  static ThreadPool* const pool = new ThreadPool(DefaultThreads());
  return *pool;
}

void ThreadPool::Drain(Job* job) {
  for (int c = job->next.fetch_add(1); c < job->chunks; c = job->next.fetch_add(1)) {
    const int64_t n = job->n;
    const int begin = static_cast<int>(n * c / job->chunks);
    const int end = static_cast<int>(n * (c + 1) / job->chunks);
    (*job->fn)(begin, end, c);
    job->pending.fetch_sub(1);
  }
}

void ThreadPool::WorkerLoop() {
  mu_.Lock();
  while (true) {
    if (queue_.empty() && !stop_.load()) {
      mu_.Unlock();
      SpinUntil([this] { return queued_.load(std::memory_order_relaxed) > 0 || stop_.load(); });
      mu_.Lock();
    }
    while (!stop_.load() && queue_.empty()) mu_.Wait(&work_);
    if (stop_.load()) break;
    Job* job = queue_.front();
    if (job->next.load() >= job->chunks) {
      queue_.pop_front();  // all claimed; its caller waits for the stragglers
      queued_.store(static_cast<int>(queue_.size()));
      continue;
    }
    ++job->active;
    mu_.Unlock();
    Drain(job);
    mu_.Lock();
    --job->active;
    done_.notify_all();
  }
  mu_.Unlock();
}

void ThreadPool::ParallelFor(int n, int threads, const std::function<void(int, int, int)>& fn) {
  if (n <= 0) return;
  threads = std::max(1, std::min(threads, n));
  if (threads == 1 || workers_.empty()) {
    // Same chunks as the parallel path, run in order, so results do not depend
    // on the pool.
    for (int c = 0; c < threads; ++c) {
      fn(static_cast<int>(int64_t{n} * c / threads),
         static_cast<int>(int64_t{n} * (c + 1) / threads), c);
    }
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.chunks = threads;
  job.pending.store(threads);
  {
    MutexLock lock(&mu_);
    queue_.push_back(&job);
    queued_.store(static_cast<int>(queue_.size()));
  }
  if (threads - 1 >= static_cast<int>(workers_.size())) {
    work_.notify_all();
  } else {
    for (int i = 1; i < threads; ++i) work_.notify_one();
  }
  Drain(&job);
  {
    MutexLock lock(&mu_);
    if (auto it = std::find(queue_.begin(), queue_.end(), &job); it != queue_.end()) {
      queue_.erase(it);
      queued_.store(static_cast<int>(queue_.size()));
    }
  }
  // Off the queue, no worker can join the job any more: once those inside have
  // left it, it is done.
  auto finished = [&job] { return job.pending.load() == 0 && job.active.load() == 0; };
  if (finished() || SpinUntil(finished)) return;
  MutexLock lock(&mu_);
  while (!finished()) mu_.Wait(&done_);
}

void ParallelFor(int n, int threads, const std::function<void(int, int, int)>& fn) {
  ThreadPool::Default().ParallelFor(n, threads, fn);
}

}  // namespace srn
