#include "tests/client/e2e_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "model/data/preprocess.h"
#include "model/data/svc2004.h"
#include "model/nn/architecture.h"
#include "model/nn/parameters.h"
#include "model/weights/weights_file.h"

extern char** environ;

namespace srn::testing {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Waits for `pid` without blocking for longer than `timeout_seconds`; true when it exited (and
// sets *status).
bool WaitFor(pid_t pid, double timeout_seconds, int* status) {
  const auto start = Clock::now();
  while (true) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more
    if (SecondsSince(start) > timeout_seconds) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

// Starts `argv` with exactly `env`, stdin from /dev/null and stdout and stderr on `out_fd` and
// `err_fd`, as a child that the kernel kills (SIGKILL) when the thread that started it ends, so
// that no server or tool outlives a test process that crashed or was killed (a test starts its
// children from the thread that waits for them). The pid, or -1 with `*error` set.
pid_t SpawnChild(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                 int out_fd, int err_fd, std::string* error) {
  std::vector<char*> args = CStrings(argv);
  std::vector<char*> envp = CStrings(env);
  const int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int exec_pipe[2];  // reports the child's exec failure; closed by a successful exec
  if (dev_null < 0 || pipe2(exec_pipe, O_CLOEXEC) != 0) {
    *error = absl::StrCat("cannot start ", argv[0], ": ", std::strerror(errno));
    if (dev_null >= 0) close(dev_null);
    return -1;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent already died
    dup2(dev_null, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(args[0], args.data(), envp.data());
    const int e = errno;
    (void)!write(exec_pipe[1], &e, sizeof(e));
    _exit(127);
  }
  close(exec_pipe[1]);
  close(dev_null);
  if (pid < 0) {
    *error = absl::StrCat("cannot start ", argv[0], ": ", std::strerror(errno));
    close(exec_pipe[0]);
    return -1;
  }
  int exec_errno = 0;
  ssize_t n;
  while ((n = read(exec_pipe[0], &exec_errno, sizeof(exec_errno))) < 0 && errno == EINTR) {
  }
  close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    waitpid(pid, nullptr, 0);
    *error = absl::StrCat("cannot run ", argv[0], ": ", std::strerror(exec_errno));
    return -1;
  }
  return pid;
}

}  // namespace

std::vector<std::string> CleanEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "SRN_")) env.push_back(*e);
  }
  return env;
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         double timeout_seconds) {
  ProcessResult result;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.exit_code = 127;
    result.err = "pipe failed";
    return result;
  }
  std::string error;
  const pid_t pid = SpawnChild(argv, env, out_pipe[1], err_pipe[1], &error);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    result.exit_code = 127;
    result.err = error;
    return result;
  }
  const auto start = Clock::now();
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buffer[4096];
  while (open_fds > 0) {
    const double left = timeout_seconds - SecondsSince(start);
    if (left <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    const int ready = poll(fds, 2, static_cast<int>(std::ceil(left * 1000)));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  if (!WaitFor(pid, result.timed_out ? 5 : timeout_seconds, &status)) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    result.timed_out = true;
  }
  result.exit_code = result.timed_out ? -1 : ExitCode(status);
  return result;
}

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "srn-client-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

