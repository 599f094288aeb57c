// Throughput of the model library at the paper's two shapes, for docs/BENCHMARKS.md.
//
// Benchmarks are named <family>/<shape>/<metric>:
//   embed_batch1    SimilarityModel::EmbedPreprocessed on one series of the shape's length: what a
//                   server does per request. Items are series.
//   embed_batch256  EmbedPreprocessed on 256 series of varying length ($SRN_THREADS threads, 2
//                   unless set). Items are series.
//   train_batch50   Trainer::Step on 50 pairs over 100 distinct series (the paper's mini-batch),
//                   TrainOptions::threads = $SRN_THREADS. Items are pairs.
// dtw/signature/verify5: the DTW verifier's work in one fused signature Verify (see below);
// and peak/fma: the machine's measured AVX2 FMA rate (items are floating-point operations), on
// one thread and on two, to turn FLOP counts into fractions of peak; peak/fma512 the same with
// AVX-512, where the CPU has it; kernel/indexed_rows and kernel/relu_forward/<units>: what the
// register kernels' loads cost (see there).
//
// Every benchmark reports its analytic floating-point work per item (flops_per_item; formulas in
// FlopsPerSeries below and in docs/BENCHMARKS.md), the resulting rate (FLOPS) and the number of
// threads doing the work (threads_used). Series lengths come from SeriesLength, which
// bench/torch_peer.py reproduces bit for bit, so the PyTorch peer sees exactly the same lengths.
//
// Run through bench/run_model_bench.sh, or directly:
//   SRN_THREADS=2 build/bench/srn-model-bench --benchmark_filter=srn-a

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "model/nn/architecture.h"
#include "model/nn/pair_loss.h"
#include "model/nn/parallel.h"
#include "model/nn/parameters.h"
#include "model/data/preprocess.h"
#include "model/nn/relu_kernels.h"
#include "model/data/series.h"
#include "model/signature/signature_dtw.h"
#include "model/data/signature_features.h"
#include "model/nn/similarity_model.h"
#include "model/train/trainer.h"

