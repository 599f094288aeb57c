// srn-loadgen: drives srn-server with unary RPCs and reports throughput and
// latency percentiles. bench/run_service_bench.sh runs it for the figures of
// docs/BENCHMARKS.md ("Service throughput and latency").
//
// Two ways to apply load:
// - Closed loop (default): --concurrency calls are always in flight; each
// completion starts the
//   next. Finds the saturating throughput and the latency at that concurrency.
// - Open loop (--rate=R): calls are scheduled every 1/R seconds whatever the
// server does, and each
//   latency counts from the call's scheduled time, not from when it was
//   actually sent. A server that stalls therefore cannot hide the stall by
//   slowing the client down (coordinated omission): calls that had to wait for
//   a free slot (--max_outstanding) or for the client thread carry that wait in
//   their latency.
//
// Requests are generated and serialized before the run (--payloads distinct
// random ones, cycled) and sent as bytes through the generic stub, so during
// the run the client spends its CPU on gRPC alone: it shares the machine with
// the server. Every RPC kind is first called once through the typed stub and
// its response checked, so the bytes are known to be the right requests.
//
// Safety: targets must be loopback addresses (or unix: sockets) unless
// --allow_remote; every run is bounded in time (--warmup + --duration, each
// call --deadline_ms) and in size (flag limits).

#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/channel_arguments.h"
#include "base/flags_help.h"
#include "client/series_files.h"
#include "srn/v1/similarity.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "server address (loopback unless --allow_remote)");
ABSL_FLAG(bool, allow_remote, false, "allow a target that is not a loopback address");
ABSL_FLAG(std::string, rpc, "check",
          "what to call: check (grpc.health.v1 Check, the ceiling), embed, "
          "similarity, verify, "
          "identify or enroll");
ABSL_FLAG(int, concurrency, 32, "closed loop: calls kept in flight");
ABSL_FLAG(double, rate, 0, "open loop: calls per second at fixed intervals (0: closed loop)");
ABSL_FLAG(int, send_quantum_us, 250,
          "open loop: the sender wakes on this time grid and sends every call "
          "then due, instead of "
          "sleeping once per call (0: once per call); adds at most this to the "
          "measured latency");
ABSL_FLAG(int, max_outstanding, 4096,
          "open loop: at most this many calls in flight; later calls wait, and "
          "the wait counts");
ABSL_FLAG(int, channels, 4, "gRPC channels (each its own connection); calls go round-robin");
ABSL_FLAG(int, threads, 1, "client completion-queue threads");
ABSL_FLAG(double, warmup, 2, "seconds of load before measuring");
ABSL_FLAG(double, duration, 10, "seconds measured");
ABSL_FLAG(int, deadline_ms, 10000, "deadline of each call");
ABSL_FLAG(int, frames, 40, "frames per generated series");
ABSL_FLAG(int, batch, 1, "series per Embed call");
ABSL_FLAG(int, references, 5, "references per enrolled subject (verify, identify, enroll)");
ABSL_FLAG(int, enroll_subjects, 0,
          "identify: first enroll this many subjects (<prefix>-i<n>, replacing "
          "any of that id)");
ABSL_FLAG(int, enroll_concurrency, 32, "enrollment calls in flight");
ABSL_FLAG(int, top_k, 5, "identify: candidates asked for");
ABSL_FLAG(int, payloads, 64, "distinct random requests, cycled through");
ABSL_FLAG(std::string, signatures, "",
          "a directory of SVC2004 signature files (U<user>S<n>.TXT) to send instead of generated "
          "series: the first user's S1..S<references> are the Verify subject's references, and "
          "--payloads other files (genuine and forged, every user) the queries");
ABSL_FLAG(std::string, http_requests_out, "",
          "verify: after enrolling, write the Verify requests as HTTP/JSON (one per line: the "
          "path, a tab, the body) to this file for an HTTP load tool (bench/http_vs_grpc.sh), "
          "and exit without applying load");
ABSL_FLAG(std::string, subject_prefix, "loadgen", "prefix of the subject ids this tool enrolls");
ABSL_FLAG(uint64_t, seed, 1, "random seed of the generated series");
ABSL_FLAG(int, server_pid, 0,
          "also report the CPU this process (e.g. the server) used while measuring");

namespace srn {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";
constexpr char kServicePrefix[] = "/srn.v1.SimilarityService/";

// Loose bounds that keep a mistyped flag from exhausting the machine.
constexpr int kMaxConcurrency = 10000;
constexpr int kMaxChannels = 64;
constexpr int kMaxThreads = 16;
constexpr double kMaxRate = 1e6;
constexpr double kMaxSeconds = 600;
constexpr int kMaxFrames = 20000;
constexpr int kMaxBatch = 1024;
constexpr int kMaxReferences = 64;
constexpr int kMaxEnrollSubjects = 2000000;
constexpr int kMaxPayloads = 4096;

int64_t NowNs(Clock::time_point origin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - origin).count();
}

