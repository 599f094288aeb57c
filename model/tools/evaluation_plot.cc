#include "model/tools/evaluation_plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace srn {
namespace {

constexpr double kPanel = 300;   // each panel's plotting area, square
constexpr double kMargin = 50;   // left and bottom, for the axes' labels
constexpr double kGap = 40;      // between panels
constexpr double kTop = 50;      // the title and the panels' titles
constexpr double kDetMin = 0.001, kDetMax = 0.95;  // the DET axes' range of error rates
constexpr int kBins = 40;

std::string Escape(const std::string& text) {
  return absl::StrReplaceAll(text,
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"'", "&apos;"}});
}

// One panel: maps data coordinates in [x0, x1] x [y0, y1] to the panel at column `k`.
struct Panel {
  int k;
  double x0, x1, y0, y1;
  double X(double x) const {
    return kMargin + k * (kPanel + kMargin + kGap) + (x - x0) / (x1 - x0) * kPanel;
  }
  double Y(double y) const { return kTop + kPanel - (y - y0) / (y1 - y0) * kPanel; }
};

double Probit(double p) { return NormalQuantile(std::clamp(p, kDetMin, kDetMax)); }

void Frame(std::string* svg, const Panel& p, const std::string& title, const std::string& xlabel,
           const std::string& ylabel) {
  const double left = p.X(p.x0), bottom = p.Y(p.y0);
  absl::StrAppendFormat(svg,
                        "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' "
                        "stroke='#444'/>\n",
                        left, p.Y(p.y1), kPanel, kPanel);
  absl::StrAppendFormat(svg, "<text x='%.1f' y='%.1f' text-anchor='middle'>%s</text>\n",
                        left + kPanel / 2, kTop - 8, Escape(title));
  absl::StrAppendFormat(svg, "<text x='%.1f' y='%.1f' text-anchor='middle'>%s</text>\n",
                        left + kPanel / 2, bottom + 36, Escape(xlabel));
  absl::StrAppendFormat(svg,
                        "<text transform='translate(%.1f,%.1f) rotate(-90)' "
                        "text-anchor='middle'>%s</text>\n",
                        left - 38, kTop + kPanel / 2, Escape(ylabel));
}

void TickX(std::string* svg, const Panel& p, double x, const std::string& label) {
  absl::StrAppendFormat(svg,
                        "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>"
                        "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='10'>%s</text>\n",
                        p.X(x), p.Y(p.y0), p.X(x), p.Y(p.y1), p.X(x), p.Y(p.y0) + 14, label);
}

void TickY(std::string* svg, const Panel& p, double y, const std::string& label) {
  absl::StrAppendFormat(svg,
                        "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>"
                        "<text x='%.1f' y='%.1f' text-anchor='end' font-size='10'>%s</text>\n",
                        p.X(p.x0), p.Y(y), p.X(p.x1), p.Y(y), p.X(p.x0) - 4, p.Y(y) + 3, label);
}

void Polyline(std::string* svg, const std::vector<std::pair<double, double>>& points,
              const std::string& color) {
  std::string coords;
  for (const auto& [x, y] : points) absl::StrAppendFormat(&coords, "%.1f,%.1f ", x, y);
  absl::StrAppendFormat(svg, "<polyline points='%s' fill='none' stroke='%s' stroke-width='1.5'/>\n",
                        coords, color);
}

void Dot(std::string* svg, double x, double y, const std::string& color,
         const std::string& label) {
  absl::StrAppendFormat(svg,
                        "<circle cx='%.1f' cy='%.1f' r='4' fill='%s'/>"
                        "<text x='%.1f' y='%.1f' font-size='10' fill='%s'>%s</text>\n",
                        x, y, color, x + 6, y - 6, color, Escape(label));
}

}  // namespace

