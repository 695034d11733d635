#include "measure/qga/libvirt_glue.h"

#include <libvirt/libvirt.h>
#include <signal.h>

#include <mutex>

namespace mchain::measure::qga {

void ignore_libvirt_error(void* /*user_data*/, virErrorPtr /*error*/) noexcept {}

void initialize_libvirt() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();  // libvirt wants it before use from several threads
    // Process-wide: until a connection exists, only the global handler can be replaced.
    virSetErrorFunc(nullptr, ignore_libvirt_error);
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      ::signal(SIGPIPE, SIG_IGN);
    }
  });
}

LibvirtError take_last_libvirt_error() {
  LibvirtError copy;
  if (virErrorPtr error = virGetLastError(); error != nullptr) {
    copy.code = error->code;
    copy.message = error->message != nullptr ? error->message : "";
  }
  if (copy.message.empty()) copy.message = "unknown libvirt error";
  virResetLastError();
  return copy;
}

}  // namespace mchain::measure::qga
