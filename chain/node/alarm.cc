#include "chain/node/alarm.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace mchain {

AlarmCommand::AlarmCommand(std::vector<std::string> argv) : argv_(std::move(argv)) {}

AlarmCommand::~AlarmCommand() {
  std::lock_guard lock(mutex_);
  waiters_.clear();  // joins: every started command is reaped
}

Status AlarmCommand::raise(const Accusation& accusation) {
  const Candidate& c = accusation.proposal.candidate;
  return run({"MCHAIN_ALARM=accusation", "MCHAIN_ACCUSED=" + c.leader,
              "MCHAIN_ACCUSER=" + accusation.accuser,
              "MCHAIN_VERDICT=" + std::string(to_string(accusation.verdict)),
              "MCHAIN_PACKAGE_INDEX=" + std::to_string(accusation.package_index),
              "MCHAIN_CANDIDATE=" + to_hex(c.hash())});
}

Status AlarmCommand::raise(const Misbehaviour& m) {
  return run({"MCHAIN_ALARM=misbehaviour", "MCHAIN_ACCUSED=" + m.node,
              "MCHAIN_ACCUSER=" + m.witness, "MCHAIN_VERDICT=" + std::string(to_string(m.offence)),
              "MCHAIN_DETAIL=" + m.detail});
}

Status AlarmCommand::run(std::vector<std::string> alarm_env) {
  if (argv_.empty()) return fail("no alarm command configured");
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "MCHAIN_", 7) != 0) env.emplace_back(*e);
  }
  for (std::string& e : alarm_env) env.push_back(std::move(e));
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv_;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int error = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data());
  if (error != 0) {
    ++failures_;
    return fail("alarm command " + argv_[0] + " did not start: " + std::strerror(error));
  }
  std::lock_guard lock(mutex_);
  // Reaped off the caller's thread, so that a slow hook does not stall consensus.
  waiters_.emplace_back([this, pid] {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures_;
  });
  return {};
}

}  // namespace mchain
