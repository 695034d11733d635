#include "agent/control.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

namespace mchain::agent {

namespace {

using Socket = asio::local::stream_protocol::socket;
using Json = nlohmann::json;

std::string json_line(const Json& j) {
  // Invalid UTF-8 in a string (e.g. a path) is replaced rather than failing the reply.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::optional<ControlPeer> peer_of(Socket& socket) {
  ucred cred{};
  socklen_t size = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) {
    return std::nullopt;
  }
  return ControlPeer{cred.pid, cred.uid, cred.gid};
}

// Whether the user `uid` (primary group `gid`) belongs to `group`, as the group database
// says now (membership changes take effect without restarting mchaind).
bool in_group(uid_t uid, gid_t gid, gid_t group) {
  if (gid == group) return true;
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return false;
  }
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &count) < 0) return false;
  }
  groups.resize(static_cast<std::size_t>(count));
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

}  // namespace

struct ControlServer::Impl {
  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(Socket s, ControlPeer p) : socket(std::move(s)), peer(p) {}
    Socket socket;
    ControlPeer peer;
    std::string in;
    std::deque<std::string> out;
    bool writing = false;
    bool closed = false;
  };

  Options options;
  Handler handler;
  asio::io_context io;
  asio::local::stream_protocol::acceptor acceptor{io};
  std::optional<gid_t> group;
  std::set<std::shared_ptr<Connection>> connections;  // server thread only
  std::thread thread;
  std::mutex stop_mutex;
  bool stopping = false;  // server thread only

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  bool allowed(const ControlPeer& p) const {
    if (p.uid == 0 || p.uid == ::geteuid()) return true;
    return group && in_group(p.uid, p.gid, *group);
  }

  void accept_next() {
    acceptor.async_accept([this](const asio::error_code& ec, Socket socket) {
      if (stopping) return;
      if (!ec) on_accept(std::move(socket));
      accept_next();
    });
  }

  void on_accept(Socket socket) {
    auto peer = peer_of(socket);
    auto c = std::make_shared<Connection>(std::move(socket), peer.value_or(ControlPeer{}));
    if (!peer || !allowed(*peer)) {
      const std::string who =
          peer ? "uid " + std::to_string(peer->uid) + " (pid " + std::to_string(peer->pid) + ")"
               : "a peer whose credentials could not be read";
      log("control: refused " + who + ": not root, not mchaind's user" +
          (options.group.empty() ? "" : ", not in group " + options.group));
      Json refusal = {
          {"ok", false},
          {"error", "permission denied: control access is for root" +
                        (options.group.empty() ? std::string() : " and group " + options.group)}};
      connections.insert(c);
      send(c, refusal);
      c->closed = true;  // closed once the refusal is written
      return;
    }
    if (connections.size() >= options.max_clients) {
      log("control: too many connections; refusing uid " + std::to_string(c->peer.uid));
      asio::error_code ignored;
      c->socket.close(ignored);
      return;
    }
    connections.insert(c);
    read_next(c);
  }

  void read_next(const std::shared_ptr<Connection>& c) {
    asio::async_read_until(
        c->socket, asio::dynamic_buffer(c->in, options.max_request_bytes), '\n',
        [this, c](const asio::error_code& ec, std::size_t n) {
          if (stopping) return;
          if (ec) {
            if (ec == asio::error::not_found) {
              send(c, {{"ok", false},
                       {"error", "request larger than " +
                                     std::to_string(options.max_request_bytes) + " bytes"}});
              c->closed = true;
            } else {
              drop(c);
            }
            return;
          }
          std::string line = c->in.substr(0, n - 1);
          c->in.erase(0, n);
          on_request(c, line);
        });
  }

  void on_request(const std::shared_ptr<Connection>& c, const std::string& line) {
    Json request = Json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object() || !request.contains("command") ||
        !request["command"].is_string()) {
      send(c, {{"ok", false}, {"error", "expected a JSON object with a \"command\" string"}});
      read_next(c);
      return;
    }
    // The reply may come from another thread, once: it is posted back to this one, which
    // then reads the connection's next request (requests are answered in order).
    auto once = std::make_shared<std::once_flag>();
    Reply reply = [this, c, once](Json response) {
      std::call_once(*once, [&] {
        asio::post(io, [this, c, r = std::move(response)] {
          if (stopping) return;
          send(c, r);
          if (!c->closed) read_next(c);
        });
      });
    };
    try {
      handler(c->peer, request, reply);
    } catch (const std::exception& e) {
      reply({{"ok", false}, {"error", std::string("internal error: ") + e.what()}});
    }
  }

  void send(const std::shared_ptr<Connection>& c, const Json& response) {
    c->out.push_back(json_line(response));
    if (!c->writing) write_next(c);
  }

  void write_next(const std::shared_ptr<Connection>& c) {
    c->writing = true;
    asio::async_write(c->socket, asio::buffer(c->out.front()),
                      [this, c](const asio::error_code& ec, std::size_t) {
                        c->writing = false;
                        if (stopping) return;
                        if (ec) return drop(c);
                        c->out.pop_front();
                        if (!c->out.empty()) return write_next(c);
                        if (c->closed) drop(c);
                      });
  }

  void drop(const std::shared_ptr<Connection>& c) {
    asio::error_code ignored;
    c->socket.close(ignored);
    connections.erase(c);
  }

  void shutdown() {
    stopping = true;
    asio::error_code ignored;
    acceptor.close(ignored);
    for (const auto& c : connections) c->socket.close(ignored);
    connections.clear();
  }
};

