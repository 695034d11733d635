// LibvirtHost: a private libvirtd for tests, started by tests/guest/libvirt_host.sh in its own
// mount and UTS namespaces with its own config and state under a directory the caller owns.
// Several can run on one machine (e.g. two "hosts" for migration). Needs root. Header-only.
//
//   auto host = LibvirtHost::start(tmp.path() / "h1", "h1");
//   ASSERT_TRUE(host) << host.error();
//   auto defined = host->virsh({"define", xml_file});
//
// The daemon is a direct child of the test (the script execs into it) and is reaped on stop().
// libvirt double-forks the QEMU of each domain (and of its capability probes), so those are
// PID 1's to reap. Making the test a child subreaper instead does not work: libvirt waits for
// a killed probe QEMU with kill(pid, 0), which a zombie nobody reaps still answers, and the first
// start then took minutes instead of seconds.
#pragma once

#include <unistd.h>

#include <chrono>
#include <expected>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "guest/guest_vm.h"

#ifndef MCHAIN_LIBVIRT_HOST_SH
// CMake sets the script's path; this fallback holds when the header is included by absolute path.
#define MCHAIN_LIBVIRT_HOST_SH (std::filesystem::path(__FILE__).parent_path() / "libvirt_host.sh")
#endif

namespace mchain::testing {

struct LibvirtHostOptions {
  // The first start of a daemon probes QEMU's capabilities: ~10 s idle, much more under load.
  std::chrono::milliseconds timeout{180'000};
  std::filesystem::path hook;       // installed as the qemu hook; empty: none
  std::filesystem::path cache_dir;  // /var/cache/libvirt, shareable between hosts; empty: DIR/cache
  std::string netns;  // run the daemon in this network namespace (ip netns exec); empty: ours
};

class LibvirtHost {
 public:
  using Options = LibvirtHostOptions;
  using Result = guest_detail::CommandResult;

  static std::expected<LibvirtHost, std::string> start(const std::filesystem::path& dir,
                                                       const std::string& name,
                                                       Options options = {}) {
    namespace fs = std::filesystem;
    using namespace guest_detail;
    if (::geteuid() != 0) return std::unexpected("a private libvirtd needs root");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return std::unexpected("create " + dir.string() + ": " + ec.message());
    LibvirtHost host(fs::absolute(dir));
    if (host.socket().native().size() >= sizeof(sockaddr_un::sun_path))
      return std::unexpected("directory too long for a unix socket: " + host.socket().string());

    std::vector<std::string> args;
    // ip execs the script in the namespace: the child is still the daemon itself.
    if (!options.netns.empty()) args = {"ip", "netns", "exec", options.netns};
    args.push_back(fs::path(MCHAIN_LIBVIRT_HOST_SH).string());
    if (!options.hook.empty()) args.insert(args.end(), {"--hook", options.hook.string()});
    if (!options.cache_dir.empty())
      args.insert(args.end(), {"--cache", options.cache_dir.string()});
    args.insert(args.end(), {host.dir_.string(), name});
    Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    Fd log(::open((host.dir_ / "libvirt_host.log").c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!null || !log) return std::unexpected(errno_text("open /dev/null or libvirt_host.log"));
    auto child = spawn_child(args, null.get(), log.get(), log.get());
    if (!child) return std::unexpected(child.error());
    host.pid_ = *child;

    auto deadline = Clock::now() + options.timeout;
    std::string last = "no socket yet";
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(host.pid_, &status, WNOHANG) == host.pid_) {
        host.pid_ = -1;
        return std::unexpected("libvirtd " + describe_status(status) + ":\n" + host.logs());
      }
      if (fs::exists(host.socket())) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        // Answers only once the QEMU driver is up, i.e. after the capability probe.
        auto version = host.virsh({"version"}, left);
        if (version.status == 0) return host;
        last = version.output;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    host.stop();
    return std::unexpected("libvirtd not ready within " + std::to_string(options.timeout.count()) +
                           " ms (" + last + "):\n" + host.logs());
  }

