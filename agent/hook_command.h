// `mchainctl hook`: what the libvirt hook script (hooks/qemu) runs. libvirt calls the hook
// synchronously inside its daemon with (domain, operation, sub-operation, extra) and the
// domain XML on stdin; this hands all of it to mchaind within a deadline and decides the exit
// status libvirt sees. It never calls libvirt (that would deadlock the daemon).
#pragma once

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace mchain::agent {

// The whole hook, connecting and reading the XML included, stays within this.
inline constexpr std::chrono::milliseconds kHookDeadline{2000};

// `args`: what libvirt passed (domain, operation, sub-operation, extra). Returns 0 — also when
// mchaind cannot be reached or does not answer in time, which is logged on `err` — unless
// mchaind enforces and refuses the operation: then 1, with its reason on `err`. 2 for a
// call that is not a libvirt hook's.
int run_hook(const std::filesystem::path& socket, const std::vector<std::string>& args,
             std::istream& xml, std::ostream& err,
             std::chrono::milliseconds deadline = kHookDeadline);

}  // namespace mchain::agent
