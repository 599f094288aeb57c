#include "model/nn/relu_kernels.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SRN_X86_KERNELS 1
#include <immintrin.h>
// The variants are compiled for their instruction set whatever the library's flags, and only
// called when the CPU has it.
#define SRN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define SRN_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

namespace srn {
namespace relu_kernels {
namespace {

// Scalar: any width; the reference the vector variants agree with.
int NonZerosScalar(const float* z, int begin, int h, int n, int* index, float* value) {
  for (int j = begin; j < h; ++j) {  // branch-free: about half the states are zero, at random
    index[n] = j;
    value[n] = z[j];
    n += z[j] != 0.0f;
  }
  return n;
}

#ifdef SRN_X86_KERNELS

// For each 8-bit mask, the positions of its set bits in increasing order (the rest 0), and
// their number: a permutation that packs the selected lanes of a vector to the front.
struct LeftPackTable {
  alignas(32) int32_t lanes[256][8];
  uint8_t count[256];
};

const LeftPackTable& LeftPack() {
  static const LeftPackTable* const table = [] {
    auto* t = new LeftPackTable();
    for (int mask = 0; mask < 256; ++mask) {
      int n = 0;
      for (int lane = 0; lane < 8; ++lane) {
        if (mask & (1 << lane)) t->lanes[mask][n++] = lane;
      }
      t->count[mask] = static_cast<uint8_t>(n);
    }
    return t;
  }();
  return *table;
}

// Eight states at a time: their non-zero mask picks the permutation that moves the non-zeros
// (and their indices) to the front, stored over the free end of the lists; never writes past
// h, as n <= j.
SRN_TARGET_AVX2 int NonZerosAvx2(const float* z, int h, int* index, float* value) {
  const LeftPackTable& table = LeftPack();
  int n = 0;
  int j = 0;
  for (; j + 8 <= h; j += 8) {
    const __m256 v = _mm256_loadu_ps(z + j);
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ));
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(table.lanes[mask]));
    _mm256_storeu_ps(value + n, _mm256_permutevar8x32_ps(v, perm));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(index + n),
                        _mm256_add_epi32(perm, _mm256_set1_epi32(j)));
    n += table.count[mask];
  }
  return NonZerosScalar(z, j, h, n, index, value);
}

// One step's outputs [i0, i0 + kVecs * 8): bias, plus the input rows, plus the non-zero state
// rows, then relu. kSets independent sets of accumulators (rows alternate between them) keep
// enough FMAs in flight when the block is narrow.
// acc += weight[k] * row k, for k < count: row k of `base` (h floats apart), or row index[k].
template <int kVecs, int kSets, bool kIndexed>
SRN_TARGET_AVX2 inline void RowsAvx2(__m256 (&acc)[kSets][kVecs], int count, const float* weight,
                                     const float* base, const int* index, int h, int i0) {
  int k = 0;
  for (; k + kSets <= count; k += kSets) {
    for (int s = 0; s < kSets; ++s) {
      const __m256 v = _mm256_set1_ps(weight[k + s]);
      const float* r = base + (kIndexed ? int64_t{index[k + s]} : int64_t{k + s}) * h + i0;
      for (int q = 0; q < kVecs; ++q)
        acc[s][q] = _mm256_fmadd_ps(v, _mm256_loadu_ps(r + 8 * q), acc[s][q]);
    }
  }
  for (; k < count; ++k) {
    const __m256 v = _mm256_set1_ps(weight[k]);
    const float* r = base + (kIndexed ? int64_t{index[k]} : int64_t{k}) * h + i0;
    for (int q = 0; q < kVecs; ++q)
      acc[0][q] = _mm256_fmadd_ps(v, _mm256_loadu_ps(r + 8 * q), acc[0][q]);
  }
}

