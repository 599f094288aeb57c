#include "tests/testing/test_data.h"

#include <filesystem>

#include "model/data/dataset.h"

namespace srn::testing {

std::string FindData(const std::string& relative) {
  const std::filesystem::path path = std::filesystem::path(DataDir()) / relative;
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? path.string() : std::string();
}

}  // namespace srn::testing
