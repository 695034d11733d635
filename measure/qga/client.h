// The qemu-guest-agent commands measurement needs, typed, over any Transport.
//
// A Client is used by one thread at a time (thread-compatible: no internal locking; guard it
// or give each thread its own). It learns which commands the guest allows from guest-info,
// remembers the guest's boot id at the start of a session, and turns a reply that came from
// a different boot into kGuestRebooted instead of data.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chain/types.h"
#include "measure/qga/transport.h"

namespace mchain::measure::qga {

struct ClientOptions {
  Milliseconds command_timeout{5000};  // every single command
  Milliseconds exec_timeout{120000};   // a guest-exec until its process has exited
  Milliseconds exec_poll_interval{5};  // first guest-exec-status poll; doubles up to 100 ms
};

struct AgentInfo {
  std::string version;
  std::set<std::string> enabled;   // commands the guest allows
  std::set<std::string> disabled;  // commands the agent knows but the guest blocked
  bool allows(const std::string& command) const { return enabled.contains(command); }
};

struct ExecResult {
  int exit_code = 0;          // -1 when the process was killed by a signal
  std::optional<int> signal;  // set when the process was killed by a signal
  Bytes out;
  Bytes err;
  bool out_truncated = false;  // the agent cut stdout at its 16 MiB cap
  bool err_truncated = false;
};

class Client;

// An open guest file. Closes itself (best effort) when it goes, so that no path out of a
// collector leaks a guest handle. It points to its Client, which must outlive it and not
// move while it is open.
class GuestFile {
 public:
  GuestFile(GuestFile&& other) noexcept;
  GuestFile& operator=(GuestFile&& other) noexcept;
  GuestFile(const GuestFile&) = delete;
  GuestFile& operator=(const GuestFile&) = delete;
  ~GuestFile();

  struct Chunk {
    Bytes data;
    bool eof = false;
  };
  // Reads up to `count` bytes (at most 1 MiB, libvirt's limit with base64 taken into account).
  Result<Chunk> read(std::size_t count);
  // Reads from here to the end in reads of `count` bytes, handing each piece to `sink` as it
  // arrives (nothing is buffered whole), with a few reads in flight where the transport
  // allows it, and returns the number of bytes read.
  Result<std::uint64_t> read_to_end(std::size_t count, const std::function<void(ByteView)>& sink);
  // Closes now and reports the outcome; the destructor does the same silently.
  Status close();

  std::int64_t handle() const { return handle_; }

 private:
  friend class Client;
  GuestFile(Client* client, std::int64_t handle) : client_(client), handle_(handle) {}
  void close_quietly() noexcept;
  Client* client_ = nullptr;
  std::int64_t handle_ = -1;
};

inline constexpr std::size_t kMaxFileChunk = 1u << 20;
// Reads kept in flight by GuestFile::read_to_end on transports that pipeline.
inline constexpr std::size_t kReadAhead = 4;

class Client {
 public:
  explicit Client(std::unique_ptr<Transport> transport, ClientOptions options = {});

  // guest-info, cached after the first successful call.
  Result<AgentInfo> info();
  Status ping();

  // Starts a measurement session: reads the guest's boot id
  // (/proc/sys/kernel/random/boot_id, through guest-file-*, or guest-exec where the guest
  // blocks those), and from then on any error that
  // could be a reboot (timeout, lost handle, disconnect) is checked against it.
  Status begin_session();
  // Fails with kGuestRebooted if the boot id changed since begin_session().
  Status check_same_boot();

  // guest-exec with captured output, then guest-exec-status polls until the process exits
  // or exec_timeout passes (kTimeout; the guest process may still run: QGA cannot kill it).
  Result<ExecResult> exec(const std::string& path, const std::vector<std::string>& args,
                          ByteView stdin_data = {});

  Result<GuestFile> open_file(const std::string& path);

  // The largest guest-file-read count this client accepts: kMaxFileChunk, or less where the
  // transport's reply cap (with base64's 4/3) demands it.
  std::size_t max_read_chunk() const;

  Transport& transport() { return *transport_; }
  const ClientOptions& options() const { return options_; }

 private:
  friend class GuestFile;
  Result<Json> call(const std::string& command, Json arguments, Milliseconds timeout);
  Result<Json> call(const std::string& command, Json arguments);
  // A reply's "return" value, or the agent's error as an Error.
  Result<Json> unwrap(const std::string& command, Json reply);
  Status check_read_size(std::size_t count) const;
  static Result<GuestFile::Chunk> parse_read(const Json& reply, std::size_t count);
  Status require(const std::string& command);

  // The raw file steps and the boot-id check, without the reboot check that the public
  // calls add (it uses them itself).
  Result<std::int64_t> open_handle(const std::string& path, Milliseconds timeout);
  Result<GuestFile::Chunk> read_chunk(std::int64_t handle, std::size_t count, Milliseconds timeout);
  Status close_handle(std::int64_t handle, Milliseconds timeout);
  // Through the file API, or guest-exec where the guest blocks the file commands.
  Result<std::string> read_boot_id(Milliseconds timeout);
  Result<std::string> read_boot_id_by_file(Milliseconds timeout);
  static Result<std::string> parse_boot_id(std::string text);
  Status compare_boot(Milliseconds timeout);
  // `error` from a step that a reboot could explain, or kGuestRebooted if one happened.
  Error reboot_or(Error error);

  std::unique_ptr<Transport> transport_;
  ClientOptions options_;
  std::optional<AgentInfo> info_;
  std::optional<std::string> boot_id_;
  bool checking_boot_ = false;  // a reboot check in progress must not start another
};

}  // namespace mchain::measure::qga
