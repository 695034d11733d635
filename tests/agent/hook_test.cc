// The libvirt hook: hooks/qemu and `mchainctl hook`, against a stand-in mchaind (a control
// server of the test's own) — what reaches it, and the exit status libvirt sees.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/control.h"
#include "agent/hook_command.h"
#include "temp_dir.h"

namespace mchain::agent {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kCtl = std::string(MCHAIN_BINARY_DIR) + "/agent/mchainctl";
const std::string kDomainXml =
    "<domain type='kvm'><name>web-1</name><uuid>6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f</uuid>"
    "</domain>\n";

// A stand-in mchaind: records every request, answers with `answer` (or never, if silent).
class StandIn {
 public:
  StandIn(const std::filesystem::path& socket, Json answer, bool silent = false) {
    ControlServer::Options o;
    o.socket = socket;
    auto server =
        ControlServer::start(o, [this, answer, silent](const ControlPeer&, const Json& request,
                                                       ControlServer::Reply reply) {
          {
            std::lock_guard lock(mutex_);
            requests_.push_back(request);
          }
          if (!silent) reply(answer);
        });
    EXPECT_TRUE(server) << server.error().message;
    if (server) server_ = *std::move(server);
  }
  std::vector<Json> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  std::mutex mutex_;
  std::vector<Json> requests_;
  std::unique_ptr<ControlServer> server_;
};

struct HookRun {
  int status;
  std::string err;
};

HookRun hook(const std::filesystem::path& socket, std::vector<std::string> args,
         const std::string& xml = kDomainXml) {
  std::istringstream in(xml);
  std::ostringstream err;
  const int status = run_hook(socket, args, in, err);
  return {status, err.str()};
}

// Runs a shell command with `xml` on its stdin; exit status and stderr (stdout too).
HookRun shell(const std::string& command, const std::string& xml) {
  testing::TempDir tmp("mchain-hook-in");
  const auto input = tmp.path() / "domain.xml";
  std::ofstream(input) << xml;
  FILE* pipe = ::popen((command + " <" + input.string() + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class Hook : public ::testing::Test {
 protected:
  testing::TempDir tmp_{"mchain-hook"};
  std::filesystem::path socket_ = tmp_.path() / "mchaind.sock";
};

TEST_F(Hook, HandsTheCallAndTheDomainXmlToMchaind) {
  StandIn mchaind(socket_, {{"ok", true}, {"allow", true}});
  const HookRun r = hook(socket_, {"web-1", "start", "begin", "-"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto requests = mchaind.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["command"], "hook");
  EXPECT_EQ(requests[0]["domain"], "web-1");
  EXPECT_EQ(requests[0]["operation"], "start");
  EXPECT_EQ(requests[0]["sub_operation"], "begin");
  EXPECT_EQ(requests[0]["extra"], "-");
  EXPECT_EQ(requests[0]["xml"], kDomainXml);
}

TEST_F(Hook, ARefusalExitsOneWithTheReason) {
  StandIn mchaind(socket_, {{"ok", true}, {"allow", false}, {"reason", "web-1 names no owner"}});
  const HookRun r = hook(socket_, {"web-1", "migrate", "begin", "-"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "mchain: 'migrate begin' of web-1 refused: web-1 names no owner\n");
}

TEST_F(Hook, WithoutMchaindItLogsAndLetsLibvirtGoOn) {
  const HookRun down = hook(socket_, {"web-1", "started", "begin", "-"});
  EXPECT_EQ(down.status, 0);
  EXPECT_NE(down.err.find("cannot reach mchaind"), std::string::npos) << down.err;
  EXPECT_NE(down.err.find("'started begin' of web-1 not recorded"), std::string::npos) << down.err;

  StandIn silent(socket_, {}, /*silent=*/true);
  const auto start = std::chrono::steady_clock::now();
  const HookRun slow = hook(socket_, {"web-1", "started", "begin", "-"});
  EXPECT_EQ(slow.status, 0);
  EXPECT_NE(slow.err.find("did not answer"), std::string::npos) << slow.err;
  // A guard against hanging libvirt, not a speed test: the deadline is 2 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_EQ(silent.requests().size(), 1u);
}

TEST_F(Hook, AnythingButLibvirtsFourWordsIsAUsageError) {
  EXPECT_EQ(hook(socket_, {"web-1"}).status, 2);
  EXPECT_EQ(hook(socket_, {"a", "b", "c", "d", "e"}).status, 2);
}

TEST_F(Hook, TheScriptRunsMchainctlAndPassesItsExitStatusOn) {
  const std::string env = "MCHAIN_HOOK_CONF=/nonexistent MCHAINCTL=" + kCtl +
                          " MCHAIN_CONTROL_SOCKET=" + socket_.string() + " ";
  {
    StandIn mchaind(socket_, {{"ok", true}, {"allow", true}});
    const HookRun ok = shell(env + "/bin/sh " MCHAIN_HOOK_SCRIPT " web-1 prepare begin -", kDomainXml);
    EXPECT_EQ(ok.status, 0) << ok.err;
    ASSERT_EQ(mchaind.requests().size(), 1u);
    EXPECT_EQ(mchaind.requests()[0]["operation"], "prepare");
    EXPECT_EQ(mchaind.requests()[0]["xml"], kDomainXml);
  }
  {
    StandIn mchaind(socket_, {{"ok", true}, {"allow", false}, {"reason", "not bindable"}});
    const HookRun refused =
        shell(env + "/bin/sh " MCHAIN_HOOK_SCRIPT " web-1 start begin -", kDomainXml);
    EXPECT_EQ(refused.status, 1);
    EXPECT_NE(refused.err.find("refused: not bindable"), std::string::npos) << refused.err;
  }
  // mchainctl not installed: libvirt is not held up.
  const HookRun missing = shell(
      "MCHAIN_HOOK_CONF=/nonexistent MCHAINCTL=/nonexistent/mchainctl /bin/sh " MCHAIN_HOOK_SCRIPT
      " web-1 start begin -",
      kDomainXml);
  EXPECT_EQ(missing.status, 0);
  EXPECT_NE(missing.err.find("not installed"), std::string::npos) << missing.err;
  // The configuration file is read when present.
  const auto conf = tmp_.path() / "hook.conf";
  std::ofstream(conf) << "MCHAINCTL=" << kCtl << "\nMCHAIN_CONTROL_SOCKET=" << socket_.string()
                      << "\n";
  StandIn mchaind(socket_, {{"ok", true}, {"allow", true}});
  const HookRun configured = shell(
      "MCHAIN_HOOK_CONF=" + conf.string() + " /bin/sh " MCHAIN_HOOK_SCRIPT " web-1 stopped end -",
      "");
  EXPECT_EQ(configured.status, 0) << configured.err;
  EXPECT_EQ(mchaind.requests().size(), 1u);
}

}  // namespace
}  // namespace mchain::agent
