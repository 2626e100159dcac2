# 64-bit ARM Linux (Debian arm64) with Debian's cross compiler g++-aarch64-linux-gnu.
#   cmake --preset aarch64    (or -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake)
# Target libraries: scripts/install-cross-deps.sh arm64. Tests run under qemu-aarch64.
# Details in debian-cross.cmake and docs/deploy-arm.md.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(MIXCAST_CROSS_TRIPLET aarch64-linux-gnu)
set(MIXCAST_CROSS_DEBARCH arm64)
set(MIXCAST_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
