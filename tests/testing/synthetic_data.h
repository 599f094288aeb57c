#ifndef SRN_TESTS_TESTING_SYNTHETIC_DATA_H_
#define SRN_TESTS_TESTING_SYNTHETIC_DATA_H_

#include <cstdint>
#include <string>

#include "model/data/dataset.h"
#include "model/baselines/hmm.h"

namespace srn::testing {

// A toy labelled dataset that a small SRN learns in a few seconds: class c's series are noisy
// sinusoids whose frequency grows with c, around a per-feature offset of the class, with random
// phase and length in [min_len, max_len]. With `forgeries`, each class also gets that many series
// at a slightly shifted frequency and offset, marked as forgeries of the class.
Dataset MakeSineDataset(int classes, int per_class, int dims, int min_len, int max_len,
                        uint64_t seed, int forgeries = 0);

// Writes `data` as a CSV manifest (docs/DATA_FORMATS.md) `dir`/manifest.csv, with the header
// path,label,forgery and one series file per example beside it (values to 6 decimals, so a
// reload is close but not identical); returns the manifest's path. Label names must not contain
// commas. For tests of the tools and loaders on data of their own.
std::string WriteCsvManifest(const std::string& dir, const Dataset& data);

// A random valid HMM with `states` states over `dims` features: initial and transition
// probabilities bounded away from 0, means normal with standard deviation `mean_scale`, variances
// uniform in [min_variance + 0.1, min_variance + 1).
GaussianHmm RandomHmm(int states, int dims, uint64_t seed, double mean_scale = 1.0,
                      double min_variance = 0.5);

}  // namespace srn::testing

#endif  // SRN_TESTS_TESTING_SYNTHETIC_DATA_H_
