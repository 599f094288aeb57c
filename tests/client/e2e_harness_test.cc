// The end-to-end harness's own promise: a server a test starts never outlives the test. The kernel
// kills it (PR_SET_PDEATHSIG) when the thread that started it ends, so a test process that crashes
// or is killed leaves no srn-server behind holding ports and files.

#include "tests/client/e2e_harness.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>

#include "gtest/gtest.h"

namespace srn::testing {
namespace {

TEST(E2eHarness, AServerDiesWithTheThreadThatStartedIt) {
  TempDir tmp;
  // The starting thread ends without stopping the server, as a test that crashed would. The object
  // outlives the thread (so nothing leaks); the thread's end alone must kill the process.
  std::unique_ptr<ServerProcess> kept;
  std::thread starter([&] {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start({"--store=:memory:"}, tmp.File("server.log"), CleanEnvironment());
    ASSERT_TRUE(server.ok()) << server.status();
    kept = std::move(*server);
  });
  starter.join();
  ASSERT_NE(kept, nullptr);
  const pid_t pid = kept->pid();
  // Wait for the event itself, with a generous deadline. WNOWAIT observes the exit and leaves the
  // zombie for the harness's destructor to reap.
  siginfo_t info{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    info.si_pid = 0;
    ASSERT_EQ(waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT), 0) << "errno " << errno;
    if (info.si_pid == pid || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(info.si_pid, pid) << "srn-server " << pid
                              << " outlived the thread that started it by 30 s";
  EXPECT_EQ(info.si_code, CLD_KILLED) << "si_code " << info.si_code;
  EXPECT_EQ(info.si_status, SIGKILL) << "si_status " << info.si_status;
}

}  // namespace
}  // namespace srn::testing