// Appends the non-zero lanes of `v`, states j .. j + 15, to the lists at position n (each list
// has room for 16 more) and returns their new length: AVX-512's compress into a register, then
// stored (the form that compresses straight to memory is far slower on Intel cores; this one
// made the Arabic-shape embedding 15% faster than the AVX2 table).
SRN_TARGET_AVX512 inline int AppendNonZeros16(__m512 v, int j, int n, int* index, float* value) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __mmask16 mask = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
  _mm512_storeu_ps(value + n, _mm512_maskz_compress_ps(mask, v));
  _mm512_storeu_si512(
      index + n, _mm512_maskz_compress_epi32(mask, _mm512_add_epi32(lanes, _mm512_set1_epi32(j))));
  return n + __builtin_popcount(mask);
}

// Sixteen states at a time; a tail of fewer than 16 goes through the AVX2 table.
SRN_TARGET_AVX512 int NonZerosAvx512(const float* z, int h, int* index, float* value) {
  int n = 0;
  int j = 0;
  for (; j + 16 <= h; j += 16) n = AppendNonZeros16(_mm512_loadu_ps(z + j), j, n, index, value);
  if (j == h) return n;
  const int tail = NonZerosAvx2(z + j, h - j, index + n, value + n);
  for (int k = n; k < n + tail; ++k) index[k] += j;
  return n + tail;
}

// kForward: z_t's outputs: bias, input rows, the rows of A^T for z_(t-1)'s non-zeros, relu.
// Otherwise the gradient carried into z_(t-1): the rows of A for d_pre_t's non-zeros, no bias,
// no input, no relu (`xt`, `wt` and `b` unused).
template <int kVecs, int kSets, bool kForward>
SRN_TARGET_AVX2 inline void BlockAvx2(const float* xt, int in, const float* wt, const float* b,
                                      const float* at, const int* index, const float* value,
                                      int nonzeros, int h, int i0, float* zt) {
  __m256 acc[kSets][kVecs];
  for (int q = 0; q < kVecs; ++q)
    acc[0][q] = kForward ? _mm256_loadu_ps(b + i0 + 8 * q) : _mm256_setzero_ps();
  for (int s = 1; s < kSets; ++s) {
    for (int q = 0; q < kVecs; ++q) acc[s][q] = _mm256_setzero_ps();
  }
  if (kForward) RowsAvx2<kVecs, kSets, false>(acc, in, xt, wt, nullptr, h, i0);
  RowsAvx2<kVecs, kSets, true>(acc, nonzeros, value, at, index, h, i0);
  for (int q = 0; q < kVecs; ++q) {
    __m256 sum = acc[0][q];
    for (int s = 1; s < kSets; ++s) sum = _mm256_add_ps(sum, acc[s][q]);
    if (kForward) sum = _mm256_max_ps(sum, _mm256_setzero_ps());
    _mm256_storeu_ps(zt + i0 + 8 * q, sum);
  }
}

// acc += weight[k] * row k, for k < count: row k of `base` (h floats apart), or row index[k].
template <int kVecs, int kSets, bool kIndexed>
SRN_TARGET_AVX512 inline void RowsAvx512(__m512 (&acc)[kSets][kVecs], int count,
                                         const float* weight, const float* base, const int* index,
                                         int h, int i0) {
  int k = 0;
  for (; k + kSets <= count; k += kSets) {
    for (int s = 0; s < kSets; ++s) {
      const __m512 v = _mm512_set1_ps(weight[k + s]);
      const float* r = base + (kIndexed ? int64_t{index[k + s]} : int64_t{k + s}) * h + i0;
      for (int q = 0; q < kVecs; ++q)
        acc[s][q] = _mm512_fmadd_ps(v, _mm512_loadu_ps(r + 16 * q), acc[s][q]);
    }
  }
  for (; k < count; ++k) {
    const __m512 v = _mm512_set1_ps(weight[k]);
    const float* r = base + (kIndexed ? int64_t{index[k]} : int64_t{k}) * h + i0;
    for (int q = 0; q < kVecs; ++q)
      acc[0][q] = _mm512_fmadd_ps(v, _mm512_loadu_ps(r + 16 * q), acc[0][q]);
  }
}

// Where the AVX-512 forward step also puts z_t as it leaves the registers: the list of its
// non-zeros for the next step (as NonZeros makes it; the blocks go in order of outputs), and,
// for mean pooling, the running sum.
struct StepOutputs {
  int* index;
  float* value;
  int count;
  float* sum;  // null: none
};

