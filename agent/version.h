#pragma once

#include <string_view>

namespace mchain::agent {

// The release version, from CMake's project(VERSION).
std::string_view version();

}  // namespace mchain::agent
