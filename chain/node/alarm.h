// The administrator's alarm hook: a command run for every accusation a node makes or accepts,
// and for every peer it sees misbehaving (SPEC §6: "the administrator is alarmed"), besides the
// log line and the counter.
//
// The command is an argument vector, run without a shell, with the alarm in its environment:
//   MCHAIN_ALARM=accusation  MCHAIN_ACCUSED=<leader>  MCHAIN_ACCUSER=<node>
//   MCHAIN_VERDICT=<verdict, e.g. bad-node-signature>  MCHAIN_PACKAGE_INDEX=<n>
//   MCHAIN_CANDIDATE=<candidate hash, hex>
// or
//   MCHAIN_ALARM=misbehaviour  MCHAIN_ACCUSED=<peer>  MCHAIN_ACCUSER=<this node>
//   MCHAIN_VERDICT=<offence, e.g. forged-mark>  MCHAIN_DETAIL=<what was wrong>
// raise() never blocks on the command: a slow or stuck hook must not hold up consensus. The
// destructor waits for the commands still running.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chain/node/consensus.h"

namespace mchain {

class AlarmCommand {
 public:
  explicit AlarmCommand(std::vector<std::string> argv);
  ~AlarmCommand();
  AlarmCommand(const AlarmCommand&) = delete;
  AlarmCommand& operator=(const AlarmCommand&) = delete;

  // Starts the command for `accusation`; a command that cannot start is counted and logged
  // through the returned status.
  Status raise(const Accusation& accusation);
  Status raise(const Misbehaviour& misbehaviour);
  // Commands that could not start or exited with a non-zero status.
  std::uint64_t failures() const { return failures_; }

 private:
  Status run(std::vector<std::string> alarm_env);

  std::vector<std::string> argv_;
  std::mutex mutex_;
  std::vector<std::jthread> waiters_;  // one per command started, joined on destruction
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace mchain