// Latencies in nanoseconds, in log-linear buckets (HDR-histogram style): exact
// below 256 ns, then 128 buckets per power of two, so a reported percentile is
// at most 1/128 (0.8%) above the true value. Fixed size (37 KB) whatever the
// run's length; merging is adding counts.
class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets, 0) {}

  void Record(int64_t ns) {
    if (ns < 0) ns = 0;
    ++counts_[Index(static_cast<uint64_t>(ns))];
    ++count_;
    sum_ += static_cast<double>(ns);
    max_ = std::max(max_, ns);
  }

  void Merge(const LatencyHistogram& other) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
  }

  int64_t count() const { return count_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : sum_ / count_; }

  // The smallest bucket bound at or above the value of rank ceil(q * count); 0
  // when empty.
  int64_t Percentile(double q) const {
    if (count_ == 0) return 0;
    const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * count_)));
    int64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min<int64_t>(UpperBound(i), max_);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 7;  // 128 buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMaxExponent = 41;  // values clamp at 2^42 ns (73 minutes)
  static constexpr int kBuckets = 2 * kSub + (kMaxExponent - kSubBits - 1 + 1) * kSub;

  static int Index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<int>(v);
    v = std::min<uint64_t>(v, (uint64_t{1} << (kMaxExponent + 1)) - 1);
    const int exponent = 63 - __builtin_clzll(v);  // >= kSubBits + 1
    const int shift = exponent - kSubBits;
    const int mantissa = static_cast<int>(v >> shift);  // in [kSub, 2 kSub)
    return 2 * kSub + (exponent - kSubBits - 1) * kSub + (mantissa - kSub);
  }

  static int64_t UpperBound(int index) {
    if (index < 2 * kSub) return index;
    const int exponent = (index - 2 * kSub) / kSub + kSubBits + 1;
    const int64_t mantissa = kSub + (index - 2 * kSub) % kSub;
    return ((mantissa + 1) << (exponent - kSubBits)) - 1;
  }

  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  double sum_ = 0;
  int64_t max_ = 0;
};

// What one client thread saw.
struct Stats {
  LatencyHistogram latency;  // successful calls only
  int64_t ok = 0;
  std::map<int, int64_t> errors;        // by grpc::StatusCode
  std::map<int, std::string> examples;  // the first message of each error code
  int64_t completed_in_window = 0;      // open loop: completions inside the window (throughput)
  int64_t late_sends = 0;               // open loop: calls sent more than 1 ms after their time
  int64_t max_send_lag_ns = 0;

  void Merge(const Stats& o) {
    latency.Merge(o.latency);
    ok += o.ok;
    for (const auto& [code, n] : o.errors) errors[code] += n;
    for (const auto& [code, m] : o.examples) examples.emplace(code, m);
    completed_in_window += o.completed_in_window;
    late_sends += o.late_sends;
    max_send_lag_ns = std::max(max_send_lag_ns, o.max_send_lag_ns);
  }
  int64_t error_count() const {
    int64_t n = 0;
    for (const auto& [code, count] : errors) n += count;
    return n;
  }
};

// The requests of a run: a method and the serialized request of each call.
struct Workload {
  std::string method;
  // The request of call number `seq`. Thread-safe.
  std::function<grpc::ByteBuffer(uint64_t seq)> request;
};

