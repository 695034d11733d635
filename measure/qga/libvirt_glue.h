// What every user of libvirt's C client in this project needs, once: process-wide set-up
// (threads, no printing error handler, SIGPIPE) and the calling thread's last error.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <string>

namespace mchain::measure::qga {

// Idempotent and thread-safe; call before any other libvirt call. libvirt's client writes to
// its socket with write(2), so a daemon that went away would kill the process with SIGPIPE
// (even from virConnectClose): unless the program chose its own disposition, SIGPIPE is
// ignored, and libvirt reports EPIPE as an error instead.
void initialize_libvirt();

// An error handler that prints nothing: libvirt's default one writes every error to stderr;
// ours reach callers as Error instead. For virConnSetErrorFunc on each connection.
void ignore_libvirt_error(void* user_data, virErrorPtr error) noexcept;

struct LibvirtError {
  int code = VIR_ERR_OK;
  std::string message;
};

// The calling thread's last libvirt error, cleared; read it right after the failing call.
LibvirtError take_last_libvirt_error();

struct ConnectionCloser {
  void operator()(virConnectPtr connection) const noexcept { virConnectClose(connection); }
};
struct DomainFreer {
  void operator()(virDomainPtr domain) const noexcept { virDomainFree(domain); }
};
using Connection = std::unique_ptr<virConnect, ConnectionCloser>;
using Domain = std::unique_ptr<virDomain, DomainFreer>;

}  // namespace mchain::measure::qga
