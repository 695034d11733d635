# Strict warnings for our own targets only; third-party headers come in as SYSTEM.
function(mchain_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # The constant-time code in abe/pairing combines booleans with & and | on purpose: both
    # sides are always evaluated, so timing does not depend on the first one's value.
    target_compile_options(${target} PRIVATE -Wno-bitwise-instead-of-logical)
  endif()
endfunction()
