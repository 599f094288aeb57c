#ifndef SRN_MODEL_NN_PAIR_LOSS_H_
#define SRN_MODEL_NN_PAIR_LOSS_H_

#include "absl/types/span.h"
#include "model/nn/parameters.h"
#include "model/data/series.h"

namespace srn {

// A training pair: rows `a` and `b` of an embedding batch, similar (label 1) or not (label 0).
struct Pair {
  int a = 0;
  int b = 0;
  int label = 0;
};

// Binary cross-entropy of the similarity head s = sigmoid(v . (h_a * h_b) + c) over `pairs`,
// times `scale` (e.g. 1 / pairs in the mini-batch). Returns the loss; adds its gradient w.r.t.
// the embeddings to `d_emb` (resized and zeroed here, same shape as `emb`) and w.r.t. v and c to
// `grad` (the full flat parameter vector of `layout`). Numerically stable for large logits.
template <typename T>
T PairLoss(const T* params, const ParameterLayout& layout, const RowMatrixT<T>& emb,
           absl::Span<const Pair> pairs, T scale, RowMatrixT<T>* d_emb, T* grad);

// The head's logit v . (a * b) + c for two embeddings of `dims` entries.
template <typename T>
T HeadLogit(const T* params, const ParameterLayout& layout, const T* a, const T* b, int dims);

}  // namespace srn

#endif  // SRN_MODEL_NN_PAIR_LOSS_H_