template <int kVecs, int kSets, bool kForward>
SRN_TARGET_AVX512 inline void BlockAvx512(const float* xt, int in, const float* wt, const float* b,
                                          const float* at, const int* index, const float* value,
                                          int nonzeros, int h, int i0, float* zt,
                                          StepOutputs* outputs) {
  __m512 acc[kSets][kVecs];
  for (int q = 0; q < kVecs; ++q)
    acc[0][q] = kForward ? _mm512_loadu_ps(b + i0 + 16 * q) : _mm512_setzero_ps();
  for (int s = 1; s < kSets; ++s) {
    for (int q = 0; q < kVecs; ++q) acc[s][q] = _mm512_setzero_ps();
  }
  if (kForward) RowsAvx512<kVecs, kSets, false>(acc, in, xt, wt, nullptr, h, i0);
  RowsAvx512<kVecs, kSets, true>(acc, nonzeros, value, at, index, h, i0);
  for (int q = 0; q < kVecs; ++q) {
    __m512 sum = acc[0][q];
    for (int s = 1; s < kSets; ++s) sum = _mm512_add_ps(sum, acc[s][q]);
    // (The masked form: GCC 12 warns about the undefined source of the plain one.)
    if (kForward) sum = _mm512_maskz_max_ps(0xFFFF, sum, _mm512_setzero_ps());
    const int i = i0 + 16 * q;
    _mm512_storeu_ps(zt + i, sum);
    if (kForward && outputs != nullptr) {
      if (outputs->sum != nullptr)
        _mm512_storeu_ps(outputs->sum + i, _mm512_add_ps(_mm512_loadu_ps(outputs->sum + i), sum));
      outputs->count = AppendNonZeros16(sum, i, outputs->count, outputs->index, outputs->value);
    }
  }
}

// Blocks of outputs per pass over the rows: 8 vectors (64 floats) with AVX2, then 4, 2, 1 with
// a second set of accumulators so that narrow blocks do not wait on FMA latency; AVX-512 passes
// 4 vectors x 2 sets (64 floats) at a time. Wider AVX-512 blocks, and 4 sets of accumulators,
// measured no faster (bench/model_bench.cc).
// One step: all h outputs of BlockAvx2 / BlockAvx512 (see there for kForward).
template <bool kForward>
SRN_TARGET_AVX2 void StepAvx2(const float* xt, int in, const float* wt, const float* b,
                              const float* at, const int* index, const float* value, int nonzeros,
                              int h, float* zt) {
  int i0 = 0;
  for (; i0 + 64 <= h; i0 += 64)
    BlockAvx2<8, 1, kForward>(xt, in, wt, b, at, index, value, nonzeros, h, i0, zt);
  if (i0 + 32 <= h) {
    BlockAvx2<4, 2, kForward>(xt, in, wt, b, at, index, value, nonzeros, h, i0, zt);
    i0 += 32;
  }
  if (i0 + 16 <= h) {
    BlockAvx2<2, 2, kForward>(xt, in, wt, b, at, index, value, nonzeros, h, i0, zt);
    i0 += 16;
  }
  if (i0 + 8 <= h) BlockAvx2<1, 2, kForward>(xt, in, wt, b, at, index, value, nonzeros, h, i0, zt);
}

template <bool kForward>
SRN_TARGET_AVX512 void StepAvx512(const float* xt, int in, const float* wt, const float* b,
                                  const float* at, const int* index, const float* value,
                                  int nonzeros, int h, float* zt, StepOutputs* outputs = nullptr) {
  int i0 = 0;
  for (; i0 + 64 <= h; i0 += 64)
    BlockAvx512<4, 2, kForward>(xt, in, wt, b, at, index, value, nonzeros, h, i0, zt, outputs);
  if (i0 + 32 <= h) {
    BlockAvx512<2, 2, kForward>(xt, in, wt, b, at, index, value, nonzeros, h, i0, zt, outputs);
    i0 += 32;
  }
  if (i0 + 16 <= h)
    BlockAvx512<1, 2, kForward>(xt, in, wt, b, at, index, value, nonzeros, h, i0, zt, outputs);
}