namespace srn {
namespace {

// The paper's two problem shapes: Arabic digits (13 MFCCs in a window of 2) and online
// signatures (about 15 pen features per sample).
struct Shape {
  const char* name;
  int inputs;
  int hidden;
  int frames;  // typical series length
};
constexpr Shape kShapes[] = {
    {"arabic", 26, 64, 40},
    {"signature", 15, 128, 350},
};

constexpr int kEmbedBatch = 256;
constexpr int kTrainPairs = 50;
constexpr int kTrainSeries = 2 * kTrainPairs;  // every pair has two series of its own
constexpr int kTrainBatches = 4;               // distinct mini-batches cycled through
// Training on the same few batches over and over drifts the weights without bound; restarting
// from the initial parameters every so often keeps the arithmetic representative.
constexpr int kResetEvery = 100;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Length of series `index` of batch `stream`: uniform in [3/4, 5/4] of the shape's length.
// bench/torch_peer.py has the same function; keep them in step.
int SeriesLength(const Shape& shape, uint64_t stream, int index) {
  const int lo = shape.frames * 3 / 4;
  const int hi = shape.frames * 5 / 4;
  const uint64_t r = SplitMix64(stream * 1000003ull + static_cast<uint64_t>(index));
  return lo + static_cast<int>(r % static_cast<uint64_t>(hi - lo + 1));
}

Series RandomSeries(int length, int dims, std::mt19937_64* rng) {
  std::normal_distribution<float> normal;
  Series s(length, dims);
  float* p = s.mutable_frames().data();
  for (int64_t i = 0; i < static_cast<int64_t>(length) * dims; ++i) p[i] = normal(*rng);
  return s;
}

std::vector<Series> RandomBatch(const Shape& shape, uint64_t stream, int n) {
  std::mt19937_64 rng(stream);
  std::vector<Series> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    out.push_back(RandomSeries(SeriesLength(shape, stream, i), shape.inputs, &rng));
  }
  return out;
}

std::vector<const Series*> Pointers(const std::vector<Series>& series) {
  std::vector<const Series*> out;
  for (const Series& s : series) out.push_back(&s);
  return out;
}

Architecture MakeArchitecture(CellType cell, const Shape& shape) {
  Architecture arch;
  arch.cell = cell;
  arch.recurrent = true;
  arch.pooling = Pooling::kMean;
  arch.input_dims = shape.inputs;
  arch.hidden = shape.hidden;
  arch.layers = 1;
  return arch;
}

std::shared_ptr<const SimilarityModel> MakeModel(CellType cell, const Shape& shape) {
  const Architecture arch = MakeArchitecture(cell, shape);
  Preprocessor pre;
  pre.raw_dims = shape.inputs;
  pre.mean = Vector::Zero(shape.inputs);
  pre.scale = Vector::Ones(shape.inputs);
  pre.window = 1;
  absl::StatusOr<std::shared_ptr<const SimilarityModel>> model =
      SimilarityModel::Create(arch, pre, InitParameters(arch, 0.1f, 1));
  if (!model.ok()) {
    std::fprintf(stderr, "cannot build %s: %s\n", arch.ToString().c_str(),
                 std::string(model.status().message()).c_str());
    std::abort();
  }
  return *std::move(model);
}

// Multiply-adds count 2 flops. For one layer of G gate blocks (relu 1, GRU 3), D inputs, H units
// and a series of T frames:
//   forward  = 2*T*G*H*(D + H)     input projection W x_t and recurrence A z_{t-1} per frame
//   backward = 2*T*G*H*(D + 2H)    dW, dA and the gradient into z_{t-1}; none into the input
// Elementwise work (bias, activations, pooling, the head) is O(T*H) and left out; so is the
// recurrence's skipped first frame. Training a series costs forward + backward.
double FlopsPerSeries(const Architecture& arch, int frames, bool training) {
  const double g = arch.gates();
  const double d = arch.input_dims;
  const double h = arch.hidden;
  const double forward = 2.0 * frames * g * h * (d + h);
  const double backward = 2.0 * frames * g * h * (d + 2 * h);
  return training ? forward + backward : forward;
}

double BatchFlops(const Architecture& arch, const std::vector<Series>& batch, bool training) {
  double total = 0;
  for (const Series& s : batch) total += FlopsPerSeries(arch, s.length(), training);
  return total;
}

void SetCounters(benchmark::State& state, double flops_per_item, int threads) {
  state.counters["flops_per_item"] = flops_per_item;
  state.counters["FLOPS"] = benchmark::Counter(
      flops_per_item * static_cast<double>(state.items_processed()), benchmark::Counter::kIsRate);
  // How many threads do the work (the benchmark loop itself runs on one).
  state.counters["threads_used"] = threads;
}

void BM_EmbedBatch1(benchmark::State& state, CellType cell, Shape shape) {
  const std::shared_ptr<const SimilarityModel> model = MakeModel(cell, shape);
  std::mt19937_64 rng(7);
  const Series series = RandomSeries(shape.frames, shape.inputs, &rng);
  const std::vector<const Series*> batch = {&series};
  for (auto _ : state) {
    RowMatrix emb = model->EmbedPreprocessed(batch);
    benchmark::DoNotOptimize(emb.data());
  }
  state.SetItemsProcessed(state.iterations());
  // EmbedParallel keeps batches below 4096 frames on the calling thread.
  SetCounters(state, FlopsPerSeries(model->architecture(), shape.frames, false), 1);
}

void BM_EmbedBatch256(benchmark::State& state, CellType cell, Shape shape) {
  const std::shared_ptr<const SimilarityModel> model = MakeModel(cell, shape);
  const std::vector<Series> series = RandomBatch(shape, /*stream=*/1, kEmbedBatch);
  const std::vector<const Series*> batch = Pointers(series);
  for (auto _ : state) {
    RowMatrix emb = model->EmbedPreprocessed(batch);
    benchmark::DoNotOptimize(emb.data());
  }
  state.SetItemsProcessed(state.iterations() * kEmbedBatch);
  SetCounters(state, BatchFlops(model->architecture(), series, false) / kEmbedBatch,
              DefaultThreads());
}

void BM_TrainBatch50(benchmark::State& state, CellType cell, Shape shape) {
  const Architecture arch = MakeArchitecture(cell, shape);
  TrainOptions options;
  options.threads = DefaultThreads();
  Trainer trainer(arch, options);
  const Vector initial = trainer.params();

  std::vector<std::vector<Series>> batches;
  std::vector<std::vector<const Series*>> pointers;
  double flops = 0;
  for (int b = 0; b < kTrainBatches; ++b) {
    batches.push_back(RandomBatch(shape, /*stream=*/100 + b, kTrainSeries));
    flops += BatchFlops(arch, batches.back(), true);
  }
  for (const std::vector<Series>& b : batches) pointers.push_back(Pointers(b));
  std::vector<Pair> pairs;
  for (int p = 0; p < kTrainPairs; ++p) pairs.push_back({2 * p, 2 * p + 1, p % 2});

  int64_t step = 0;
  for (auto _ : state) {
    if (step > 0 && step % kResetEvery == 0) {
      state.PauseTiming();
      trainer.set_params(initial);
      state.ResumeTiming();
    }
    const double loss = trainer.Step(pointers[step % kTrainBatches], pairs);
    benchmark::DoNotOptimize(loss);
    ++step;
  }
  state.SetItemsProcessed(state.iterations() * kTrainPairs);
  SetCounters(state, flops / (kTrainBatches * kTrainPairs), options.threads);
}

// Twelve independent chains of 8-wide FMAs keep both FMA ports busy (4-cycle latency x 2 ports
// needs 8 in flight). x -> 0.5x + 1 stays near 2, clear of denormals and overflow.
constexpr int kFmaChains = 12;
constexpr int64_t kFmaIterations = 1 << 20;
constexpr double kFmaFlopsPerCall = 2.0 * 8 * kFmaChains * kFmaIterations;  // 8 lanes

__attribute__((noinline)) float FmaKernel(int64_t iterations, float seed) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 acc[kFmaChains];
  for (int k = 0; k < kFmaChains; ++k) acc[k] = _mm256_set1_ps(seed + static_cast<float>(k));
  for (int64_t i = 0; i < iterations; ++i) {
    for (int k = 0; k < kFmaChains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], half, one);
  }
  __m256 sum = acc[0];
  for (int k = 1; k < kFmaChains; ++k) sum = _mm256_add_ps(sum, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return lanes[0] + lanes[7];
}

