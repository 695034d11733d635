#include "agent/version.h"

namespace mchain::agent {

std::string_view version() { return MCHAIN_VERSION; }

}  // namespace mchain::agent