  LibvirtHost(LibvirtHost&& other) noexcept
      : dir_(std::move(other.dir_)), pid_(std::exchange(other.pid_, -1)) {}
  LibvirtHost& operator=(LibvirtHost&& other) noexcept {
    if (this != &other) {
      stop();
      dir_ = std::move(other.dir_);
      pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
  }
  LibvirtHost(const LibvirtHost&) = delete;
  LibvirtHost& operator=(const LibvirtHost&) = delete;
  ~LibvirtHost() { stop(); }

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path socket() const { return dir_ / "run/libvirt/libvirt-sock"; }
  // The +unix form also works as a migration destination.
  std::string uri() const { return "qemu+unix:///system?socket=" + socket().string(); }
  // libvirtd's PID, or -1 once stopped.
  pid_t pid() const { return pid_; }

  // virsh -c uri() ARGS...
  Result virsh(const std::vector<std::string>& args,
               std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
    std::vector<std::string> command = {"virsh", "-q", "-c", uri()};
    command.insert(command.end(), args.begin(), args.end());
    return guest_detail::run_command(command, timeout);
  }

  // The script's output and the daemon's log (under DIR/log), for failure messages.
  std::string logs() const {
    return guest_detail::file_tail(dir_ / "libvirt_host.log", 2000) + "\n--- libvirtd.log:\n" +
           guest_detail::file_tail(dir_ / "log/libvirtd.log", 4000);
  }

  // Destroys the running domains, stops the daemon (SIGTERM, SIGKILL after 15 s) and kills any
  // domain QEMU still there. Safe to call again.
  void stop() {
    using namespace guest_detail;
    if (pid_ <= 0) return;
    std::vector<pid_t> domains = domain_pids();
    auto running = virsh({"list", "--name"}, std::chrono::seconds(30));
    std::istringstream names(running.output);
    for (std::string name; running.status == 0 && std::getline(names, name);)
      if (!name.empty()) virsh({"destroy", name}, std::chrono::seconds(30));

    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;

    for (pid_t domain : domains)
      if (is_domain_qemu(domain)) ::kill(domain, SIGKILL);
  }

  // The QEMU processes of this daemon's running domains: NAME.pid beside NAME.xml, libvirt's
  // status file (driver.pid is the daemon's own).
  std::vector<pid_t> domain_pids() const {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ / "run/libvirt/qemu", ec)) {
      if (entry.path().extension() != ".pid") continue;
      if (!std::filesystem::exists(std::filesystem::path(entry.path()).replace_extension(".xml")))
        continue;
      std::ifstream in(entry.path());
      pid_t pid = 0;
      if (in >> pid && pid > 0) pids.push_back(pid);
    }
    return pids;
  }

 private:
  explicit LibvirtHost(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Guards the SIGKILL above against a recycled PID: a live QEMU whose command line names one
  // of this host's paths.
  bool is_domain_qemu(pid_t pid) const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return cmdline.find("qemu-system") != std::string::npos &&
           cmdline.find("/var/lib/libvirt/qemu/") != std::string::npos;
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

// Why this machine cannot run a private libvirtd; empty when it can.
inline std::string libvirt_host_unavailable() {
  using guest_detail::run_command;
  if (::geteuid() != 0) return "a private libvirtd needs root";
  if (run_command({"sh", "-c", "command -v libvirtd && command -v virsh"}).status != 0)
    return "needs libvirt-daemon-driver-qemu and libvirt-clients (scripts/setup.sh)";
  if (run_command({"unshare", "--mount", "--uts", "true"}).status != 0)
    return "no mount and UTS namespaces here (a container without CAP_SYS_ADMIN?)";
  return "";
}

// Domain XML for the test guest (see build-guest.sh): TCG, qemu64, direct kernel boot, serial
// console to console_log, and the guest-agent channel (libvirt picks the socket path).
inline std::string test_guest_domain_xml(const std::string& name,
                                         const std::filesystem::path& guest_dir,
                                         const std::filesystem::path& console_log,
                                         unsigned memory_mb = 256) {
  auto escape = [](const std::string& text) {
    std::string out;
    for (char c : text) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '\'': out += "&apos;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
      }
    }
    return out;
  };
  std::ostringstream xml;
  xml << "<domain type='qemu'>\n"
      << "  <name>" << escape(name) << "</name>\n"
      << "  <memory unit='MiB'>" << memory_mb << "</memory>\n"
      << "  <vcpu>1</vcpu>\n"
      << "  <os>\n"
      << "    <type arch='x86_64' machine='pc'>hvm</type>\n"
      << "    <kernel>" << escape((guest_dir / "vmlinuz").string()) << "</kernel>\n"
      << "    <initrd>" << escape((guest_dir / "initramfs.cpio.gz").string()) << "</initrd>\n"
      << "    <cmdline>" << GuestVm::kCmdline << "</cmdline>\n"
      << "  </os>\n"
      << "  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>\n"
      << "  <on_poweroff>destroy</on_poweroff>\n"
      << "  <on_reboot>restart</on_reboot>\n"
      << "  <on_crash>destroy</on_crash>\n"
      << "  <devices>\n"
      << "    <serial type='file'><source path='" << escape(console_log.string())
      << "'/><target port='0'/></serial>\n"
      << "    <channel type='unix'><target type='virtio' "
         "name='org.qemu.guest_agent.0'/></channel>\n"
      << "    <memballoon model='none'/>\n"
      << "  </devices>\n"
      << "</domain>\n";
  return xml.str();
}

}  // namespace mchain::testing