// Runs `kernel`, which does kLanes-wide FMAs, on every thread of the benchmark.
template <float (*kernel)(int64_t, float), int kLanes>
void BM_PeakFma(benchmark::State& state) {
  float seed = static_cast<float>(state.thread_index());
  for (auto _ : state) {
    seed = kernel(kFmaIterations, seed) * 1e-3f;
    benchmark::DoNotOptimize(seed);
  }
  // Items are flops, so items_per_second is the measured rate over all threads.
  state.SetItemsProcessed(static_cast<int64_t>(kFmaFlopsPerCall * kLanes / 8) * state.iterations());
  // Counters are summed over a benchmark's threads unless marked as averages.
  state.counters["flops_per_item"] = benchmark::Counter(1, benchmark::Counter::kAvgThreads);
  state.counters["threads_used"] =
      benchmark::Counter(state.threads(), benchmark::Counter::kAvgThreads);
}

// The same with 16-wide AVX-512 FMAs, where the CPU has them: the register kernels choose
// AVX-512 at run time, and a core with two 512-bit FMA units doubles the AVX2 peak.
__attribute__((noinline, target("avx512f"))) float FmaKernel512(int64_t iterations, float seed) {
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 acc[kFmaChains];
  for (int k = 0; k < kFmaChains; ++k) acc[k] = _mm512_set1_ps(seed + static_cast<float>(k));
  for (int64_t i = 0; i < iterations; ++i) {
    for (int k = 0; k < kFmaChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], half, one);
  }
  __m512 sum = acc[0];
  for (int k = 1; k < kFmaChains; ++k) sum = _mm512_add_ps(sum, acc[k]);
  // (Not _mm512_reduce_add_ps: GCC 12 warns inside it about an undefined source.)
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  return lanes[0] + lanes[15];
}

