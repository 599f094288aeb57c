#ifndef SRN_BASE_TASK_THREADS_H_
#define SRN_BASE_TASK_THREADS_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"

namespace srn {

// A fixed set of threads that run posted tasks in order of arrival, each on a full-size stack:
// for work that must not run on the thread that asked for it (a callback thread of gRPC that
// must not block, a civetweb thread with a small stack). The destructor runs the tasks still
// queued, then joins. Thread-safe.
class TaskThreads final {
 public:
  explicit TaskThreads(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~TaskThreads() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }
  TaskThreads(const TaskThreads&) = delete;
  TaskThreads& operator=(const TaskThreads&) = delete;

  // Queues `task` and returns.
  void Post(std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
  }

  // Runs `task` on one of the threads; returns when it is done.
  void Run(const std::function<void()>& task) ABSL_LOCKS_EXCLUDED(mu_) {
    std::promise<void> done;
    std::future<void> finished = done.get_future();
    Post([&] {
      task();
      done.set_value();
    });
    finished.wait();
  }

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_) {
    for (;;) {
      std::function<void()> task;
      {
        MutexLock lock(&mu_);
        while (!stopping_ && tasks_.empty()) mu_.Wait(&wake_);
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  Mutex mu_;
  std::condition_variable_any wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace srn

#endif  // SRN_BASE_TASK_THREADS_H_
