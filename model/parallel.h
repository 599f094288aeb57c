#ifndef SRN_MODEL_PARALLEL_H_
#define SRN_MODEL_PARALLEL_H_

#include <functional>

namespace srn {

// The number of worker threads srn uses by default: $SRN_THREADS if set, else the hardware's;
// read once per process.
int DefaultThreads();

// Runs fn(begin, end, worker) over [0, n) split into at most `threads` contiguous chunks, one per
// thread (worker 0 runs on the calling thread), and returns when all are done. Chunks are fixed
// by n and threads alone, so results that depend only on the chunking are deterministic.
void ParallelFor(int n, int threads, const std::function<void(int begin, int end, int worker)>& fn);

}  // namespace srn

#endif  // SRN_MODEL_PARALLEL_H_