bool WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return static_cast<bool>(out);
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& flags, const std::string& log_path,
    const std::vector<std::string>& env, double timeout_seconds) {
  std::vector<std::string> argv = {SRN_SERVER_BINARY};
  bool has_listen = false, has_metrics = false;
  for (const std::string& flag : flags) {
    has_listen |= absl::StartsWith(flag, "--listen=");
    has_metrics |= absl::StartsWith(flag, "--metrics_listen=");
  }
  // Port 0 everywhere: the server reports what it got, so there is no window in which another
  // process can take a port picked in advance.
  if (!has_listen) argv.push_back("--listen=127.0.0.1:0");
  if (!has_metrics) argv.push_back("--metrics_listen=127.0.0.1:0");
  argv.insert(argv.end(), flags.begin(), flags.end());

  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->log_path_ = log_path;
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot create ", log_path, ": ", std::strerror(errno)));
  }
  std::string error;
  server->pid_ = SpawnChild(argv, env, log_fd, log_fd, &error);
  close(log_fd);
  if (server->pid_ < 0) {
    server->pid_ = -1;
    return absl::InternalError(error);
  }

  const auto start = Clock::now();
  while (SecondsSince(start) < timeout_seconds) {
    const std::string log = server->Log();
    // "srn-server: serving model ... on port N; metrics on port M; K subjects"
    const size_t at = log.find("; metrics on port ");
    const size_t on = log.rfind(" on port ", at);
    if (at != std::string::npos && on != std::string::npos) {
      const std::string port = log.substr(on + 9, at - on - 9);
      const std::string rest = log.substr(at + 18);
      const std::string metrics_port = rest.substr(0, rest.find(';'));
      if (absl::SimpleAtoi(port, &server->port_) &&
          absl::SimpleAtoi(metrics_port, &server->metrics_port_)) {
        return server;
      }
      return absl::InternalError(
          absl::StrCat("cannot parse the ports from the server log:\n", log));
    }
    int status = 0;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat("srn-server exited with ", ExitCode(status), " before serving:\n", log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat("srn-server did not report its ports within ",
                                                  timeout_seconds, " s:\n", server->Log()));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string ServerProcess::Log() const {
  absl::StatusOr<std::string> log = ReadFileToString(log_path_);
  return log.ok() ? *log : "";
}

int ServerProcess::Terminate(double timeout_seconds, double* seconds, double* stopped_seconds) {
  if (stopped_seconds != nullptr) *stopped_seconds = -1;
  if (pid_ <= 0) return -1;
  const auto start = Clock::now();
  kill(pid_, SIGTERM);
  int status = 0;
  bool exited = false;
  while (!exited && SecondsSince(start) < timeout_seconds) {
    if (stopped_seconds != nullptr && *stopped_seconds < 0 &&
        absl::StrContains(Log(), "srn-server: stopped")) {
      *stopped_seconds = SecondsSince(start);
    }
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    exited = r == pid_ || (r < 0 && errno != EINTR);
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  *seconds = SecondsSince(start);
  if (stopped_seconds != nullptr && *stopped_seconds < 0 &&
      absl::StrContains(Log(), "srn-server: stopped")) {
    *stopped_seconds = *seconds;
  }
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }
  pid_ = -1;
  return ExitCode(status);
}

ProcessResult RunSrnctl(const std::vector<std::string>& args, const std::vector<std::string>& env,
                        double timeout_seconds) {
  std::vector<std::string> argv = {SRNCTL_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, env, timeout_seconds);
}

bool WaitUntilServing(const std::vector<std::string>& args, const std::vector<std::string>& env,
                      double timeout_seconds) {
  std::vector<std::string> health = args;
  health.push_back("--timeout=2");
  health.push_back("health");
  const auto start = Clock::now();
  while (SecondsSince(start) < timeout_seconds) {
    if (RunSrnctl(health, env).exit_code == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to 127.0.0.1:", port));
  }
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string response;
  char buffer[8192];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      response.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      close(fd);
      return absl::DeadlineExceededError("recv failed or timed out");
    }
  }
  close(fd);
  if (!absl::StartsWith(response, "HTTP/1.") || response.find(" 200 ") == std::string::npos ||
      response.find(" 200 ") > response.find('\n')) {
    return absl::InternalError(absl::StrCat("not an HTTP 200 response: ", response.substr(0, 200)));
  }
  const size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) return absl::InternalError("no end of HTTP headers");
  return response.substr(body + 4);
}

std::optional<double> MetricValue(const std::string& exposition, const std::string& name,
                                  const std::map<std::string, std::string>& labels) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (!absl::StartsWith(line, name) || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != '{' && next != ' ') continue;  // another metric sharing the prefix
    const size_t close = line.rfind('}');
    const absl::string_view label_text = next == '{' && close != absl::string_view::npos
                                             ? line.substr(name.size(), close - name.size() + 1)
                                             : absl::string_view();
    bool all = true;
    for (const auto& [key, value] : labels) {
      const std::string pair = absl::StrCat(key, "=\"", value, "\"");
      if (!absl::StrContains(label_text, absl::StrCat("{", pair, ",")) &&
          !absl::StrContains(label_text, absl::StrCat(",", pair, ",")) &&
          !absl::StrContains(label_text, absl::StrCat(",", pair, "}")) &&
          !absl::StrContains(label_text, absl::StrCat("{", pair, "}"))) {
        all = false;
        break;
      }
    }
    if (!all) continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &value))
      return value;
  }
  return std::nullopt;
}

