#include "model/nn/pair_loss.h"

#include <cmath>

namespace srn {

template <typename T>
T HeadLogit(const T* params, const ParameterLayout& layout, const T* a, const T* b, int dims) {
  const T* v = params + layout.v_offset();
  T logit = params[layout.c_offset()];
  for (int i = 0; i < dims; ++i) logit += v[i] * a[i] * b[i];
  return logit;
}

template <typename T>
T PairLoss(const T* params, const ParameterLayout& layout, const RowMatrixT<T>& emb,
           absl::Span<const Pair> pairs, T scale, RowMatrixT<T>* d_emb, T* grad) {
  const int e = static_cast<int>(emb.cols());
  d_emb->setZero(emb.rows(), e);
  const T* v = params + layout.v_offset();
  T* dv = grad + layout.v_offset();
  T* dc = grad + layout.c_offset();
  T loss = 0;
  for (const Pair& p : pairs) {
    const T* ha = emb.row(p.a).data();
    const T* hb = emb.row(p.b).data();
    const T logit = HeadLogit(params, layout, ha, hb, e);
    const T y = static_cast<T>(p.label);
    // -[y log s + (1 - y) log(1 - s)] = softplus(logit) - y * logit, computed stably.
    const T softplus =
        logit > 0 ? logit + std::log1p(std::exp(-logit)) : std::log1p(std::exp(logit));
    loss += scale * (softplus - y * logit);
    const T s = T(1) / (T(1) + std::exp(-logit));
    const T g = scale * (s - y);
    T* da = d_emb->row(p.a).data();
    T* db = d_emb->row(p.b).data();
    for (int i = 0; i < e; ++i) {
      dv[i] += g * ha[i] * hb[i];
      da[i] += g * v[i] * hb[i];
      db[i] += g * v[i] * ha[i];
    }
    *dc += g;
  }
  return loss;
}

template float HeadLogit<float>(const float*, const ParameterLayout&, const float*, const float*,
                                int);
template double HeadLogit<double>(const double*, const ParameterLayout&, const double*,
                                  const double*, int);
template float PairLoss<float>(const float*, const ParameterLayout&, const RowMatrixT<float>&,
                               absl::Span<const Pair>, float, RowMatrixT<float>*, float*);
template double PairLoss<double>(const double*, const ParameterLayout&, const RowMatrixT<double>&,
                                 absl::Span<const Pair>, double, RowMatrixT<double>*, double*);

}  // namespace srn