template <Isa kIsa>
SRN_TARGET_AVX2 inline void Step(const float* xt, int in, const float* wt, const float* b,
                                 const float* at, const int* index, const float* value,
                                 int nonzeros, int h, float* zt, std::true_type /*forward*/) {
  if (kIsa == Isa::kAvx512) {
    StepAvx512<true>(xt, in, wt, b, at, index, value, nonzeros, h, zt);
  } else {
    StepAvx2<true>(xt, in, wt, b, at, index, value, nonzeros, h, zt);
  }
}

// Backward: carry = sum over the list of value[k] * row index[k] of `a` (A itself).
template <Isa kIsa>
SRN_TARGET_AVX2 inline void Step(const float* a, const int* index, const float* value,
                                 int nonzeros, int h, float* carry, std::false_type /*forward*/) {
  if (kIsa == Isa::kAvx512) {
    StepAvx512<false>(nullptr, 0, nullptr, nullptr, a, index, value, nonzeros, h, carry);
  } else {
    StepAvx2<false>(nullptr, 0, nullptr, nullptr, a, index, value, nonzeros, h, carry);
  }
}

template <Isa kIsa>
SRN_TARGET_AVX2 inline int ListNonZeros(const float* z, int h, int* index, float* value) {
  return kIsa == Isa::kAvx512 ? NonZerosAvx512(z, h, index, value)
                              : NonZerosAvx2(z, h, index, value);
}

// `index` and `value` have room for 2h entries: AVX-512 steps list z_t's non-zeros in one half
// while they read z_(t-1)'s from the other.
template <Isa kIsa>
SRN_TARGET_AVX2 void RunSteps(const float* x, int64_t steps, int in, const float* wt,
                              const float* b, const float* at, int h, const float* init, float* z,
                              int64_t z_stride, float* sum, int* index, float* value) {
  int nonzeros = init == nullptr ? 0 : ListNonZeros<kIsa>(init, h, index, value);
  if constexpr (kIsa == Isa::kAvx512) {
    StepOutputs next{index + h, value + h, 0, sum};
    for (int64_t t = 0; t < steps; ++t) {
      next.count = 0;
      StepAvx512<true>(x + t * in, in, wt, b, at, index, value, nonzeros, h, z + t * z_stride,
                       &next);
      nonzeros = next.count;
      std::swap(index, next.index);
      std::swap(value, next.value);
    }
    return;
  }
  for (int64_t t = 0; t < steps; ++t) {
    float* zt = z + t * z_stride;
    Step<kIsa>(x + t * in, in, wt, b, at, index, value, nonzeros, h, zt, std::true_type());
    nonzeros = ListNonZeros<kIsa>(zt, h, index, value);
    if (sum != nullptr) {
      for (int i = 0; i < h; ++i) sum[i] += zt[i];
    }
  }
}

// One backward step's elementwise part for outputs [0, h): d_pre_t = (z_t > 0) * (carry +
// d_z_t) (d_z added when `add`), written to `dt` and added to `d_bias`; returns the number of
// d_pre_t's non-zeros, listed in `index` and `value` as NonZeros does. Branch-free (h is a
// multiple of the vector width): which states are zero is random.
SRN_TARGET_AVX2 int BackElementsAvx2(const float* zt, const float* carry, const float* d_z,
                                     bool add, int h, float* dt, float* d_bias, int* index,
                                     float* value) {
  for (int i = 0; i < h; i += 8) {
    __m256 g = _mm256_loadu_ps(carry + i);
    if (add) g = _mm256_add_ps(g, _mm256_loadu_ps(d_z + i));
    const __m256 on = _mm256_cmp_ps(_mm256_loadu_ps(zt + i), _mm256_setzero_ps(), _CMP_GT_OQ);
    g = _mm256_and_ps(g, on);
    _mm256_storeu_ps(dt + i, g);
    _mm256_storeu_ps(d_bias + i, _mm256_add_ps(_mm256_loadu_ps(d_bias + i), g));
  }
  return NonZerosAvx2(dt, h, index, value);
}

