#ifndef SRN_TESTS_TESTING_REQUESTS_H_
#define SRN_TESTS_TESTING_REQUESTS_H_

// Requests the server's tests build (header-only: the tests that include it link srn::server,
// which brings the API's messages).

#include <random>
#include <string>
#include <vector>

#include "srn/v1/similarity.pb.h"

namespace srn::testing {

// A series of `frames` frames of `dims` standard normal values.
inline v1::SeriesInput RandomFramesInput(int frames, int dims, std::mt19937_64* rng) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  v1::SeriesInput in;
  in.mutable_frames()->set_num_features(dims);
  for (int i = 0; i < frames * dims; ++i) in.mutable_frames()->add_values(n(*rng));
  return in;
}

inline v1::EnrollRequest EnrollRequestOf(const std::string& id,
                                         const std::vector<v1::SeriesInput>& refs,
                                         v1::EnrollMode mode = v1::ENROLL_MODE_ADD) {
  v1::EnrollRequest r;
  r.set_subject_id(id);
  r.set_mode(mode);
  for (const v1::SeriesInput& in : refs) *r.add_references() = in;
  return r;
}

}  // namespace srn::testing

#endif  // SRN_TESTS_TESTING_REQUESTS_H_
