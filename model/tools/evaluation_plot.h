#ifndef SRN_MODEL_TOOLS_EVALUATION_PLOT_H_
#define SRN_MODEL_TOOLS_EVALUATION_PLOT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/metrics/metrics.h"

namespace srn {

// The picture srn-eval writes next to its ROC CSV: the ROC curve, the DET curve (both error rates
// on normal-deviate axes, 0.1% to 95%) and the genuine and impostor score histograms, with the
// equal-error point and any marked thresholds drawn on each. SVG written directly (no plotting
// library), readable in any browser.

struct EvaluationPlot {
  std::string title;                   // e.g. "srn-a on glove.csv (--protocol=test)"
  std::string score_name;              // the histogram's axis, e.g. "similarity"
  std::vector<OperatingPoint> curve;   // from OperatingPoints (thinned), by decreasing threshold
  std::vector<double> scores;          // every scored trial, for the histograms
  std::vector<int> labels;             // 1 genuine, 0 impostor
  EerResult eer{0, 0};
  struct Mark {
    std::string label;  // e.g. "FAR<=0.01"
    double threshold;
    double far;
    double frr;
  };
  std::vector<Mark> marks;  // e.g. the calibrated thresholds
};

// Writes the plot as an SVG file at `path`, replacing it. InvalidArgument when the curve is empty
// or the scores hold no genuine or no impostor trial; errors naming the file when it cannot be
// written.
absl::Status WriteEvaluationSvg(const EvaluationPlot& plot, const std::string& path);

// The standard normal quantile (probit) of p in (0, 1), to about 1e-9: the DET plot's axis.
double NormalQuantile(double p);

}  // namespace srn

#endif  // SRN_MODEL_TOOLS_EVALUATION_PLOT_H_
