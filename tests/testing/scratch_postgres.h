#ifndef SRN_TESTS_TESTING_SCRATCH_POSTGRES_H_
#define SRN_TESTS_TESTING_SCRATCH_POSTGRES_H_

#include <memory>
#include <string>

namespace srn::testing {

// A throwaway PostgreSQL server for tests: Debian's initdb into a fresh temporary directory, then
// postgres on a free port of 127.0.0.1 only (and a Unix socket in that directory), trusting local
// connections as the user "srn". PostgreSQL refuses to run as root, so a test running as root
// runs it as the user "nobody". Stopped (immediately) and removed on destruction.
class ScratchPostgres final {
 public:
  // Null, with the reason in `*why`, when PostgreSQL's programs are not installed or the server
  // does not start.
  static std::unique_ptr<ScratchPostgres> Start(std::string* why);
  ~ScratchPostgres();
  ScratchPostgres(const ScratchPostgres&) = delete;
  ScratchPostgres& operator=(const ScratchPostgres&) = delete;

  // A new, empty database; its libpq URI (empty, with `*why`, on failure).
  std::string NewDatabase(std::string* why);

  int port() const { return port_; }

  // Waits until no client but the caller's own query is connected (at most 30 s); false, with
  // the reason in `*why`, when one stays. A client killed mid-transaction may still have that
  // transaction commit on the server until its connection is gone: wait for this before reading
  // what a killed writer left behind.
  bool WaitForNoClients(std::string* why);

  // Stops the server (fast shutdown: connections are closed) and starts it again on the same
  // port and data; false, with the reason in `*why`, when it fails.
  bool Stop(std::string* why);
  bool Restart(std::string* why);

 private:
  ScratchPostgres() = default;
  // Runs `command` (a shell command line) as the server's user; its exit code, output in `*out`.
  int Run(const std::string& command, std::string* out) const;

  // Forks a process that stops the server once this process is gone, however it ends (the server
  // is a daemon that would outlive a crashed test otherwise).
  void StartReaper();

  std::string bin_;   // the directory of initdb, pg_ctl, psql
  std::string dir_;   // data in dir_/data, the socket and logs in dir_
  std::string as_;    // "runuser -u nobody -- " when root, else ""
  int port_ = 0;
  int databases_ = 0;
  bool started_ = false;
  int reaper_pipe_ = -1;  // its write end; the reaper wakes when it closes
  int reaper_pid_ = -1;
};

// Whether tests that need PostgreSQL must fail, rather than skip, when it is absent: in CI
// (SRN_CI=1, set by .ci/run), where it is installed on purpose.
bool PostgresRequired();

}  // namespace srn::testing

#endif  // SRN_TESTS_TESTING_SCRATCH_POSTGRES_H_