grpc::ByteBuffer ToByteBuffer(const google::protobuf::MessageLite& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

// The same requests over and over: `pool` cycled.
Workload PoolWorkload(std::string method, std::vector<grpc::ByteBuffer> pool) {
  auto shared = std::make_shared<const std::vector<grpc::ByteBuffer>>(std::move(pool));
  return Workload{std::move(method),
                  [shared](uint64_t seq) { return (*shared)[seq % shared->size()]; }};
}

enum class Mode {
  kClosed,  // `concurrency` in flight for warmup + duration
  kOpen,    // fixed rate for warmup + duration
  kCount,   // `count` calls with `concurrency` in flight, all measured
            // (enrollment)
};

struct RunConfig {
  Mode mode = Mode::kClosed;
  int concurrency = 1;
  double rate = 0;
  int max_outstanding = 1;
  int64_t send_quantum_ns = 0;  // open loop: the sender's wake-up grid (0: one wake-up per call)
  int64_t warmup_ns = 0;
  int64_t duration_ns = 0;
  int64_t count = 0;
  std::chrono::milliseconds deadline{10000};
  std::string authorization;  // "Bearer <token>", or empty
};

// One client thread: its own completion queue, calls spread over the shared
// channels.
class Worker {
 public:
  Worker(int index, int num_workers, const RunConfig& config, const Workload& workload,
         const std::vector<std::unique_ptr<grpc::GenericStub>>& stubs, Clock::time_point origin,
         std::atomic<int64_t>* progress)
      : index_(index),
        num_workers_(num_workers),
        config_(config),
        workload_(workload),
        stubs_(stubs),
        origin_(origin),
        progress_(progress),
        next_stub_(index) {}

  void Run() {
    switch (config_.mode) {
      case Mode::kClosed:
        RunClosed();
        break;
      case Mode::kOpen:
        RunOpen();
        break;
      case Mode::kCount:
        RunCount();
        break;
    }
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  const Stats& stats() const { return stats_; }

 private:
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
    int64_t start_ns = 0;  // scheduled (open loop) or sent, from the run's origin
  };

  void Issue(int64_t start_ns, uint64_t seq) {
    // Counted before it can complete, so the count never dips below the calls
    // in flight.
    outstanding_.fetch_add(1, std::memory_order_acq_rel);
    auto* call = new Call;
    call->start_ns = start_ns;
    call->context.set_deadline(std::chrono::system_clock::now() + config_.deadline);
    if (!config_.authorization.empty()) {
      call->context.AddMetadata("authorization", config_.authorization);
    }
    grpc::GenericStub& stub = *stubs_[next_stub_++ % stubs_.size()];
    call->reader =
        stub.PrepareUnaryCall(&call->context, workload_.method, workload_.request(seq), &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }

  // Takes one completion; null when the queue is shut down (never while calls
  // are in flight).
  Call* Take() {
    void* tag = nullptr;
    bool ok = false;
    if (!cq_.Next(&tag, &ok)) return nullptr;
    outstanding_.fetch_sub(1, std::memory_order_acq_rel);
    return static_cast<Call*>(tag);
  }

  void Account(const Call& call, int64_t end_ns) {
    if (call.status.ok()) {
      ++stats_.ok;
      stats_.latency.Record(end_ns - call.start_ns);
    } else {
      const int code = call.status.error_code();
      ++stats_.errors[code];
      stats_.examples.emplace(code, call.status.error_message());
    }
  }

  // Calls completing inside [warmup, warmup + duration) count; at the end no
  // new ones start and those in flight finish unrecorded.
  void RunClosed() {
    const int64_t window_begin = config_.warmup_ns;
    const int64_t window_end = config_.warmup_ns + config_.duration_ns;
    const int slots =
        config_.concurrency / num_workers_ + (index_ < config_.concurrency % num_workers_);
    for (int i = 0; i < slots; ++i) Issue(NowNs(origin_), NextSeq());
    while (outstanding_ > 0) {
      Call* call = Take();
      const int64_t now = NowNs(origin_);
      if (now >= window_begin && now < window_end) Account(*call, now);
      delete call;
      if (now < window_end) Issue(NowNs(origin_), NextSeq());
    }
  }

  // Calls scheduled inside [warmup, warmup + duration) count, each from its
  // scheduled time, and all of them are waited for (each is bounded by its
  // deadline). Throughput counts completions inside the window.
  //
  // A sender thread sleeps until each call's time and starts it; this thread
  // only takes completions. (Waiting for both in the completion queue would
  // round every wake-up to the poller's millisecond timeouts and send in
  // bursts.)
  void RunOpen() {
    const int64_t window_begin = config_.warmup_ns;
    const int64_t window_end = config_.warmup_ns + config_.duration_ns;
    std::atomic<bool> sent_all{false};
    int64_t late_sends = 0, max_lag = 0;
    std::thread sender([&] {
      // Timer slack would add up to 50 us to every sleep.
      prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
      // This thread sends every num_workers-th call of the global schedule.
      const double period_ns = 1e9 * num_workers_ / config_.rate;
      const double phase_ns = 1e9 * index_ / config_.rate;
      const int max_outstanding =
          std::max(1, config_.max_outstanding / num_workers_ +
                          (index_ < config_.max_outstanding % num_workers_));
      for (int64_t k = 0;; ++k) {
        const int64_t at = static_cast<int64_t>(phase_ns + period_ns * static_cast<double>(k));
        if (at >= window_end) break;
        int64_t now = NowNs(origin_);
        if (at > now) {
          // One wake-up per grid step sends every call due by then: a wake-up
          // per call cost the sender about as much CPU as the server spends on
          // the call, on the server's cores. A call waits at most one step, and
          // its latency still counts from `at`.
          const int64_t q = config_.send_quantum_ns;
          const int64_t wake = q > 0 ? (at + q - 1) / q * q : at;
          std::this_thread::sleep_until(origin_ + std::chrono::nanoseconds(wake));
          now = NowNs(origin_);
        }
        while (outstanding_.load(std::memory_order_acquire) >= max_outstanding) {
          std::this_thread::sleep_for(std::chrono::microseconds(20));
          now = NowNs(origin_);
        }
        if (at >= window_begin) {
          if (now - at > 1000000) ++late_sends;
          max_lag = std::max(max_lag, now - at);
        }
        Issue(at, NextSeq());
      }
      sent_all.store(true, std::memory_order_release);
    });
    while (true) {
      void* tag = nullptr;
      bool ok = false;
      const auto status =
          cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(5));
      if (status == grpc::CompletionQueue::GOT_EVENT) {
        outstanding_.fetch_sub(1, std::memory_order_acq_rel);
        Call* call = static_cast<Call*>(tag);
        const int64_t end = NowNs(origin_);
        if (call->start_ns >= window_begin && call->start_ns < window_end) Account(*call, end);
        if (end >= window_begin && end < window_end) ++stats_.completed_in_window;
        delete call;
      } else if (sent_all.load(std::memory_order_acquire) &&
                 outstanding_.load(std::memory_order_acquire) == 0) {
        break;
      }
    }
    sender.join();
    stats_.late_sends = late_sends;
    stats_.max_send_lag_ns = max_lag;
  }

  void RunCount() {
    // This thread makes calls index, index + num_workers, ...
    int64_t issued = 0;
    const int64_t mine = config_.count / num_workers_ + (index_ < config_.count % num_workers_);
    const int slots = std::max(1, config_.concurrency / num_workers_);
    while (issued < mine && outstanding_ < slots) {
      Issue(NowNs(origin_), static_cast<uint64_t>(index_ + issued * num_workers_));
      ++issued;
    }
    while (outstanding_ > 0) {
      Call* call = Take();
      Account(*call, NowNs(origin_));
      delete call;
      progress_->fetch_add(1, std::memory_order_relaxed);
      if (issued < mine) {
        Issue(NowNs(origin_), static_cast<uint64_t>(index_ + issued * num_workers_));
        ++issued;
      }
    }
  }

  uint64_t NextSeq() { return static_cast<uint64_t>(index_) + num_workers_ * seq_++; }

  const int index_;
  const int num_workers_;
  const RunConfig& config_;
  const Workload& workload_;
  const std::vector<std::unique_ptr<grpc::GenericStub>>& stubs_;
  const Clock::time_point origin_;
  std::atomic<int64_t>* const progress_;
  grpc::CompletionQueue cq_;
  size_t next_stub_;
  uint64_t seq_ = 0;
  std::atomic<int> outstanding_{0};  // the sender thread (open loop) adds, this thread takes
  Stats stats_;
};

// CPU time used so far, in seconds: by a process (from /proc/<pid>/stat), by
// this process, and by the whole machine (busy time summed over cores, from
// /proc/stat).
struct CpuSample {
  double process = -1;  // -1 when unknown
  double self = 0;
  double machine = -1;
  Clock::time_point when;
};

double ProcessCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return -1;
  // The command name may hold spaces; the fields we want come after its closing
  // parenthesis.
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(line.substr(paren + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

double MachineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string label;
  int64_t total = 0, idle = 0;
  if (!(in >> label) || label != "cpu") return -1;
  for (int i = 0; i < 8; ++i) {
    int64_t v = 0;
    if (!(in >> v)) return -1;
    total += v;
    if (i == 3 || i == 4) idle += v;  // idle, iowait
  }
  return static_cast<double>(total - idle) / sysconf(_SC_CLK_TCK);
}

CpuSample SampleCpu(int pid) {
  CpuSample s;
  s.when = Clock::now();
  if (pid > 0) s.process = ProcessCpuSeconds(pid);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  s.self = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec +
           usage.ru_stime.tv_usec * 1e-6;
  s.machine = MachineBusySeconds();
  return s;
}

struct RunResult {
  Stats stats;
  double seconds = 0;  // the measured window (or the whole count run)
  double process_cores = -1, self_cores = 0, machine_cores = -1;
};

// Runs `workload` as `config` says over `threads` client threads.
RunResult Run(const RunConfig& config, const Workload& workload,
              const std::vector<std::unique_ptr<grpc::GenericStub>>& stubs, int threads,
              int server_pid, const std::string& progress_label) {
  std::atomic<int64_t> progress{0};
  const Clock::time_point origin = Clock::now();
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(
        std::make_unique<Worker>(i, threads, config, workload, stubs, origin, &progress));
  }
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->Run(); });

  RunResult result;
  CpuSample begin, end;
  if (config.mode == Mode::kCount) {
    begin = SampleCpu(server_pid);
    std::atomic<bool> done{false};
    std::thread reporter([&] {
      auto last = Clock::now();
      while (!done.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (Clock::now() - last >= std::chrono::seconds(5)) {
          last = Clock::now();
          std::cerr << absl::StrFormat("srn-loadgen: %s %d/%d\n", progress_label, progress.load(),
                                       config.count);
        }
      }
    });
    for (auto& t : running) t.join();
    done = true;
    reporter.join();
    end = SampleCpu(server_pid);
  } else {
    std::this_thread::sleep_until(origin + std::chrono::nanoseconds(config.warmup_ns));
    begin = SampleCpu(server_pid);
    std::this_thread::sleep_until(origin +
                                  std::chrono::nanoseconds(config.warmup_ns + config.duration_ns));
    end = SampleCpu(server_pid);
    for (auto& t : running) t.join();
  }
  const double wall = std::chrono::duration<double>(end.when - begin.when).count();
  result.seconds = config.mode == Mode::kCount ? wall : config.duration_ns * 1e-9;
  if (wall > 0) {
    if (begin.process >= 0 && end.process >= 0) {
      result.process_cores = (end.process - begin.process) / wall;
    }
    result.self_cores = (end.self - begin.self) / wall;
    if (begin.machine >= 0 && end.machine >= 0) {
      result.machine_cores = (end.machine - begin.machine) / wall;
    }
  }
  for (auto& w : workers) result.stats.Merge(w->stats());
  return result;
}