// The same sixteen at a time, listing the non-zeros from the registers as it goes (the same
// lanes and values: masking with zeros is the AVX2 variant's `and`).
SRN_TARGET_AVX512 int BackElementsAvx512(const float* zt, const float* carry, const float* d_z,
                                         bool add, int h, float* dt, float* d_bias, int* index,
                                         float* value) {
  int n = 0;
  for (int i = 0; i < h; i += 16) {
    __m512 g = _mm512_loadu_ps(carry + i);
    if (add) g = _mm512_add_ps(g, _mm512_loadu_ps(d_z + i));
    const __mmask16 on =
        _mm512_cmp_ps_mask(_mm512_loadu_ps(zt + i), _mm512_setzero_ps(), _CMP_GT_OQ);
    g = _mm512_maskz_mov_ps(on, g);
    _mm512_storeu_ps(dt + i, g);
    _mm512_storeu_ps(d_bias + i, _mm512_add_ps(_mm512_loadu_ps(d_bias + i), g));
    n = AppendNonZeros16(g, i, n, index, value);
  }
  return n;
}

// Backward through the steps, last to first: d_pre_t = (z_t > 0) * (carry + d_z_t), where the
// carry from step t+1 is d_pre_(t+1) A, accumulated over the rows of A for d_pre_(t+1)'s
// non-zeros (a subset of z_(t+1)'s: about half).
template <Isa kIsa>
SRN_TARGET_AVX2 void BackSteps(const float* z, int64_t steps, int h, const float* a,
                               const float* d_z, bool every_step, float* d_pre, float* d_bias,
                               float* carry, int* index, float* value) {
  std::fill(carry, carry + h, 0.0f);
  for (int64_t t = steps - 1; t >= 0; --t) {
    const bool add = every_step || t == steps - 1;
    const int nonzeros =
        kIsa == Isa::kAvx512
            ? BackElementsAvx512(z + t * h, carry, d_z, add, h, d_pre + t * h, d_bias, index, value)
            : BackElementsAvx2(z + t * h, carry, d_z, add, h, d_pre + t * h, d_bias, index, value);
    if (t == 0) break;
    Step<kIsa>(a, index, value, nonzeros, h, carry, std::false_type());
  }
}

// c (m x n) += d^T s for d (rows x m) and s (rows x n), all row-major, m a multiple of 8: the
// weight gradients. Rows are taken in chunks that stay in cache while every tile of c passes
// over them; a tile is a few rows of c by kVecs vectors of columns, held in registers, and each
// row of d and s adds the outer product of that many of d's values (broadcast) and s's vectors
// to it. No packing: d's values are read in place and s's rows are contiguous.
constexpr int64_t kProductChunkAvx2 = 256;

// Every loop over the tile's vectors is unrolled explicitly: at -O3, GCC 12 otherwise stores
// the whole accumulator array to the stack on every row. Tiles are 12 rows by 2 vectors (8 or 4
// rows by 2 for the rows left), or 16 rows by 1 where one vector covers the columns left (dW of
// a signature's 15 features: 8 rows by 1 vector left too few FMAs in flight and ran at half the
// speed). Each element of c is one chain of FMAs over the rows in order, whatever the tile and
// chunk, so these choices never change a result's bits.
template <int kRows, int kVecs>
SRN_TARGET_AVX512 void ProductTileAvx512(const float* d, int64_t r0, int64_t r1, int m,
                                         const float* s, int n, int i0, int c0, float* c) {
  __mmask16 mask[kVecs];
#pragma GCC unroll 2
  for (int q = 0; q < kVecs; ++q) {
    const int left = std::min(std::max(n - c0 - 16 * q, 0), 16);
    mask[q] = static_cast<__mmask16>((1u << left) - 1u);
  }
  __m512 acc[kRows][kVecs];
#pragma GCC unroll 16
  for (int k = 0; k < kRows; ++k) {
#pragma GCC unroll 2
    for (int q = 0; q < kVecs; ++q)
      acc[k][q] = _mm512_maskz_loadu_ps(mask[q], c + int64_t{i0 + k} * n + c0 + 16 * q);
  }
  for (int64_t r = r0; r < r1; ++r) {
    __m512 sv[kVecs];
#pragma GCC unroll 2
    for (int q = 0; q < kVecs; ++q) sv[q] = _mm512_maskz_loadu_ps(mask[q], s + r * n + c0 + 16 * q);
    const float* dr = d + r * m + i0;
#pragma GCC unroll 16
    for (int k = 0; k < kRows; ++k) {
      const __m512 v = _mm512_set1_ps(dr[k]);
#pragma GCC unroll 2
      for (int q = 0; q < kVecs; ++q) acc[k][q] = _mm512_fmadd_ps(v, sv[q], acc[k][q]);
    }
  }
#pragma GCC unroll 16
  for (int k = 0; k < kRows; ++k) {
#pragma GCC unroll 2
    for (int q = 0; q < kVecs; ++q)
      _mm512_mask_storeu_ps(c + int64_t{i0 + k} * n + c0 + 16 * q, mask[q], acc[k][q]);
  }
}

