// The end-to-end harness's own promise: a server a test starts never outlives the test. The kernel
// kills it (PR_SET_PDEATHSIG) when the thread that started it ends, so a test process that crashes
// or is killed leaves no srn-server behind holding ports and files.

#include "tests/client/e2e_harness.h"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <thread>

#include "gtest/gtest.h"

namespace srn::testing {
namespace {

TEST(E2eHarness, AServerDiesWithTheThreadThatStartedIt) {
  TempDir tmp;
  pid_t pid = -1;
  // The starting thread lets go of the server without stopping it, as a test that crashed would.
  std::thread starter([&] {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start({"--store=:memory:"}, tmp.File("server.log"), CleanEnvironment());
    ASSERT_TRUE(server.ok()) << server.status();
    pid = (*server)->pid();
    (void)server->release();
  });
  starter.join();
  ASSERT_GT(pid, 0);
  // Wait for the event itself, with a generous deadline: the server is our child, so it is reaped
  // here once the kernel killed it.
  int status = 0;
  pid_t reaped = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((reaped = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (reaped != pid) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "srn-server " << pid << " outlived the thread that started it by 30 s";
  }
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

}  // namespace
}  // namespace srn::testing