// ---- Setup: flags, channels, requests
// ----------------------------------------------------------

// True for addresses only this machine can reach.
bool IsLoopbackTarget(std::string target) {
  if (absl::StartsWith(target, "unix:") || absl::StartsWith(target, "unix-abstract:")) return true;
  for (const char* scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(target, scheme)) {
      target = target.substr(std::string(scheme).size());
      break;
    }
  }
  if (target.find(',') != std::string::npos) return false;  // lists: keep it simple, refuse
  if (absl::StartsWith(target, "[")) {
    return absl::StartsWith(target, "[::1]") || absl::StartsWith(target, "[0:0:0:0:0:0:0:1]");
  }
  const std::string host = target.substr(0, target.rfind(':'));
  return host == "localhost" || absl::StartsWith(host, "127.");
}

// "Bearer <token>" from $SRN_LOADGEN_TOKEN, else the first of $SRN_ADMIN_TOKEN
// (enrolling needs admin), else empty (a server without tokens).
std::string Authorization() {
  for (const char* name : {"SRN_LOADGEN_TOKEN", "SRN_ADMIN_TOKEN"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    std::vector<std::string> tokens = absl::StrSplit(value, ',', absl::SkipWhitespace());
    if (!tokens.empty()) return absl::StrCat("Bearer ", tokens.front());
  }
  return "";
}

// Where the requests' series come from: generated frames of standard-normal features (shape is
// what costs, not content), or real signatures (--signatures): one signer's first files are the
// Verify subject's references, and the queries cycle through other files (genuine signatures and
// skilled forgeries of every signer, spread over the directory).
class Generator {
 public:
  Generator(uint64_t seed, int features, int frames)
      : rng_(seed), features_(features), frames_(frames) {}
  Generator(std::vector<v1::SeriesInput> references, std::vector<v1::SeriesInput> queries)
      : references_(std::move(references)), queries_(std::move(queries)) {}

  // The next query (or series to embed, enroll, identify).
  v1::SeriesInput Series() {
    if (!queries_.empty()) return queries_[next_++ % queries_.size()];
    v1::SeriesInput input;
    v1::Series* s = input.mutable_frames();
    s->set_num_features(features_);
    s->mutable_values()->Reserve(features_ * frames_);
    for (int i = 0; i < features_ * frames_; ++i) s->add_values(normal_(rng_));
    return input;
  }

  // The Verify subject's reference `r` (generated like the queries without files).
  v1::SeriesInput Reference(int r) {
    return r < static_cast<int>(references_.size()) ? references_[r] : Series();
  }

 private:
  std::mt19937_64 rng_;
  std::normal_distribution<float> normal_;
  const int features_ = 0;
  const int frames_ = 0;
  const std::vector<v1::SeriesInput> references_;
  const std::vector<v1::SeriesInput> queries_;
  size_t next_ = 0;
};

struct Setup {
  std::string authorization;
  std::chrono::milliseconds deadline{10000};
  v1::SimilarityService::Stub* service = nullptr;
  grpc::health::v1::Health::Stub* health = nullptr;
};

std::unique_ptr<grpc::ClientContext> Context(const Setup& setup) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::max(setup.deadline, std::chrono::milliseconds(30000)));
  if (!setup.authorization.empty()) ctx->AddMetadata("authorization", setup.authorization);
  return ctx;
}