// Chunks of 64 rows: 12 x 2 tiles over 64 rows ran 7% (signature, dA 128 x 128) to 16% (Arabic,
// 64 x 64) faster than 8 x 2 tiles over 256, alone; the training steps 3% faster.
constexpr int64_t kProductChunkAvx512 = 64;

SRN_TARGET_AVX512 void ProductAvx512(const float* d, int64_t rows, int m, const float* s, int n,
                                     float* c) {
  for (int64_t r0 = 0; r0 < rows; r0 += kProductChunkAvx512) {
    const int64_t r1 = std::min(rows, r0 + kProductChunkAvx512);
    int c0 = 0;
    for (; c0 + 16 < n; c0 += 32) {
      int i0 = 0;
      for (; i0 + 12 <= m; i0 += 12) ProductTileAvx512<12, 2>(d, r0, r1, m, s, n, i0, c0, c);
      if (i0 + 8 <= m) {
        ProductTileAvx512<8, 2>(d, r0, r1, m, s, n, i0, c0, c);
        i0 += 8;
      }
      if (i0 < m) ProductTileAvx512<4, 2>(d, r0, r1, m, s, n, i0, c0, c);
    }
    if (c0 < n) {
      int i0 = 0;
      for (; i0 + 16 <= m; i0 += 16) ProductTileAvx512<16, 1>(d, r0, r1, m, s, n, i0, c0, c);
      for (; i0 < m; i0 += 8) ProductTileAvx512<8, 1>(d, r0, r1, m, s, n, i0, c0, c);
    }
  }
}

// AVX2 has 16 vector registers: tiles of 4 rows by 2 vectors (8 accumulators).
template <int kVecs>
SRN_TARGET_AVX2 void ProductTileAvx2(const float* d, int64_t r0, int64_t r1, int m, const float* s,
                                     int n, int i0, int c0, float* c) {
  __m256i mask[kVecs];
#pragma GCC unroll 2
  for (int q = 0; q < kVecs; ++q) {
    const int left = std::min(std::max(n - c0 - 8 * q, 0), 8);
    mask[q] =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  __m256 acc[4][kVecs];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
#pragma GCC unroll 2
    for (int q = 0; q < kVecs; ++q)
      acc[k][q] = _mm256_maskload_ps(c + int64_t{i0 + k} * n + c0 + 8 * q, mask[q]);
  }
  for (int64_t r = r0; r < r1; ++r) {
    __m256 sv[kVecs];
#pragma GCC unroll 2
    for (int q = 0; q < kVecs; ++q) sv[q] = _mm256_maskload_ps(s + r * n + c0 + 8 * q, mask[q]);
    const float* dr = d + r * m + i0;
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_broadcast_ss(dr + k);
#pragma GCC unroll 2
      for (int q = 0; q < kVecs; ++q) acc[k][q] = _mm256_fmadd_ps(v, sv[q], acc[k][q]);
    }
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
#pragma GCC unroll 2
    for (int q = 0; q < kVecs; ++q)
      _mm256_maskstore_ps(c + int64_t{i0 + k} * n + c0 + 8 * q, mask[q], acc[k][q]);
  }
}

