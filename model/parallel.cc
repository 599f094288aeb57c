#include "model/parallel.h"

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <vector>

namespace srn {

int DefaultThreads() {
  // Computed once: hardware_concurrency() reads /sys on every call, and servers ask per request.
  static const int threads = [] {
    if (const char* env = std::getenv("SRN_THREADS"); env != nullptr && *env != '\0') {
      const int n = std::atoi(env);
      if (n > 0) return n;
    }
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return threads;
}

void ParallelFor(int n, int threads, const std::function<void(int, int, int)>& fn) {
  if (n <= 0) return;
  threads = std::max(1, std::min(threads, n));
  if (threads == 1) {
    fn(0, n, 0);
    return;
  }
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  const int chunk = n / threads;
  const int extra = n % threads;
  int begin = 0;
  int first_end = 0;
  for (int w = 0; w < threads; ++w) {
    const int end = begin + chunk + (w < extra ? 1 : 0);
    if (w == 0) {
      first_end = end;
    } else {
      workers.emplace_back(fn, begin, end, w);
    }
    begin = end;
  }
  fn(0, first_end, 0);
  for (std::thread& t : workers) t.join();
}

}  // namespace srn