double NormalQuantile(double p) {
  // Acklam's rational approximation (relative error below 1.2e-9).
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  if (p < kLow) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - kLow) return -NormalQuantile(1 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

absl::Status WriteEvaluationSvg(const EvaluationPlot& plot, const std::string& path) {
  if (plot.curve.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no operating points to plot"));
  }
  std::vector<double> genuine, impostor;
  for (size_t i = 0; i < plot.scores.size() && i < plot.labels.size(); ++i) {
    (plot.labels[i] == 1 ? genuine : impostor).push_back(plot.scores[i]);
  }
  if (genuine.empty() || impostor.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the histograms need genuine and impostor scores"));
  }
  const double width = 3 * (kPanel + kMargin) + 2 * kGap + 20;
  const double height = kTop + kPanel + kMargin + 30;
  std::string svg = absl::StrFormat(
      "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
      "font-family='sans-serif' font-size='12'>\n<rect width='100%%' height='100%%' "
      "fill='white'/>\n<text x='%.1f' y='18' text-anchor='middle' font-size='14'>%s</text>\n",
      width, height, width / 2, Escape(plot.title));
  const std::string kCurve = "#1f77b4", kEer = "#d62728", kMark = "#2ca02c";

  // ROC: true-accept rate against false-accept rate.
  const Panel roc{0, 0, 1, 0, 1};
  Frame(&svg, roc, "ROC", "false-accept rate", "true-accept rate (1 - FRR)");
  for (double t : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    TickX(&svg, roc, t, absl::StrFormat("%g", t));
    TickY(&svg, roc, t, absl::StrFormat("%g", t));
  }
  std::vector<std::pair<double, double>> line;
  for (const OperatingPoint& p : plot.curve) line.emplace_back(roc.X(p.far), roc.Y(1 - p.frr));
  Polyline(&svg, line, kCurve);
  Dot(&svg, roc.X(plot.eer.eer), roc.Y(1 - plot.eer.eer), kEer,
      absl::StrFormat("EER %.2f%%", 100 * plot.eer.eer));
  for (const EvaluationPlot::Mark& m : plot.marks) {
    Dot(&svg, roc.X(m.far), roc.Y(1 - m.frr), kMark, m.label);
  }

  // DET: both error rates on normal-deviate axes.
  const Panel det{1, Probit(kDetMin), Probit(kDetMax), Probit(kDetMin), Probit(kDetMax)};
  Frame(&svg, det, "DET", "false-accept rate", "false-reject rate");
  for (double t : {0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95}) {
    TickX(&svg, det, Probit(t), absl::StrFormat("%g%%", 100 * t));
    TickY(&svg, det, Probit(t), absl::StrFormat("%g%%", 100 * t));
  }
  line.clear();
  for (const OperatingPoint& p : plot.curve) {
    line.emplace_back(det.X(Probit(p.far)), det.Y(Probit(p.frr)));
  }
  Polyline(&svg, line, kCurve);
  Dot(&svg, det.X(Probit(plot.eer.eer)), det.Y(Probit(plot.eer.eer)), kEer, "EER");
  for (const EvaluationPlot::Mark& m : plot.marks) {
    Dot(&svg, det.X(Probit(m.far)), det.Y(Probit(m.frr)), kMark, m.label);
  }

  // Histograms: the share of each kind's trials per bin.
  const auto [lo_it, hi_it] = std::minmax_element(plot.scores.begin(), plot.scores.end());
  double lo = *lo_it, hi = *hi_it;
  if (hi <= lo) hi = lo + 1;
  const auto shares = [&](const std::vector<double>& xs) {
    std::vector<double> h(kBins, 0.0);
    for (double x : xs) {
      h[std::clamp(static_cast<int>((x - lo) / (hi - lo) * kBins), 0, kBins - 1)] += 1.0;
    }
    for (double& v : h) v /= static_cast<double>(xs.size());
    return h;
  };
  const std::vector<double> genuine_shares = shares(genuine),
                            impostor_shares = shares(impostor);
  const double top = std::max(*std::max_element(genuine_shares.begin(), genuine_shares.end()),
                              *std::max_element(impostor_shares.begin(), impostor_shares.end())) *
                     1.1;
  const Panel hist{2, lo, hi, 0, top};
  Frame(&svg, hist, "scores", plot.score_name, "share of trials");
  for (int k = 0; k <= 4; ++k) {
    const double x = lo + (hi - lo) * k / 4;
    TickX(&svg, hist, x, absl::StrFormat("%.3g", x));
  }
  TickY(&svg, hist, top / 1.1, absl::StrFormat("%.2g", top / 1.1));
  const auto steps = [&](const std::vector<double>& h) {
    std::vector<std::pair<double, double>> pts;
    for (int b = 0; b < kBins; ++b) {
      const double x0 = lo + (hi - lo) * b / kBins, x1 = lo + (hi - lo) * (b + 1) / kBins;
      pts.emplace_back(hist.X(x0), hist.Y(h[b]));
      pts.emplace_back(hist.X(x1), hist.Y(h[b]));
    }
    return pts;
  };
  Polyline(&svg, steps(genuine_shares), kCurve);
  Polyline(&svg, steps(impostor_shares), "#ff7f0e");
  absl::StrAppendFormat(&svg,
                        "<text x='%.1f' y='%.1f' font-size='10' fill='%s'>genuine</text>"
                        "<text x='%.1f' y='%.1f' font-size='10' fill='#ff7f0e'>impostor</text>\n",
                        hist.X(lo), kTop - 8, kCurve, hist.X(hi) - 50, kTop - 8);
  const auto vline = [&](double x, const std::string& color, const std::string& label, int row) {
    if (x < lo || x > hi) return;
    // Labels right of the line, or left of it in the panel's right half.
    const bool left = x > (lo + hi) / 2;
    absl::StrAppendFormat(&svg,
                          "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' "
                          "stroke-dasharray='4,3'/><text x='%.1f' y='%.1f' font-size='10' "
                          "fill='%s' text-anchor='%s'>%s</text>\n",
                          hist.X(x), hist.Y(0), hist.X(x), hist.Y(top), color,
                          hist.X(x) + (left ? -3 : 3), kTop + 14 + 14 * row, color,
                          left ? "end" : "start", Escape(label));
  };
  vline(plot.eer.threshold, kEer, "EER", 2);
  for (size_t k = 0; k < plot.marks.size(); ++k) {
    vline(plot.marks[k].threshold, kMark, plot.marks[k].label, 3 + static_cast<int>(k));
  }
  svg += "</svg>\n";

  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  f << svg;
  if (!f.good()) return absl::DataLossError(absl::StrCat("error writing ", path));
  return absl::OkStatus();
}

}  // namespace srn