SRN_TARGET_AVX2 void ProductAvx2(const float* d, int64_t rows, int m, const float* s, int n,
                                 float* c) {
  for (int64_t r0 = 0; r0 < rows; r0 += kProductChunkAvx2) {
    const int64_t r1 = std::min(rows, r0 + kProductChunkAvx2);
    for (int i0 = 0; i0 < m; i0 += 4) {
      int c0 = 0;
      for (; c0 + 8 < n; c0 += 16) ProductTileAvx2<2>(d, r0, r1, m, s, n, i0, c0, c);
      if (c0 < n) ProductTileAvx2<1>(d, r0, r1, m, s, n, i0, c0, c);
    }
  }
}

#endif  // SRN_X86_KERNELS

bool CpuHas(Isa isa) {
#ifdef SRN_X86_KERNELS
  // libgcc's and compiler-rt's checks include the OS's support for the wider registers.
  switch (isa) {
    case Isa::kNone:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
  }
#endif
  return isa == Isa::kNone;
}

}  // namespace

namespace {

// The cap, as an Isa's value; initialized from SRN_KERNELS (an unknown value is reported on
// stderr and ignored).
std::atomic<int>& Cap() {
  static std::atomic<int> cap([] {
    const char* env = std::getenv("SRN_KERNELS");
    if (env == nullptr) return static_cast<int>(Isa::kAvx512);
    absl::StatusOr<Isa> parsed = ParseKernels(env);
    if (!parsed.ok()) {
      std::fprintf(stderr, "srn: ignoring SRN_KERNELS: %s\n",
                   std::string(parsed.status().message()).c_str());
      return static_cast<int>(Isa::kAvx512);
    }
    return static_cast<int>(*parsed);
  }());
  return cap;
}

}  // namespace

absl::StatusOr<Isa> ParseKernels(absl::string_view name) {
  if (name == "auto") return Isa::kAvx512;
  if (name == "avx2") return Isa::kAvx2;
  if (name == "portable") return Isa::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("kernels '", name, "': use auto, avx2 or portable"));
}

void CapIsa(Isa cap) { Cap().store(static_cast<int>(cap), std::memory_order_relaxed); }

Isa BestIsa() {
  static const Isa cpu = CpuHas(Isa::kAvx512) ? Isa::kAvx512
                         : CpuHas(Isa::kAvx2) ? Isa::kAvx2
                                              : Isa::kNone;
  return static_cast<Isa>(
      std::min(static_cast<int>(cpu), Cap().load(std::memory_order_relaxed)));
}

bool Supported(Isa isa, int hidden) {
  // Isa is ordered: a CPU that runs one variant runs those before it.
  if (isa == Isa::kNone || static_cast<int>(isa) > static_cast<int>(BestIsa())) return false;
  return hidden > 0 && hidden % (isa == Isa::kAvx512 ? 16 : 8) == 0;
}

Isa BestIsaFor(int hidden) {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
    if (Supported(isa, hidden)) return isa;
  }
  return Isa::kNone;
}

int NonZeros(Isa isa, const float* z, int h, int* index, float* value) {
#ifdef SRN_X86_KERNELS
  if (isa == Isa::kAvx512) return NonZerosAvx512(z, h, index, value);
  if (isa == Isa::kAvx2) return NonZerosAvx2(z, h, index, value);
#else
  (void)isa;
#endif
  return NonZerosScalar(z, 0, h, 0, index, value);
}

