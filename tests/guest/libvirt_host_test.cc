// A private libvirtd (tests/guest/libvirt_host.sh) runs the test guest, and the guest agent
// answers through libvirt.
#include "guest/libvirt_host.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
using mchain::testing::LibvirtHost;
using mchain::testing::TempDir;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

bool on_path(const std::string& program) {
  return mchain::testing::guest_detail::run_command({"sh", "-c", "command -v " + program}).status ==
         0;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Alive and not a zombie: a zombie still answers kill(pid, 0).
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto state = line.find(") ");
  return state != std::string::npos && line[state + 2] != 'Z';
}

TEST(LibvirtHost, RunsTheGuestAndItsAgentAnswers) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private libvirtd needs root";
  if (!on_path("libvirtd") || !on_path("virsh"))
    GTEST_SKIP() << "needs libvirt-daemon-driver-qemu and libvirt-clients (scripts/setup.sh)";
  if (mchain::testing::guest_detail::run_command({"unshare", "--mount", "--uts", "true"}).status !=
      0)
    GTEST_SKIP() << "no mount and UTS namespaces here (a container without CAP_SYS_ADMIN?)";
  auto guest_dir = mchain::testing::test_guest_dir();
  if (!guest_dir) GTEST_SKIP() << "test guest not built (the test_guest target)";

  TempDir tmp("mchain-libvirt");
  auto started = Clock::now();
  auto host = LibvirtHost::start(tmp.path() / "h1", "h1");
  ASSERT_TRUE(host) << host.error();
  std::cout << "libvirtd ready: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
            << " ms\n";
  // Its own UTS namespace.
  auto hostname = host->virsh({"hostname"});
  EXPECT_EQ(hostname.output, "h1\n");

  fs::path xml = tmp.path() / "guest.xml";
  std::ofstream(xml) << mchain::testing::test_guest_domain_xml("guest", *guest_dir,
                                                               tmp.path() / "console.log");
  auto defined = host->virsh({"define", xml.string()});
  ASSERT_EQ(defined.status, 0) << defined.output;
  auto booted_at = Clock::now();
  auto start = host->virsh({"start", "guest"});
  ASSERT_EQ(start.status, 0) << start.output << host->logs();
  auto qemu_pids = host->domain_pids();
  ASSERT_EQ(qemu_pids.size(), 1u);

  // libvirt does its own guest-sync; until the agent runs, the command fails and is retried.
  mchain::testing::guest_detail::CommandResult ping;
  auto deadline = Clock::now() + 60s;
  while (Clock::now() < deadline) {
    ping = host->virsh({"qemu-agent-command", "guest", R"({"execute":"guest-ping"})"});
    if (ping.status == 0) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(ping.status, 0) << ping.output << "\nconsole:\n"
                            << read_file(tmp.path() / "console.log");
  EXPECT_EQ(ping.output, "{\"return\":{}}\n");
  std::cout
      << "virsh start to guest-ping answered: "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - booted_at).count()
      << " ms\n";

  pid_t daemon = host->pid();
  host->stop();
  EXPECT_FALSE(alive(daemon));
  EXPECT_FALSE(alive(qemu_pids[0])) << "domain QEMU left running";
  EXPECT_EQ(host->pid(), -1);
}

}  // namespace
