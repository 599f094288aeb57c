#include "tests/testing/scratch_postgres.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace srn::testing {
namespace {

// The newest installed PostgreSQL's programs (Debian: /usr/lib/postgresql/<version>/bin).
std::string FindBin() {
  std::error_code ec;
  std::vector<std::filesystem::path> found;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(entry.path() / "bin" / "initdb", ec)) {
      found.push_back(entry.path() / "bin");
    }
  }
  if (found.empty()) return "";
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::stoi(a.parent_path().filename().string()) <
           std::stoi(b.parent_path().filename().string());
  });
  return found.back().string();
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

bool PostgresRequired() {
  const char* ci = std::getenv("SRN_CI");
  return ci != nullptr && std::string(ci) == "1";
}

std::unique_ptr<ScratchPostgres> ScratchPostgres::Start(std::string* why) {
  std::unique_ptr<ScratchPostgres> pg(new ScratchPostgres());
  pg->bin_ = FindBin();
  if (pg->bin_.empty()) {
    *why = "PostgreSQL is not installed (Debian package 'postgresql'; deploy/install-deps.sh)";
    return nullptr;
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "srn-pg-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    *why = "cannot create a temporary directory";
    return nullptr;
  }
  pg->dir_ = pattern;
  if (geteuid() == 0) {
    const passwd* nobody = getpwnam("nobody");
    if (nobody == nullptr || chown(pg->dir_.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
      *why = "running as root, and cannot hand a directory to the user 'nobody'";
      return nullptr;
    }
    pg->as_ = "runuser -u nobody -- ";
  }
  std::string out;
  if (pg->Run(absl::StrCat("'", pg->bin_, "/initdb' -D '", pg->dir_, "/data' -U srn --auth=trust ",
                           "--no-sync -E UTF8 --locale=C"),
              &out) != 0) {
    *why = absl::StrCat("initdb failed: ", out);
    return nullptr;
  }
  for (int attempt = 0; attempt < 5 && !pg->started_; ++attempt) {
    pg->port_ = FreeLoopbackPort();
    const int rc = pg->Run(
        absl::StrCat("'", pg->bin_, "/pg_ctl' -D '", pg->dir_, "/data' -l '", pg->dir_,
                     "/server.log' -w -t 60 -o \"-p ", pg->port_, " -k '", pg->dir_,
                     "' -c listen_addresses=127.0.0.1\" start"),
        &out);
    pg->started_ = rc == 0;
  }
  if (!pg->started_) {
    *why = absl::StrCat("the PostgreSQL server did not start: ", out,
                        Slurp(pg->dir_ + "/server.log"));
    return nullptr;
  }
  pg->StartReaper();
  return pg;
}

void ScratchPostgres::StartReaper() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  const std::string stop = absl::StrCat(as_, "'", bin_, "/pg_ctl' -D '", dir_,
                                        "/data' -m immediate -w stop >/dev/null 2>&1; rm -rf '",
                                        dir_, "'");
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls: wait for the write end to close (this process ended, or the
    // destructor closed it), then stop the server.
    close(fds[1]);
    char c;
    while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
    }
    execl("/bin/sh", "sh", "-c", stop.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  if (pid < 0) {
    close(fds[1]);
    return;
  }
  reaper_pipe_ = fds[1];
  reaper_pid_ = pid;
}

ScratchPostgres::~ScratchPostgres() {
  std::string out;
  if (started_) {
    Run(absl::StrCat("'", bin_, "/pg_ctl' -D '", dir_, "/data' -m immediate -w stop"), &out);
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  if (reaper_pid_ > 0) {
    close(reaper_pipe_);  // the reaper finds the server stopped and the directory gone
    waitpid(reaper_pid_, nullptr, 0);
  }
}

bool ScratchPostgres::Stop(std::string* why) {
  std::string out;
  if (Run(absl::StrCat("'", bin_, "/pg_ctl' -D '", dir_, "/data' -m fast -w stop"), &out) != 0) {
    *why = absl::StrCat("pg_ctl stop failed: ", out);
    return false;
  }
  started_ = false;
  return true;
}

bool ScratchPostgres::Restart(std::string* why) {
  std::string out;
  if (Run(absl::StrCat("'", bin_, "/pg_ctl' -D '", dir_, "/data' -l '", dir_,
                       "/server.log' -w -t 60 -o \"-p ", port_, " -k '", dir_,
                       "' -c listen_addresses=127.0.0.1\" start"),
          &out) != 0) {
    *why = absl::StrCat("pg_ctl start failed: ", out, Slurp(dir_ + "/server.log"));
    return false;
  }
  started_ = true;
  return true;
}

std::string ScratchPostgres::NewDatabase(std::string* why) {
  const std::string name = absl::StrCat("t", ++databases_);
  std::string out;
  if (Run(absl::StrCat("'", bin_, "/psql' -X -q -h 127.0.0.1 -p ", port_,
                       " -U srn -d postgres -c 'CREATE DATABASE ", name, "'"),
          &out) != 0) {
    *why = absl::StrCat("cannot create a database: ", out);
    return "";
  }
  return absl::StrCat("postgresql://srn@127.0.0.1:", port_, "/", name);
}

bool ScratchPostgres::WaitForNoClients(std::string* why) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string out;
  for (;;) {
    if (Run(absl::StrCat("'", bin_, "/psql' -X -q -t -A -h 127.0.0.1 -p ", port_,
                         " -U srn -d postgres -c \"SELECT count(*) FROM pg_stat_activity"
                         " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()\""),
            &out) != 0) {
      *why = absl::StrCat("cannot list the server's clients: ", out);
      return false;
    }
    if (absl::StripAsciiWhitespace(out) == "0") return true;
    if (std::chrono::steady_clock::now() > give_up) {
      *why = absl::StrCat("clients still connected after 30 s: ", out);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int ScratchPostgres::Run(const std::string& command, std::string* out) const {
  const std::string log = dir_ + "/command.log";
  const std::string line = absl::StrCat(as_, command, " >'", log, "' 2>&1");
  const int status = std::system(line.c_str());
  *out = Slurp(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace srn::testing
