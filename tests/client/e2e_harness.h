#ifndef SRN_TESTS_CLIENT_E2E_HARNESS_H_
#define SRN_TESTS_CLIENT_E2E_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/data/signature_features.h"
#include "model/nn/similarity_model.h"

// Helpers for end-to-end tests that run the real srn-server and srnctl binaries as child
// processes. Nothing here is thread-safe; each test drives its own processes from one thread.
namespace srn::testing {

// What a finished child process did.
struct ProcessResult {
  int exit_code = -1;  // -1 when it was killed by a signal (or for timing out)
  bool timed_out = false;
  std::string out;  // everything it wrote to stdout
  std::string err;  // ... and to stderr
};

// The test's own environment without SRN_* variables, so a developer's tokens never leak into
// the processes under test.
std::vector<std::string> CleanEnvironment();

// Runs `argv` (argv[0] is the executable's path) with exactly `env` until it exits, killing it
// after `timeout_seconds`. Never throws; a failure to start shows as exit_code 127.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         double timeout_seconds = 20);

// A fresh directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `content` to `path`, replacing it; false on failure.
bool WriteFile(const std::string& path, const std::string& content);

// A running srn-server child process, killed (SIGKILL) on destruction if still running.
class ServerProcess {
 public:
  // Starts the server with `flags` (plus --listen / --metrics_listen on free ports unless given)
  // and waits up to `timeout_seconds` for the line that reports its ports. The server's stdout and
  // stderr go to `log_path`. Errors carry the log.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::vector<std::string>& flags,
                                                              const std::string& log_path,
                                                              const std::vector<std::string>& env,
                                                              double timeout_seconds = 20);
  ~ServerProcess();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }  // to signal it (SIGSTOP freezes it, SIGCONT thaws it)
  std::string address() const;
  std::string Log() const;

  // Sends SIGTERM and waits up to `timeout_seconds` for the exit; returns the exit code (-1 when
  // killed by a signal or still running, in which case it is killed) and sets the time it took.
  // `stopped_seconds` (optional) gets the time until the server logged "srn-server: stopped",
  // i.e. the end of drain and grace before the process tears down (-1 if it never did).
  int Terminate(double timeout_seconds, double* seconds, double* stopped_seconds = nullptr);

 private:
  ServerProcess() = default;

  pid_t pid_ = -1;
  std::string log_path_;
  int port_ = 0;
  int metrics_port_ = 0;
};

// Runs srnctl with `args` against nothing in particular (pass --server yourself), killing it
// after `timeout_seconds` (RunProcess).
ProcessResult RunSrnctl(const std::vector<std::string>& args,
                        const std::vector<std::string>& env = CleanEnvironment(),
                        double timeout_seconds = 20);

// Polls `srnctl health` with `args` until it exits 0 or `timeout_seconds` pass; true when SERVING.
bool WaitUntilServing(const std::vector<std::string>& args, const std::vector<std::string>& env,
                      double timeout_seconds = 10);

// The body of `GET <path>` from 127.0.0.1:<port> (HTTP/1.0 over a plain socket).
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// The value of the first sample of metric `name` whose labels include every `labels` entry
// (exact `key="value"` pairs), or nullopt when there is none.
std::optional<double> MetricValue(const std::string& exposition, const std::string& name,
                                  const std::map<std::string, std::string>& labels);

// A synthetic online signature of `samples` points: `shape` picks one of several distinct
// curves, `seed` adds small per-copy jitter (so copies of a shape are similar, not equal). Two
// strokes; pressure varies along the curve.
std::vector<PenSample> SyntheticSignature(int shape, uint64_t seed, int samples = 60);

// Writes `samples` as an SVC2004 Task 2 file (count line, then X Y T Button Az Alt P integers);
// x, y, t_ms and pressure are rounded to integers, exactly as the reader will see them.
bool WriteSvcFile(const std::string& path, const std::vector<PenSample>& samples);

// Writes a series as CSV (one frame per line, values with full float precision).
bool WriteCsvFile(const std::string& path, const Series& series);

// The signature features the server computes for a file written by WriteSvcFile (read back
// through the same reader, so rounding matches).
absl::StatusOr<Series> SignatureFeaturesOfFile(const std::string& svc_path);

// A small random signature model (srn-a, hidden 8) whose standardization is fitted on
// `fit_series`, saved to `path`. Deterministic for a seed.
absl::StatusOr<std::shared_ptr<const SimilarityModel>> WriteSignatureModel(
    const std::string& path, const std::vector<Series>& fit_series, uint64_t seed);

// The number right after the first occurrence of `prefix` in `text` (for parsing srnctl's text
// output), or nullopt when the prefix is missing or no number follows.
std::optional<double> NumberAfter(const std::string& text, const std::string& prefix);

// The whitespace-separated numbers of `text` after `prefix` up to the end of that line.
std::vector<double> NumbersAfter(const std::string& text, const std::string& prefix);

// The lines of `text`, without the newlines; no empty trailing line.
std::vector<std::string> Lines(const std::string& text);

}  // namespace srn::testing

#endif  // SRN_TESTS_CLIENT_E2E_HARNESS_H_