std::vector<PenSample> SyntheticSignature(int shape, uint64_t seed, int samples) {
  std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(shape));
  std::normal_distribution<double> jitter(0.0, 1.0);
  std::uniform_real_distribution<double> stretch(0.95, 1.05);
  const double sx = stretch(rng), sy = stretch(rng);
  const double fx = 1.0 + 0.7 * shape, fy = 1.5 + 0.45 * shape * shape;
  std::vector<PenSample> out;
  for (int i = 0; i < samples; ++i) {
    const double u = static_cast<double>(i) / (samples - 1);  // 0..1 along the signature
    PenSample s;
    s.x =
        5000 + sx * (1500 * u + 400 * std::sin(2 * M_PI * fx * u + 0.3 * shape)) + 3 * jitter(rng);
    s.y = 3000 + sy * 500 * std::cos(2 * M_PI * fy * u) * (shape % 2 == 0 ? 1.0 : u) +
          3 * jitter(rng);
    s.t_ms = 10.0 * i;
    s.pressure = 300 + 200 * std::sin(M_PI * u * (1 + shape)) * std::sin(M_PI * u * (1 + shape));
    s.stroke_start = i == 0 || i == samples / 2;
    out.push_back(s);
  }
  return out;
}

bool WriteSvcFile(const std::string& path, const std::vector<PenSample>& samples) {
  std::string text = absl::StrCat(samples.size(), "\n");
  for (const PenSample& s : samples) {
    // ButtonStatus 0 marks the first point after a pen-up; 1 continues a stroke.
    absl::StrAppendFormat(&text, "%d %d %d %d 900 600 %d\n", std::lround(s.x), std::lround(s.y),
                          std::lround(s.t_ms) + 1000, s.stroke_start ? 0 : 1,
                          std::lround(s.pressure));
  }
  return WriteFile(path, text);
}

bool WriteCsvFile(const std::string& path, const Series& series) {
  std::string text = "# written by the srnctl tests\n";
  for (int t = 0; t < series.length(); ++t) {
    for (int d = 0; d < series.dims(); ++d) {
      absl::StrAppendFormat(&text, "%s%.9g", d == 0 ? "" : ",", series.frames()(t, d));
    }
    text += "\n";
  }
  return WriteFile(path, text);
}

absl::StatusOr<Series> SignatureFeaturesOfFile(const std::string& svc_path) {
  bool has_pressure = false;
  SRN_ASSIGN_OR_RETURN(const std::vector<PenSample> samples,
                       ReadSvc2004File(svc_path, &has_pressure));
  return ComputeSignatureFeatures(samples, has_pressure);
}

absl::StatusOr<std::shared_ptr<const SimilarityModel>> WriteSignatureModel(
    const std::string& path, const std::vector<Series>& fit_series, uint64_t seed) {
  Architecture arch;
  arch.cell = CellType::kRelu;
  arch.recurrent = true;
  arch.pooling = Pooling::kMean;
  arch.input_dims = kSignatureFeatureDims;
  arch.hidden = 8;
  arch.layers = 1;
  std::vector<const Series*> pointers;
  for (const Series& s : fit_series) pointers.push_back(&s);
  SRN_ASSIGN_OR_RETURN(Preprocessor preprocessor,
                       Preprocessor::Fit(pointers, 1, FeatureKind::kSignature));
  Vector params = InitParameters(arch, 0.4f, seed);
  ModelMetadata metadata;
  metadata.training_data = "srnctl end-to-end test (random weights)";
  metadata.seed = seed;
  SRN_ASSIGN_OR_RETURN(
      std::shared_ptr<const SimilarityModel> model,
      SimilarityModel::Create(arch, std::move(preprocessor), std::move(params), metadata));
  SRN_RETURN_IF_ERROR(SaveModel(*model, path));
  return model;
}

std::optional<double> NumberAfter(const std::string& text, const std::string& prefix) {
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return std::nullopt;
  const char* begin = text.c_str() + at + prefix.size();
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  if (end == begin) return std::nullopt;
  return value;
}

std::vector<double> NumbersAfter(const std::string& text, const std::string& prefix) {
  std::vector<double> numbers;
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return numbers;
  const size_t eol = text.find('\n', at);
  const std::string rest = text.substr(
      at + prefix.size(), eol == std::string::npos ? std::string::npos : eol - at - prefix.size());
  for (absl::string_view token : absl::StrSplit(rest, ' ', absl::SkipEmpty())) {
    double value = 0;
    if (absl::SimpleAtod(token, &value)) numbers.push_back(value);
  }
  return numbers;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

}  // namespace srn::testing
