# 32-bit ARM Linux, hard-float ABI (Debian armhf: ARMv7 + VFPv3-D16, Thumb-2) with Debian's cross
# compiler g++-arm-linux-gnueabihf.
#   cmake --preset armhf    (or -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake)
# Target libraries: scripts/install-cross-deps.sh armhf. Tests run under qemu-arm.
# Details in debian-cross.cmake and docs/deploy-arm.md.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(MIXCAST_CROSS_TRIPLET arm-linux-gnueabihf)
set(MIXCAST_CROSS_DEBARCH armhf)
set(MIXCAST_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
# GCC notes that the armhf ABI for passing some vector iterators changed in GCC 7.1: everything here
# is built by one compiler, so the notes are noise.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")