// Floats on a cache-line boundary, as the library keeps the kernels' weights.
class AlignedFloats {
 public:
  explicit AlignedFloats(int64_t n)
      : data_(static_cast<float*>(
                  std::aligned_alloc(64, static_cast<size_t>((n * 4 + 63) / 64 * 64))),
              &std::free) {}
  float* data() { return data_.get(); }
  float& operator[](int64_t i) { return data_[i]; }

 private:
  std::unique_ptr<float[], decltype(&std::free)> data_;
};

// The register kernels' inner loop alone, from L1: for each listed row, broadcast its weight,
// load its index, and add weight x row into 8 accumulators (4 vectors x 2 sets, as
// BlockAvx512<4, 2>). One vector load per FMA plus a broadcast and an index per row: next to
// peak/fma512 (no loads) this shows what the loads cost. Items are flops (a row-vector FMA = 32).
constexpr int kIndexedRows = 64;
constexpr int kIndexedWidth = 64;

__attribute__((noinline, target("avx512f"))) float IndexedRowsKernel(const float* rows,
                                                                     const int* index,
                                                                     const float* weight,
                                                                     int64_t passes) {
  __m512 acc[2][4];
  for (auto& set : acc) {
    for (__m512& a : set) a = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < passes; ++p) {
    for (int k = 0; k < kIndexedRows; k += 2) {
#pragma GCC unroll 2
      for (int s = 0; s < 2; ++s) {
        const __m512 v = _mm512_set1_ps(weight[k + s]);
        const float* r = rows + int64_t{index[k + s]} * kIndexedWidth;
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q)
          acc[s][q] = _mm512_fmadd_ps(v, _mm512_load_ps(r + 16 * q), acc[s][q]);
      }
    }
  }
  __m512 sum = _mm512_setzero_ps();
  for (auto& set : acc) {
    for (__m512& a : set) sum = _mm512_add_ps(sum, a);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  return lanes[0] + lanes[15];
}

void BM_IndexedRows(benchmark::State& state) {
  constexpr int64_t kPasses = 4096;
  AlignedFloats rows(kIndexedRows * kIndexedWidth);
  std::vector<int> index(kIndexedRows);
  std::vector<float> weight(kIndexedRows);
  for (int i = 0; i < kIndexedRows * kIndexedWidth; ++i)
    rows[i] = 1e-6f * static_cast<float>(i % 7);
  for (int k = 0; k < kIndexedRows; ++k) {
    index[k] = (k * 37) % kIndexedRows;  // a permutation: every row once, out of order
    weight[k] = 1e-3f * static_cast<float>(k);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(IndexedRowsKernel(rows.data(), index.data(), weight.data(), kPasses));
  }
  const double flops = 2.0 * kIndexedWidth * kIndexedRows * kPasses;
  state.SetItemsProcessed(static_cast<int64_t>(flops) * state.iterations());
}