namespace {

// z_t goes to z + t * z_stride (stride 0: one row, overwritten); with `sum`, each z_t is also
// added into it.
void Run(Isa isa, const float* x, int64_t steps, int in, const float* wt, const float* b,
         const float* at, int h, const float* init, float* z, int64_t z_stride, float* sum) {
#ifdef SRN_X86_KERNELS
  // Two lists of a step's non-zero states (see RunSteps): on the stack for the widths that
  // serve.
  constexpr int kStackHidden = 512;
  int stack_index[2 * kStackHidden];
  float stack_value[2 * kStackHidden];
  std::vector<int> heap_index;
  std::vector<float> heap_value;
  int* index = stack_index;
  float* value = stack_value;
  if (h > kStackHidden) {
    heap_index.resize(2 * h);
    heap_value.resize(2 * h);
    index = heap_index.data();
    value = heap_value.data();
  }
  if (isa == Isa::kAvx512) {
    RunSteps<Isa::kAvx512>(x, steps, in, wt, b, at, h, init, z, z_stride, sum, index, value);
  } else {
    RunSteps<Isa::kAvx2>(x, steps, in, wt, b, at, h, init, z, z_stride, sum, index, value);
  }
#else
  (void)isa, (void)x, (void)steps, (void)in, (void)wt, (void)b, (void)at, (void)h, (void)init,
      (void)z, (void)z_stride, (void)sum;
#endif
}

}  // namespace

void ReluRecurrenceBackward(Isa isa, const float* z, int64_t steps, int h, const float* a,
                            const float* d_z, bool every_step, float* d_pre, float* d_bias) {
#ifdef SRN_X86_KERNELS
  constexpr int kStackHidden = 512;
  int stack_index[kStackHidden];
  float stack_value[kStackHidden];
  float stack_carry[kStackHidden];
  std::vector<int> heap_index;
  std::vector<float> heap_value, heap_carry;
  int* index = stack_index;
  float* value = stack_value;
  float* carry = stack_carry;
  if (h > kStackHidden) {
    heap_index.resize(h);
    heap_value.resize(h);
    heap_carry.resize(h);
    index = heap_index.data();
    value = heap_value.data();
    carry = heap_carry.data();
  }
  if (isa == Isa::kAvx512) {
    BackSteps<Isa::kAvx512>(z, steps, h, a, d_z, every_step, d_pre, d_bias, carry, index, value);
  } else {
    BackSteps<Isa::kAvx2>(z, steps, h, a, d_z, every_step, d_pre, d_bias, carry, index, value);
  }
#else
  (void)isa, (void)z, (void)steps, (void)h, (void)a, (void)d_z, (void)every_step, (void)d_pre,
      (void)d_bias;
#endif
}

void AddTransposedProduct(Isa isa, const float* d, int64_t rows, int m, const float* s, int n,
                          float* c) {
#ifdef SRN_X86_KERNELS
  if (isa == Isa::kAvx512) {
    ProductAvx512(d, rows, m, s, n, c);
  } else {
    ProductAvx2(d, rows, m, s, n, c);
  }
#else
  (void)isa, (void)d, (void)rows, (void)m, (void)s, (void)n, (void)c;
#endif
}

void ReluRecurrence(Isa isa, const float* x, int64_t steps, int in, const float* wt, const float* b,
                    const float* at, int h, const float* init, float* z, float* sum) {
  Run(isa, x, steps, in, wt, b, at, h, init, z, h, sum);
}

void ReluRecurrencePooled(Isa isa, const float* x, int64_t steps, int in, const float* wt,
                          const float* b, const float* at, int h, bool mean, float* out) {
  std::fill(out, out + h, 0.0f);
  if (!mean) {
    // Every step overwrites the previous one (which the step has already read into its list
    // of non-zeros): the last is left.
    Run(isa, x, steps, in, wt, b, at, h, nullptr, out, 0, nullptr);
    return;
  }
  constexpr int kStackHidden = 512;
  float stack_state[kStackHidden];
  std::vector<float> heap_state;
  float* state = stack_state;
  if (h > kStackHidden) {
    heap_state.resize(h);
    state = heap_state.data();
  }
  Run(isa, x, steps, in, wt, b, at, h, nullptr, state, 0, out);
  if (steps > 0) {
    const float inv = 1.0f / static_cast<float>(steps);
    for (int i = 0; i < h; ++i) out[i] *= inv;
  }
}

}  // namespace relu_kernels
}  // namespace srn
