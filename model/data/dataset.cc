#include "model/data/dataset.h"

#include <cstdlib>

namespace srn {

std::vector<const Series*> Dataset::SeriesPointers() const {
  std::vector<const Series*> out;
  out.reserve(examples.size());
  for (const Example& e : examples) out.push_back(&e.series);
  return out;
}

std::string DataDir() {
  const char* env = std::getenv("SRN_DATA_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return SRN_DEFAULT_DATA_DIR;
}

}  // namespace srn