// The forward register kernel (ReluRecurrencePooled, one thread, the AVX-512 variant) over 350
// frames of 15 inputs at widths from 64 to 256 units: A^T grows from 16 KiB (in L1) to 256 KiB
// (in L2). Items are the flops of the rows the kernel actually adds (the 15 input rows and the
// non-zero states of each step, counted once before timing), so the rate compares directly with
// peak/fma512 and kernel/indexed_rows.
void BM_ReluForwardWidth(benchmark::State& state) {
  const int h = static_cast<int>(state.range(0));
  constexpr int kIn = 15;
  constexpr int kSteps = 350;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> init(-0.1f, 0.1f);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  AlignedFloats wt(kIn * h), at(int64_t{h} * h), b(h), z(int64_t{kSteps} * h), out(h);
  std::vector<float> x(kSteps * kIn);
  for (int i = 0; i < kIn * h; ++i) wt[i] = init(rng);
  for (int64_t i = 0; i < int64_t{h} * h; ++i) at[i] = init(rng);
  for (int i = 0; i < h; ++i) b[i] = 0.0f;
  for (float& v : x) v = noise(rng);
  const relu_kernels::Isa isa = relu_kernels::Isa::kAvx512;
  relu_kernels::ReluRecurrence(isa, x.data(), kSteps, kIn, wt.data(), b.data(), at.data(), h,
                               nullptr, z.data(), nullptr);
  int64_t rows = int64_t{kIn} * kSteps;  // the input rows of every step, and the states' non-zeros
  for (int64_t t = 0; t + 1 < kSteps; ++t) {
    for (int i = 0; i < h; ++i) rows += z[t * h + i] != 0.0f;
  }
  for (auto _ : state) {
    relu_kernels::ReluRecurrencePooled(isa, x.data(), kSteps, kIn, wt.data(), b.data(), at.data(),
                                       h, true, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(2 * rows * h * state.iterations());
  state.counters["rows_per_step"] = static_cast<double>(rows) / kSteps;
}

// What srn-server adds to a signature Verify when it fuses the DTW verifier: preparing the query
// (SVC2004's mean length, 208 pen samples of kSignatureFeatureDims features) and its DTW distance
// to 5 prepared references of 180-240 samples, one thread. Items are verifications.
void BM_SignatureDtwVerify(benchmark::State& state) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  auto random_series = [&](int frames) {
    Series s(frames, kSignatureFeatureDims);
    for (int t = 0; t < frames; ++t) {
      for (int d = 0; d < kSignatureFeatureDims; ++d) {
        s.mutable_frames()(t, d) = std::sin(0.05f * t * (d + 1)) + 0.1f * noise(rng);
      }
    }
    return s;
  };
  const SignatureDtwOptions options;
  std::vector<Series> refs;
  for (int frames : {180, 195, 210, 225, 240}) {
    refs.push_back(*PrepareForSignatureDtw(random_series(frames), options));
  }
  const Series query = random_series(208);
  for (auto _ : state) {
    const Series prepared = *PrepareForSignatureDtw(query, options);
    double sum = 0;
    for (const Series& ref : refs) sum += SignatureDtwDistance(prepared, ref, options);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations());
}

void RegisterAll() {
  benchmark::RegisterBenchmark("dtw/signature/verify5", BM_SignatureDtwVerify)->UseRealTime();
  benchmark::RegisterBenchmark("peak/fma", BM_PeakFma<FmaKernel, 8>)
      ->Threads(1)
      ->Threads(2)
      ->UseRealTime();
  if (__builtin_cpu_supports("avx512f")) {
    benchmark::RegisterBenchmark("peak/fma512", BM_PeakFma<FmaKernel512, 16>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("kernel/indexed_rows", BM_IndexedRows)->UseRealTime();
    benchmark::RegisterBenchmark("kernel/relu_forward", BM_ReluForwardWidth)
        ->Arg(64)
        ->Arg(96)
        ->Arg(128)
        ->Arg(192)
        ->Arg(256)
        ->UseRealTime();
  }
  struct Family {
    const char* name;
    CellType cell;
  };
  const Family families[] = {{"srn-a", CellType::kRelu}, {"gru-a", CellType::kGru}};
  for (const Family& family : families) {
    for (const Shape& shape : kShapes) {
      // The GRU is measured for information at the Arabic shape only.
      if (family.cell == CellType::kGru && std::string(shape.name) != "arabic") continue;
      const std::string prefix = std::string(family.name) + "/" + shape.name + "/";
      benchmark::RegisterBenchmark((prefix + "embed_batch1").c_str(), BM_EmbedBatch1, family.cell,
                                   shape)
          ->UseRealTime();
      benchmark::RegisterBenchmark((prefix + "embed_batch256").c_str(), BM_EmbedBatch256,
                                   family.cell, shape)
          ->UseRealTime();
      benchmark::RegisterBenchmark((prefix + "train_batch50").c_str(), BM_TrainBatch50,
                                   family.cell, shape)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace srn

int main(int argc, char** argv) {
  // The comparison is at two threads a side; an explicit $SRN_THREADS wins.
  setenv("SRN_THREADS", "2", /*overwrite=*/0);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("srn_threads", std::to_string(srn::DefaultThreads()));
  srn::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
