#include "model/parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

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

// One ParallelFor call. It lives on the caller's stack; the caller returns only
// once it is off the queue, every chunk has run and no worker still holds a
// pointer to it (`active`).
struct ThreadPool::Job {
  const std::function<void(int, int, int)>* fn;
  int n;
  int chunks;
  std::atomic<int> next{0};  // the next chunk to claim
  std::atomic<int> pending;  // chunks not yet finished
  int active = 0;            // workers inside Drain(this); guarded by the pool's mu_
};

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
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
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Job* job = queue_.front();
    if (job->next.load() >= job->chunks) {
      queue_.pop_front();  // all claimed; its caller waits for the stragglers
      continue;
    }
    ++job->active;
    lock.unlock();
    Drain(job);
    lock.lock();
    --job->active;
    done_.notify_all();
  }
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
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(&job);
  }
  if (threads - 1 >= static_cast<int>(workers_.size())) {
    work_.notify_all();
  } else {
    for (int i = 1; i < threads; ++i) work_.notify_one();
  }
  Drain(&job);
  std::unique_lock<std::mutex> lock(mu_);
  if (auto it = std::find(queue_.begin(), queue_.end(), &job); it != queue_.end()) queue_.erase(it);
  done_.wait(lock, [&job] { return job.pending.load() == 0 && job.active == 0; });
}

void ParallelFor(int n, int threads, const std::function<void(int, int, int)>& fn) {
  ThreadPool::Default().ParallelFor(n, threads, fn);
}

}  // namespace srn