namespace {

// A socket file a live daemon still listens on must not be taken over.
bool someone_listens(const std::filesystem::path& path) {
  asio::io_context io;
  Socket probe(io);
  asio::error_code ec;
  probe.connect(asio::local::stream_protocol::endpoint(path.string()), ec);
  return !ec;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::start(Options options, Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  const std::filesystem::path& path = impl->options.socket;
  if (!impl->options.group.empty()) {
    group* g = ::getgrnam(impl->options.group.c_str());
    if (g == nullptr) return fail("control socket: no group named " + impl->options.group);
    impl->group = g->gr_gid;
  }
  std::error_code fs_ec;
  std::filesystem::create_directories(path.parent_path(), fs_ec);
  if (fs_ec) {
    return fail("control socket: cannot create " + path.parent_path().string() + ": " +
                fs_ec.message());
  }
  if (std::filesystem::exists(std::filesystem::symlink_status(path))) {
    if (someone_listens(path)) {
      return fail("control socket " + path.string() + ": another mchaind is listening on it");
    }
    std::filesystem::remove(path, fs_ec);  // left by a daemon that died
  }
  asio::error_code ec;
  const asio::local::stream_protocol::endpoint endpoint(path.string());
  // Created with no access for others, then opened up to the group: no window in which
  // anyone else could connect.
  const mode_t old_umask = ::umask(0177);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  ::umask(old_umask);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("control socket " + path.string() + ": " + ec.message());
  if (impl->group) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), *impl->group) != 0 ||
        ::chmod(path.c_str(), 0660) != 0) {
      return fail("control socket " + path.string() + ": cannot give it to group " +
                  impl->options.group + ": " + std::strerror(errno));
    }
  }
  Impl* raw = impl.get();
  raw->accept_next();
  raw->thread = std::thread([raw] {
    for (;;) {
      try {
        raw->io.run();
        return;
      } catch (const std::exception& e) {
        raw->log(std::string("control: internal error: ") + e.what());
      }
    }
  });
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::stop() {
  std::lock_guard lock(impl_->stop_mutex);
  if (!impl_->thread.joinable()) return;
  Impl* raw = impl_.get();
  asio::post(impl_->io, [raw] { raw->shutdown(); });
  impl_->thread.join();
  std::error_code ec;
  std::filesystem::remove(impl_->options.socket, ec);
}

Result<nlohmann::json> control_request(const std::filesystem::path& socket,
                                       const nlohmann::json& request,
                                       std::chrono::milliseconds timeout) {
  asio::io_context io;
  Socket s(io);
  std::string response;
  asio::error_code result = asio::error::timed_out;
  bool connected = false;
  const std::string line = json_line(request);
  s.async_connect(
      asio::local::stream_protocol::endpoint(socket.string()), [&](const asio::error_code& ec) {
        if (ec) {
          result = ec;
          return;
        }
        connected = true;
        asio::async_write(s, asio::buffer(line), [&](const asio::error_code& wec, std::size_t) {
          // Read even if the write failed: a daemon that refuses a client writes why and
          // closes, and that line is still there to be read.
          asio::async_read_until(s, asio::dynamic_buffer(response, 256u << 20), '\n',
                                 [&, wec](const asio::error_code& rec, std::size_t) {
                                   result = rec && wec ? wec : rec;
                                 });
        });
      });
  io.run_for(timeout);
  if (result == asio::error::timed_out) {
    return fail("mchaind did not answer on " + socket.string() + " within " +
                std::to_string(timeout.count()) + " ms");
  }
  if (result) {
    return fail(
        std::string(connected ? "lost mchaind's control socket " : "cannot reach mchaind at ") +
        socket.string() + ": " + result.message());
  }
  const auto end = response.find('\n');
  Json parsed = Json::parse(response.substr(0, end), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return fail("mchaind sent a malformed response on " + socket.string());
  }
  return parsed;
}

}  // namespace mchain::agent