// Exits the process with a message when a setup call failed or answered
// nonsense.
void Require(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "srn-loadgen: " << what << "\n";
    std::exit(1);
  }
}

void RequireOk(const grpc::Status& status, const std::string& what) {
  Require(status.ok(),
          absl::StrCat(what, " failed: code ", status.error_code(), ": ", status.error_message()));
}

// Reads the SVC2004 files U<user>S<n>.TXT of `dir`: the first user's S1..S<references> become
// the references, and `payloads` of the others, evenly spread in (user, n) order, the queries.
// Describes them in `*shape`.
Generator SignatureGenerator(const std::string& dir, int references, int payloads,
                             std::string* shape) {
  std::vector<std::pair<std::pair<int, int>, std::string>> files;
  std::error_code error;
  for (const auto& f : std::filesystem::directory_iterator(dir, error)) {
    int user = 0, n = 0;
    char tail[8] = {};
    if (std::sscanf(f.path().filename().c_str(), "U%dS%d.%7s", &user, &n, tail) == 3 &&
        absl::EqualsIgnoreCase(tail, "txt")) {
      files.push_back({{user, n}, f.path().string()});
    }
  }
  Require(!error, absl::StrCat("cannot list --signatures=", dir, ": ", error.message()));
  std::sort(files.begin(), files.end());
  Require(!files.empty(), absl::StrCat("no SVC2004 files (U<n>S<n>.TXT) in ", dir));
  const int first_user = files.front().first.first;
  std::vector<v1::SeriesInput> refs, queries;
  std::vector<std::string> ref_paths, rest;
  for (const auto& [key, path] : files) {
    const bool reference = key.first == first_user && key.second >= 1 && key.second <= references;
    (reference ? ref_paths : rest).push_back(path);
  }
  Require(static_cast<int>(ref_paths.size()) == references,
          absl::StrCat("--signatures: user ", first_user, " has ", ref_paths.size(),
                       " of the files S1..S", references));
  auto read = [](const std::string& path) {
    absl::StatusOr<v1::SeriesInput> input = ReadSeriesInput(path, SeriesFormat::kSvc);
    Require(input.ok(), absl::StrCat("--signatures: ", input.status().ToString()));
    return *std::move(input);
  };
  for (const std::string& path : ref_paths) refs.push_back(read(path));
  const int queries_wanted = std::min<int>(payloads, rest.size());
  Require(queries_wanted > 0, "--signatures: no files left for queries");
  int64_t samples = 0;
  for (int q = 0; q < queries_wanted; ++q) {
    queries.push_back(read(rest[static_cast<size_t>(q) * rest.size() / queries_wanted]));
    samples += queries.back().pen().x_size();
  }
  *shape = absl::StrFormat(
      "SVC2004 signatures of %s: references U%dS1-%d, %d query files of %.0f samples on average",
      dir, first_user, references, queries_wanted,
      static_cast<double>(samples) / queries_wanted);
  return Generator(std::move(refs), std::move(queries));
}

std::string FormatMs(int64_t ns) { return absl::StrFormat("%.3f", ns * 1e-6); }

std::string CodeName(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};  // by grpc::StatusCode
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return absl::StrCat("CODE_", code);
}

std::string ErrorSummary(const Stats& stats) {
  if (stats.errors.empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& [code, n] : stats.errors) parts.push_back(absl::StrCat(CodeName(code), ":", n));
  return absl::StrJoin(parts, ",");
}

std::string Cores(double cores) { return cores < 0 ? "na" : absl::StrFormat("%.2f", cores); }

// Enrolls `count` subjects <prefix>-i<n> with `references` random references
// each, replacing any of the same id, `concurrency` at a time. Exits on any
// failure.
void EnrollMany(int count, int references, int concurrency, int threads, int payloads,
                Generator& gen, const std::string& prefix, const RunConfig& base,
                const std::vector<std::unique_ptr<grpc::GenericStub>>& stubs, int server_pid) {
  std::vector<v1::SeriesInput> pool;
  for (int i = 0; i < payloads; ++i) pool.push_back(gen.Series());
  auto shared = std::make_shared<const std::vector<v1::SeriesInput>>(std::move(pool));
  Workload enroll{
      absl::StrCat(kServicePrefix, "Enroll"), [shared, references, prefix](uint64_t seq) {
        v1::EnrollRequest request;
        request.set_subject_id(absl::StrFormat("%s-i%07d", prefix, seq));
        request.set_mode(v1::ENROLL_MODE_REPLACE);
        for (int r = 0; r < references; ++r) {
          *request.add_references() = (*shared)[(seq * references + r) % shared->size()];
        }
        return ToByteBuffer(request);
      }};
  RunConfig config = base;
  config.mode = Mode::kCount;
  config.count = count;
  config.concurrency = concurrency;
  config.deadline = std::max(base.deadline, std::chrono::milliseconds(60000));
  const RunResult r = Run(config, enroll, stubs, threads, server_pid, "enrolled");
  std::cout << absl::StrFormat(
      "enrolled %d subjects x %d references in %.1f s (%.0f/s; p50 %s ms, p99 "
      "%s ms; server %s "
      "cores)\n",
      r.stats.ok, references, r.seconds, r.stats.ok / r.seconds,
      FormatMs(r.stats.latency.Percentile(0.5)), FormatMs(r.stats.latency.Percentile(0.99)),
      Cores(r.process_cores));
  std::cout << absl::StrFormat(
      "ENROLL subjects=%d references=%d seconds=%.2f per_s=%.1f errors=%d\n", r.stats.ok,
      references, r.seconds, r.stats.ok / r.seconds, r.stats.error_count());
  if (r.stats.error_count() > 0) {
    for (const auto& [code, message] : r.stats.examples) {
      std::cerr << "srn-loadgen: enroll error " << CodeName(code) << ": " << message << "\n";
    }
    Require(false, absl::StrCat("enrollment failed for ", r.stats.error_count(), " subjects"));
  }
}

