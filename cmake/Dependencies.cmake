# Every external dependency is found here, so that a missing one fails configure with the
# Debian package that provides it (scripts/setup.sh installs them all).
find_package(PkgConfig)
if(NOT PkgConfig_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

macro(mchain_require_package name debian_package)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR "${name} not found: apt-get install ${debian_package}")
  endif()
endmacro()

mchain_require_package(OpenSSL libssl-dev 3.0)
mchain_require_package(Threads libc6-dev)
mchain_require_package(nlohmann_json nlohmann-json3-dev 3.10)
mchain_require_package(leveldb libleveldb-dev)
# Debian's leveldb CMake config links "-lsnappy", but libleveldb-dev does not pull in the
# development symlink.
find_library(MCHAIN_SNAPPY_LIBRARY snappy)
if(NOT MCHAIN_SNAPPY_LIBRARY)
  message(FATAL_ERROR "snappy not found: apt-get install libsnappy-dev")
endif()

# Standalone Asio is header-only: no CMake config or pkg-config module, so look for its header.
find_path(MCHAIN_ASIO_INCLUDE_DIR asio.hpp)
if(NOT MCHAIN_ASIO_INCLUDE_DIR)
  message(FATAL_ERROR "asio.hpp not found: apt-get install libasio-dev")
endif()

# pkg-config modules, as one imported target PkgConfig::<prefix>.
macro(mchain_require_pkg_config prefix debian_package)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${ARGN})
  if(NOT ${prefix}_FOUND)
    string(REPLACE ";" ", " _mchain_modules "${ARGN}")
    message(FATAL_ERROR "${_mchain_modules} not found: apt-get install ${debian_package}")
  endif()
endmacro()

# The guest-agent transport of measure/ (virDomainQemuAgentCommand lives in libvirt-qemu).
mchain_require_pkg_config(LIBVIRT libvirt-dev libvirt libvirt-qemu)

if(MCHAIN_BUILD_TESTS)
  mchain_require_package(GTest libgtest-dev)
  # tests/abe checks the BLS12-381 field arithmetic against GMP's mpz (tests only).
  mchain_require_pkg_config(GMP libgmp-dev gmp)
endif()
if(MCHAIN_BUILD_BENCH)
  mchain_require_package(benchmark libbenchmark-dev)
endif()
