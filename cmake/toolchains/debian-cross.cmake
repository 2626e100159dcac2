# Shared part of the Debian cross toolchain files (aarch64-linux-gnu.cmake,
# arm-linux-gnueabihf.cmake). The including file sets:
#   MIXCAST_CROSS_TRIPLET   GNU triplet of Debian's cross compiler (aarch64-linux-gnu)
#   MIXCAST_CROSS_DEBARCH   Debian architecture (arm64)
#   MIXCAST_CROSS_QEMU      qemu-user binary that runs target programs (qemu-aarch64)
#   CMAKE_SYSTEM_PROCESSOR
#
# Where target libraries come from, first match wins:
#   1. the private sysroot scripts/install-cross-deps.sh unpacks Debian's target packages into:
#      $MIXCAST_CROSS_ROOT/<debarch> (default /opt/mixcast-cross/<debarch>): yaml-cpp, spdlog, fmt,
#      GoogleTest with their CMake package files;
#   2. the cross compiler's own tree /usr/<triplet> (libc, libstdc++);
#   3. Debian multiarch packages of the target architecture (/usr/lib/<triplet>, e.g.
#      libspdlog-dev:arm64), if somebody installed them;
#   4. architecture-independent headers and CMake files of the build machine: /usr/include
#      (Boost, nlohmann-json, CLI11; Boost is used header-only) and /usr/share/cmake.
# Never the build machine's own libraries: CMAKE_LIBRARY_ARCHITECTURE is the target triplet, so
# find_library/find_package look in lib/<triplet>, and the build machine's lib/<triplet> is on
# CMAKE_IGNORE_PATH. A host library that slipped through would not link anyway (wrong ELF machine).
#
# The compiler searches /usr/include itself (after its own C++ headers), so CMake treats
# /usr/include as implicit and never passes it with -I/-isystem: adding it explicitly would put
# the build machine's C headers in front of the cross libstdc++'s #include_next wrappers.
#
# Target programs (ctest, gtest_discover_tests) run under qemu-user through
# CMAKE_CROSSCOMPILING_EMULATOR: -L points qemu at the target's dynamic loader and libc,
# LD_LIBRARY_PATH at the sysroot's shared libraries.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${MIXCAST_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${MIXCAST_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${MIXCAST_CROSS_TRIPLET})

if(NOT DEFINED MIXCAST_CROSS_ROOT)
  if(DEFINED ENV{MIXCAST_CROSS_ROOT})
    set(MIXCAST_CROSS_ROOT "$ENV{MIXCAST_CROSS_ROOT}")
  else()
    set(MIXCAST_CROSS_ROOT /opt/mixcast-cross)
  endif()
endif()
set(MIXCAST_CROSS_SYSROOT ${MIXCAST_CROSS_ROOT}/${MIXCAST_CROSS_DEBARCH})
set(MIXCAST_CROSS_COMPILER_ROOT /usr/${MIXCAST_CROSS_TRIPLET})
# Try-compile projects re-read this file; hand them the same root.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MIXCAST_CROSS_ROOT)

find_program(MIXCAST_CROSS_CXX_PATH ${CMAKE_CXX_COMPILER})
if(NOT MIXCAST_CROSS_CXX_PATH)
  message(FATAL_ERROR "${CMAKE_CXX_COMPILER} not found: install the Debian cross compiler "
    "(bash scripts/install-cross-deps.sh ${MIXCAST_CROSS_DEBARCH})")
endif()

set(CMAKE_FIND_ROOT_PATH ${MIXCAST_CROSS_SYSROOT} ${MIXCAST_CROSS_COMPILER_ROOT} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # build tools (ninja, qemu) are the build machine's
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The build machine's multiarch directories (x86_64-linux-gnu on amd64).
execute_process(COMMAND gcc -print-multiarch OUTPUT_VARIABLE _mixcast_host_triplet
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(_mixcast_host_triplet AND NOT _mixcast_host_triplet STREQUAL MIXCAST_CROSS_TRIPLET)
  foreach(_dir /usr/lib/${_mixcast_host_triplet} /lib/${_mixcast_host_triplet}
               /usr/lib/${_mixcast_host_triplet}/cmake /usr/include/${_mixcast_host_triplet})
    list(APPEND CMAKE_IGNORE_PATH ${_dir})
  endforeach()
  list(REMOVE_DUPLICATES CMAKE_IGNORE_PATH)
endif()

# qemu-user for running the target's programs at build (test discovery) and test time: the one
# install-cross-deps.sh put in $MIXCAST_CROSS_ROOT/qemu/bin first, then PATH. qemu before 10.0
# does not emulate setsockopt(IP_MULTICAST_IF) (ENOPROTOOPT, "Protocol not available"): every
# runtime test with multicast fails under it.
if(EXISTS ${MIXCAST_CROSS_ROOT}/qemu/bin/${MIXCAST_CROSS_QEMU})
  set(_mixcast_qemu ${MIXCAST_CROSS_ROOT}/qemu/bin/${MIXCAST_CROSS_QEMU})
else()
  find_program(MIXCAST_CROSS_QEMU_PATH NAMES ${MIXCAST_CROSS_QEMU} ${MIXCAST_CROSS_QEMU}-static)
  set(_mixcast_qemu ${MIXCAST_CROSS_QEMU_PATH})
endif()
if(_mixcast_qemu)
  set(CMAKE_CROSSCOMPILING_EMULATOR
      ${_mixcast_qemu} -L ${MIXCAST_CROSS_COMPILER_ROOT}
      -E LD_LIBRARY_PATH=${MIXCAST_CROSS_SYSROOT}/usr/lib/${MIXCAST_CROSS_TRIPLET})
  execute_process(COMMAND ${_mixcast_qemu} --version OUTPUT_VARIABLE _mixcast_qemu_version ERROR_QUIET)
  if(_mixcast_qemu_version MATCHES "version ([0-9]+)\\.")
    if(CMAKE_MATCH_1 LESS 10)
      message(WARNING "${_mixcast_qemu} is qemu ${CMAKE_MATCH_1}: it does not emulate "
        "IP_MULTICAST_IF, so the multicast runtime tests fail under it; "
        "bash scripts/install-cross-deps.sh ${MIXCAST_CROSS_DEBARCH} fetches qemu 10")
    endif()
  endif()
elseif(NOT DEFINED MIXCAST_BUILD_TESTS OR MIXCAST_BUILD_TESTS)
  # gtest_discover_tests runs every test binary right after linking it: without qemu the build
  # would fail later with "Exec format error".
  message(FATAL_ERROR "${MIXCAST_CROSS_QEMU} not found: the tests run under qemu-user "
    "(bash scripts/install-cross-deps.sh ${MIXCAST_CROSS_DEBARCH}); "
    "configure with -DMIXCAST_BUILD_TESTS=OFF to build only the programs")
endif()

if(NOT EXISTS ${MIXCAST_CROSS_SYSROOT}/.mixcast-cross-stamp)
  message(STATUS "mixcast: no target sysroot at ${MIXCAST_CROSS_SYSROOT} "
    "(bash scripts/install-cross-deps.sh ${MIXCAST_CROSS_DEBARCH}); looking for multiarch packages only")
endif()