// Empty when lo <= value <= hi (false for NaN), else what is wrong with --flag.
template <typename T>
std::string OutOfRange(const std::string& flag, T value, T lo, T hi) {
  if (value >= lo && value <= hi) return "";
  return absl::StrCat("--", flag, " must be in [", lo, ", ", hi, "], not ", value);
}

int Main() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const double rate = absl::GetFlag(FLAGS_rate);
  const int max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  const int num_channels = absl::GetFlag(FLAGS_channels);
  const int threads = absl::GetFlag(FLAGS_threads);
  const double warmup = absl::GetFlag(FLAGS_warmup);
  const double duration = absl::GetFlag(FLAGS_duration);
  const int deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  const int frames = absl::GetFlag(FLAGS_frames);
  const int batch = absl::GetFlag(FLAGS_batch);
  const int references = absl::GetFlag(FLAGS_references);
  const int enroll_subjects = absl::GetFlag(FLAGS_enroll_subjects);
  const int enroll_concurrency = absl::GetFlag(FLAGS_enroll_concurrency);
  const int top_k = absl::GetFlag(FLAGS_top_k);
  const int payloads = absl::GetFlag(FLAGS_payloads);
  const std::string prefix = absl::GetFlag(FLAGS_subject_prefix);
  const int server_pid = absl::GetFlag(FLAGS_server_pid);

  auto bad = [](const std::string& message) {
    std::cerr << "srn-loadgen: " << message << "\n";
    return 2;
  };
  const std::vector<std::string> rpcs = {"check",  "embed",    "similarity",
                                         "verify", "identify", "enroll"};
  if (std::find(rpcs.begin(), rpcs.end(), rpc) == rpcs.end()) {
    return bad(
        absl::StrCat("--rpc must be one of ", absl::StrJoin(rpcs, ", "), ", not '", rpc, "'"));
  }
  // Each flag's bounds, as "--flag must be in [lo, hi]" when violated.
  const std::vector<std::string> out_of_range = {
      OutOfRange("concurrency", concurrency, 1, kMaxConcurrency),
      OutOfRange("rate", rate, 0.0, kMaxRate),
      OutOfRange("max_outstanding", max_outstanding, 1, kMaxConcurrency),
      OutOfRange("send_quantum_us", absl::GetFlag(FLAGS_send_quantum_us), 0, 100000),
      OutOfRange("channels", num_channels, 1, kMaxChannels),
      OutOfRange("threads", threads, 1, kMaxThreads),
      OutOfRange("warmup", warmup, 0.0, kMaxSeconds),
      OutOfRange("duration", duration, 0.001, kMaxSeconds),
      OutOfRange("deadline_ms", deadline_ms, 1, 600000),
      OutOfRange("frames", frames, 1, kMaxFrames),
      OutOfRange("batch", batch, 1, kMaxBatch),
      OutOfRange("references", references, 1, kMaxReferences),
      OutOfRange("enroll_subjects", enroll_subjects, 0, kMaxEnrollSubjects),
      OutOfRange("enroll_concurrency", enroll_concurrency, 1, kMaxConcurrency),
      OutOfRange("top_k", top_k, 1, 1000),
      OutOfRange("payloads", payloads, 1, kMaxPayloads),
      OutOfRange("subject_prefix length", static_cast<int>(prefix.size()), 1, 100),
  };
  for (const std::string& problem : out_of_range) {
    if (!problem.empty()) return bad(problem);
  }
  if (rate == 0 && concurrency < threads) return bad("--concurrency must be at least --threads");
  if (enroll_subjects > 0 && rpc != "identify") {
    return bad("--enroll_subjects applies to --rpc=identify only");
  }
  if (!IsLoopbackTarget(target) && !absl::GetFlag(FLAGS_allow_remote)) {
    return bad(absl::StrCat("refusing to load ", target,
                            ": not a loopback address (pass --allow_remote if you mean it)"));
  }

  // Distinct channel arguments and a local subchannel pool: every channel opens
  // its own connection instead of sharing one.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int i = 0; i < num_channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("srn.loadgen_channel", i);
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    Require(channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)),
            absl::StrCat("cannot connect to ", target, " within 10 s (channel ", i, ")"));
    stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
    channels.push_back(std::move(channel));
  }
  auto service = v1::SimilarityService::NewStub(channels[0]);
  auto health = grpc::health::v1::Health::NewStub(channels[0]);
  Setup setup;
  setup.authorization = Authorization();
  setup.deadline = std::chrono::milliseconds(deadline_ms);
  setup.service = service.get();
  setup.health = health.get();

  RunConfig config;
  config.mode = rate > 0 ? Mode::kOpen : Mode::kClosed;
  config.concurrency = concurrency;
  config.rate = rate;
  config.max_outstanding = max_outstanding;
  config.send_quantum_ns = int64_t{absl::GetFlag(FLAGS_send_quantum_us)} * 1000;
  config.warmup_ns = static_cast<int64_t>(warmup * 1e9);
  config.duration_ns = static_cast<int64_t>(duration * 1e9);
  config.deadline = std::chrono::milliseconds(deadline_ms);
  config.authorization = setup.authorization;

  // The ceiling first: the health check answers "SERVING" before anything else
  // is tried.
  {
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    RequireOk(health->Check(Context(setup).get(), request, &response), "health Check");
    Require(response.status() == grpc::health::v1::HealthCheckResponse::SERVING,
            absl::StrCat("the server is not SERVING (health status ", response.status(), ")"));
  }

  Workload workload;
  std::string shape;
  if (rpc == "check") {
    workload = PoolWorkload(kCheckMethod, {ToByteBuffer(grpc::health::v1::HealthCheckRequest())});
    shape = "empty request";
  } else {
    v1::ModelInfo info;
    RequireOk(service->GetModelInfo(Context(setup).get(), v1::GetModelInfoRequest(), &info),
              "GetModelInfo");
    const int features = info.input_features();
    Require(features > 0 && info.embedding_dims() > 0,
            "GetModelInfo gave no input features or embedding size");
    shape = absl::StrFormat("model %s (%s, hidden %d, window %d): %d frames x %d features",
                            info.model_id(), info.family(), info.hidden(), info.window(), frames,
                            features);
    const std::string signatures = absl::GetFlag(FLAGS_signatures);
    std::string files;
    Generator gen = signatures.empty()
                        ? Generator(absl::GetFlag(FLAGS_seed), features, frames)
                        : SignatureGenerator(signatures, references, payloads, &files);
    if (!signatures.empty()) {
      shape = absl::StrFormat("model %s (%s, hidden %d, window %d, %s score): %s",
                              info.model_id(), info.family(), info.hidden(), info.window(),
                              info.verification_score(), files);
    }
    std::vector<grpc::ByteBuffer> pool;
    if (rpc == "embed") {
      v1::EmbedRequest first;
      for (int p = 0; p < payloads; ++p) {
        v1::EmbedRequest request;
        for (int b = 0; b < batch; ++b) *request.add_series() = gen.Series();
        pool.push_back(ToByteBuffer(request));
        if (p == 0) first = request;
      }
      v1::EmbedResponse response;
      RequireOk(service->Embed(Context(setup).get(), first, &response), "Embed");
      Require(response.embeddings_size() == batch &&
                  response.embeddings(0).values_size() == info.embedding_dims(),
              "Embed answered the wrong number or size of embeddings");
      shape += absl::StrFormat(", %d series per call", batch);
    } else if (rpc == "similarity") {
      v1::SimilarityRequest first;
      for (int p = 0; p < payloads; ++p) {
        v1::SimilarityRequest request;
        *request.mutable_a() = gen.Series();
        *request.mutable_b() = gen.Series();
        pool.push_back(ToByteBuffer(request));
        if (p == 0) first = request;
      }
      v1::SimilarityResponse response;
      RequireOk(service->Similarity(Context(setup).get(), first, &response), "Similarity");
      Require(response.similarity() >= 0 && response.similarity() <= 1,
              "Similarity answered a value outside [0, 1]");
    } else if (rpc == "verify") {
      const std::string subject = absl::StrCat(prefix, "-v");
      v1::EnrollRequest enroll;
      enroll.set_subject_id(subject);
      enroll.set_mode(v1::ENROLL_MODE_REPLACE);
      for (int r = 0; r < references; ++r) *enroll.add_references() = gen.Reference(r);
      v1::EnrollResponse enrolled;
      RequireOk(service->Enroll(Context(setup).get(), enroll, &enrolled),
                "Enroll of the verify subject");
      Require(enrolled.subject().reference_count() == references,
              "Enroll stored the wrong number of references");
      v1::VerifyRequest first;
      for (int p = 0; p < payloads; ++p) {
        v1::VerifyRequest request;
        request.set_subject_id(subject);
        *request.mutable_query() = gen.Series();
        pool.push_back(ToByteBuffer(request));
        if (p == 0) first = request;
      }
      v1::VerifyResponse response;
      RequireOk(service->Verify(Context(setup).get(), first, &response), "Verify");
      Require(response.reference_scores_size() == references,
              "Verify scored the wrong number of references");
      shape += absl::StrFormat(", subject of %d references", references);
      if (const std::string out = absl::GetFlag(FLAGS_http_requests_out); !out.empty()) {
        std::ofstream file(out);
        for (const grpc::ByteBuffer& bytes : pool) {
          v1::VerifyRequest request;
          std::vector<grpc::Slice> slices;
          Require(bytes.Dump(&slices).ok(), "cannot read back a request");
          std::string serialized;
          for (const grpc::Slice& slice : slices) {
            serialized.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
          }
          Require(request.ParseFromString(serialized), "cannot parse back a request");
          request.clear_subject_id();  // the path names it
          std::string json;
          Require(google::protobuf::util::MessageToJsonString(request, &json).ok(),
                  "cannot write a request as JSON");
          file << "/v1/subjects/" << subject << ":verify\t" << json << "\n";
        }
        file.close();
        Require(file.good(), absl::StrCat("cannot write ", out));
        std::cout << "wrote " << pool.size() << " Verify requests as HTTP/JSON to " << out
                  << "\n";
        return 0;
      }
    } else if (rpc == "identify") {
      if (enroll_subjects > 0) {
        EnrollMany(enroll_subjects, references, enroll_concurrency, threads, payloads, gen, prefix,
                   config, stubs, server_pid);
      }
      v1::IdentifyRequest first;
      for (int p = 0; p < payloads; ++p) {
        v1::IdentifyRequest request;
        request.set_top_k(top_k);
        *request.mutable_query() = gen.Series();
        pool.push_back(ToByteBuffer(request));
        if (p == 0) first = request;
      }
      v1::IdentifyResponse response;
      RequireOk(service->Identify(Context(setup).get(), first, &response), "Identify");
      Require(response.candidates_size() <= top_k &&
                  (enroll_subjects < top_k || response.candidates_size() == top_k),
              absl::StrCat("Identify answered ", response.candidates_size(),
                           " candidates for top_k ", top_k));
      shape += absl::StrFormat(", top %d%s", top_k,
                               enroll_subjects > 0
                                   ? absl::StrFormat(" over %d enrolled subjects x %d references",
                                                     enroll_subjects, references)
                                   : std::string(" over the subjects already enrolled"));
    } else if (rpc == "enroll") {
      // Each call enrolls a new subject <prefix>-e<seq>: the write path, store
      // commit included.
      std::vector<v1::SeriesInput> series;
      for (int p = 0; p < payloads; ++p) series.push_back(gen.Series());
      auto shared = std::make_shared<const std::vector<v1::SeriesInput>>(std::move(series));
      auto make = [shared, references, prefix](uint64_t seq) {
        v1::EnrollRequest request;
        request.set_subject_id(absl::StrFormat("%s-e%09d", prefix, seq));
        request.set_mode(v1::ENROLL_MODE_REPLACE);
        for (int r = 0; r < references; ++r)
          *request.add_references() = (*shared)[(seq * references + r) % shared->size()];
        return request;
      };
      v1::EnrollResponse response;
      RequireOk(service->Enroll(Context(setup).get(), make(999999999), &response), "Enroll");
      Require(response.subject().reference_count() == references,
              "Enroll stored the wrong number of references");
      workload = Workload{absl::StrCat(kServicePrefix, "Enroll"),
                          [make](uint64_t seq) { return ToByteBuffer(make(seq)); }};
      shape += absl::StrFormat(", a new subject of %d references per call", references);
    }
    if (rpc != "enroll") {
      const std::string method = rpc == "embed"        ? "Embed"
                                 : rpc == "similarity" ? "Similarity"
                                 : rpc == "verify"     ? "Verify"
                                                       : "Identify";
      workload = PoolWorkload(absl::StrCat(kServicePrefix, method), std::move(pool));
    }
  }

  const RunResult r = Run(config, workload, stubs, threads, server_pid, "");
  const Stats& s = r.stats;
  const bool open = config.mode == Mode::kOpen;
  const double qps = (open ? s.completed_in_window : s.ok + s.error_count()) / r.seconds;
  const LatencyHistogram& h = s.latency;

  std::cout << absl::StrFormat("srn-loadgen: %s on %s; %s\n", rpc, target, shape);
  if (open) {
    std::cout << absl::StrFormat(
        "  open loop at %.1f/s (at most %d in flight) "
        "over %d channels, %d client threads, %.1f s "
        "warm-up + %.1f s\n",
        rate, max_outstanding, num_channels, threads, warmup, duration);
  } else {
    std::cout << absl::StrFormat(
        "  closed loop, %d in flight over %d channels, %d client threads, %.1f "
        "s warm-up + %.1f "
        "s\n",
        concurrency, num_channels, threads, warmup, duration);
  }
  std::cout << absl::StrFormat("  calls %d (ok %d, errors %d: %s)   throughput %.1f/s\n",
                               s.ok + s.error_count(), s.ok, s.error_count(), ErrorSummary(s), qps);
  std::cout << absl::StrFormat(
      "  latency ms: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s%s\n",
      FormatMs(h.Percentile(0.5)), FormatMs(h.Percentile(0.9)), FormatMs(h.Percentile(0.99)),
      FormatMs(h.Percentile(0.999)), FormatMs(h.max()), FormatMs(static_cast<int64_t>(h.mean())),
      open ? " (from each call's scheduled time)" : "");
  if (open) {
    std::cout << absl::StrFormat("  sends more than 1 ms behind schedule: %d (worst %s ms)\n",
                                 s.late_sends, FormatMs(s.max_send_lag_ns));
  }
  std::cout << absl::StrFormat(
      "  CPU cores while measuring: server %s, load generator %s, whole "
      "machine %s of %d\n",
      Cores(r.process_cores), Cores(r.self_cores), Cores(r.machine_cores),
      static_cast<int>(std::thread::hardware_concurrency()));
  for (const auto& [code, message] : s.examples) {
    std::cout << "  first " << CodeName(code) << " error: " << message << "\n";
  }
  std::cout << absl::StrFormat(
      "LOADGEN rpc=%s mode=%s concurrency=%d rate=%.1f channels=%d threads=%d "
      "duration_s=%.1f "
      "calls=%d "
      "qps=%.1f p50_ms=%s p90_ms=%s p99_ms=%s p999_ms=%s max_ms=%s mean_ms=%s "
      "errors=%d "
      "error_codes=%s "
      "late_sends=%d server_cores=%s loadgen_cores=%s machine_cores=%s\n",
      rpc, open ? "open" : "closed", open ? 0 : concurrency, rate, num_channels, threads, duration,
      s.ok + s.error_count(), qps, FormatMs(h.Percentile(0.5)), FormatMs(h.Percentile(0.9)),
      FormatMs(h.Percentile(0.99)), FormatMs(h.Percentile(0.999)), FormatMs(h.max()),
      FormatMs(static_cast<int64_t>(h.mean())), s.error_count(), ErrorSummary(s), s.late_sends,
      Cores(r.process_cores), Cores(r.self_cores), Cores(r.machine_cores));
  return s.error_count() == 0 ? 0 : 3;
}

}  // namespace
}  // namespace srn

int main(int argc, char** argv) {
  srn::ShowOwnFlagsInHelp();
  absl::SetProgramUsageMessage(
      "load generator for srn-server: closed-loop (--concurrency) or "
      "fixed-rate (--rate) unary "
      "calls;\n"
      "prints QPS and latency percentiles, and a final machine-readable "
      "LOADGEN line.\n"
      "Exit status: 0 ok, 1 setup failed, 2 bad flags, 3 some calls failed.");
  std::vector<char*> rest = srn::ParseCommandLineWithHelp(argc, argv);
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex deadlock
  // detection on: every gRPC-internal lock then updates a global lock graph
  // under a global lock. A load generator must not spend its CPU there.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (rest.size() > 1) {
    std::cerr << "srn-loadgen: unexpected argument '" << rest[1] << "'\n";
    return 2;
  }
  return srn::Main();
}
