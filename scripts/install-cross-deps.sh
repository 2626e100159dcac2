#!/usr/bin/env bash
# Installs what the ARM cross builds need (CMake presets `aarch64` and `armhf`,
# cmake/toolchains/*.cmake, docs/deploy-arm.md):
#   - build-machine packages: Debian's cross compilers, dpkg-dev + fakeroot + file (CPack's DEB
#     generator), and the architecture-independent headers the target build shares with the
#     native one (Boost, used header-only; nlohmann-json; CLI11);
#   - one target sysroot per architecture, $MIXCAST_CROSS_ROOT/<arch> (default
#     /opt/mixcast-cross/arm64, /opt/mixcast-cross/armhf): the target's yaml-cpp, spdlog, fmt and
#     GoogleTest, downloaded from Debian's archive for that architecture with a private apt state
#     and unpacked with dpkg-deb -x;
#   - qemu-user 10 or newer ($MIXCAST_CROSS_ROOT/qemu/bin/qemu-aarch64, qemu-arm) unless the
#     machine already has one: qemu before 10.0 does not emulate setsockopt(IP_MULTICAST_IF) and
#     every mixed-mode runtime test fails with "Protocol not available". Debian 12's qemu-user is
#     7.2; its backports suite has 10.0 (static binaries, taken from the package unchanged).
# Why not `dpkg --add-architecture` (multiarch)? libyaml-cpp-dev is not Multi-Arch: same, so its
# arm64 build cannot be installed next to the amd64 one the native build needs; co-installing
# the rest forces every shared library (libc6, libssl3, krb5, linux-libc-dev, ...) to the same
# version on both architectures, which upgrades build-machine packages in lock-step; and a foreign
# architecture makes every later `apt-get update` on the machine depend on that architecture's
# indexes (bookworm-security's armhf index failed to download here, exit code 100). The private
# state touches neither dpkg's database nor the machine's apt lists. The toolchain files also
# accept real multiarch packages (/usr/lib/<triplet>) if somebody installs them.
#
# Idempotent: when everything is present it only runs dpkg-query and reads stamp files.
# Usage: scripts/install-cross-deps.sh [arm64] [armhf]     (default: both; run as root or with sudo)
# Environment: MIXCAST_CROSS_ROOT (default /opt/mixcast-cross),
#              MIXCAST_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

cross_root=${MIXCAST_CROSS_ROOT:-/opt/mixcast-cross}
mirror=${MIXCAST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
log=/tmp/mixcast-cross-apt.log
qemu_min_major=10

archs=("$@")
((${#archs[@]})) || archs=(arm64 armhf)

# Target packages unpacked into each sysroot. Their runtime libraries (libyaml-cpp0.7,
# libspdlog1.10, libfmt9: whatever a -dev package pins with "(= version)") are added below.
# libstdc++ and libc come with the cross compiler (/usr/<triplet>).
target_dev_packages=(libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev)

die() { echo "install-cross-deps: $*" >&2; exit 1; }

sudo_cmd=()
need_root() {
  if [[ $(id -u) -ne 0 && ${#sudo_cmd[@]} -eq 0 ]]; then
    command -v sudo >/dev/null || die "need root or sudo to $1"
    sudo_cmd=(sudo)
  fi
}

host_packages=(dpkg-dev fakeroot file cmake ninja-build libboost-dev nlohmann-json3-dev libcli11-dev)
qemus=()
for arch in "${archs[@]}"; do
  case "$arch" in
    arm64) host_packages+=(g++-aarch64-linux-gnu); qemus+=(qemu-aarch64) ;;
    armhf) host_packages+=(g++-arm-linux-gnueabihf); qemus+=(qemu-arm) ;;
    *) die "unknown architecture '$arch' (arm64 or armhf)" ;;
  esac
done

# 1. Build-machine packages.
missing=()
for p in "${host_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-cross-deps: installing ${missing[*]}" >&2
  need_root "install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    # A fresh machine may have stale package lists. An index that fails to download does not
    # stop us here; apt-get install below says whether the packages are there.
    "${sudo_cmd[@]}" apt-get update >>"$log" 2>&1 || echo "install-cross-deps: apt-get update reported errors (see $log); trying anyway" >&2
    "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
      || { tail -20 "$log" >&2; die "apt-get install ${missing[*]} failed, see $log"; }
  fi
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n "$codename" ]] || die "cannot tell the Debian release (VERSION_CODENAME in /etc/os-release)"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# A private apt state under $cross_root/.apt/NAME for one architecture and some suites: its own
# sources, lists, cache and an empty dpkg status, so nothing of the machine's apt or dpkg state is
# read or changed. Sets apt_dir and apt_opts; downloads go to $apt_dir/debs.
apt_dir=
apt_opts=()
private_apt() {
  local name=$1 arch=$2
  shift 2
  need_root "write $cross_root"
  [[ -f "$keyring" ]] || die "$keyring is missing (apt-get install debian-archive-keyring)"
  apt_dir=$cross_root/.apt/$name
  "${sudo_cmd[@]}" rm -rf "$apt_dir"
  "${sudo_cmd[@]}" mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$apt_dir/debs"
  local suite base
  for suite in "$@"; do
    base=$mirror
    [[ "$suite" == *-security ]] && base=${mirror%/debian}/debian-security
    echo "deb [arch=$arch signed-by=$keyring] $base $suite main"
  done | "${sudo_cmd[@]}" tee "$apt_dir/sources.list" >/dev/null
  "${sudo_cmd[@]}" touch "$apt_dir/status"
  apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::status=$apt_dir/status"
    -o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "APT::Sandbox::User=root"
  )
  # bookworm-security's armhf index has failed to download from the archive (size mismatch);
  # what we need is in the other suites too, so a failed index is only a warning. A package that
  # really is missing makes the download below fail.
  if ! "${sudo_cmd[@]}" apt-get "${apt_opts[@]}" update >>"$log" 2>&1; then
    echo "install-cross-deps: apt-get update ($name: $*) reported errors (see $log); continuing with the indexes that arrived" >&2
  fi
}

download() {  # download PKG...: into $apt_dir/debs
  if ! (cd "$apt_dir/debs" && "${sudo_cmd[@]}" apt-get "${apt_opts[@]}" download "$@" >>"$log" 2>&1); then
    tail -20 "$log" >&2
    die "downloading $* failed (see $log)"
  fi
}

# 2. Target sysroots. The stamp names what a sysroot was made from; another list or release
# rebuilds it.
sysroot_signature="mixcast-cross-sysroot v1 $codename $mirror ${target_dev_packages[*]}"
make_sysroot() {
  local arch=$1
  local sysroot=$cross_root/$arch
  local stamp=$sysroot/.mixcast-cross-stamp
  if [[ -f "$stamp" ]] && [[ "$(head -n 1 "$stamp")" == "$sysroot_signature" ]]; then
    return 0
  fi
  echo "install-cross-deps: building the $arch sysroot in $sysroot (apt log: $log)" >&2
  private_apt "$arch" "$arch" "$codename" "$codename-updates" "$codename-security"

  # First the -dev packages, then the runtime libraries they pin with "(= version)", exactly
  # those versions.
  download "${target_dev_packages[@]/%/:$arch}"
  local libs=() deb dep
  for deb in "$apt_dir"/debs/*.deb; do
    while IFS= read -r dep; do
      if [[ "$dep" =~ ^(lib[a-z0-9.+-]+)\ \(=\ ([^\)]+)\)$ ]]; then
        libs+=("${BASH_REMATCH[1]}:$arch=${BASH_REMATCH[2]}")
      fi
    done < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/ *$//')
  done
  ((${#libs[@]})) || die "no runtime libraries found in the Depends of ${target_dev_packages[*]} ($arch)"
  mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)
  download "${libs[@]}"

  "${sudo_cmd[@]}" rm -rf "$sysroot"
  "${sudo_cmd[@]}" mkdir -p "$sysroot"
  for deb in "$apt_dir"/debs/*.deb; do
    "${sudo_cmd[@]}" dpkg-deb -x "$deb" "$sysroot"
  done
  { echo "$sysroot_signature"; for deb in "$apt_dir"/debs/*.deb; do basename "$deb"; done; } \
    | "${sudo_cmd[@]}" tee "$stamp" >/dev/null
  "${sudo_cmd[@]}" rm -rf "$apt_dir"
}

# 3. qemu-user >= 10 for the target binaries.
qemu_major() {  # qemu_major BINARY: prints the major version, nothing if it does not run
  { "$1" --version 2>/dev/null || true; } | sed -n '1s/.*version \([0-9]*\)\..*/\1/p'
}
ensure_qemu() {
  local dir=$cross_root/qemu/bin q wanted=()
  for q in "${qemus[@]}"; do
    local major
    major=$(qemu_major "$dir/$q")
    [[ -n "$major" ]] && ((major >= qemu_min_major)) && continue
    if command -v "$q" >/dev/null; then
      major=$(qemu_major "$(command -v "$q")")
      [[ -n "$major" ]] && ((major >= qemu_min_major)) && continue
    fi
    wanted+=("$q")
  done
  ((${#wanted[@]})) || return 0
  local host_arch
  host_arch=$(dpkg --print-architecture)
  echo "install-cross-deps: fetching qemu-user >= $qemu_min_major ($codename-backports, $host_arch) for ${wanted[*]} (apt log: $log)" >&2
  private_apt "qemu" "$host_arch" "$codename-backports"
  download qemu-user
  local deb
  deb=$(ls "$apt_dir"/debs/qemu-user_*.deb)
  local version
  version=$(dpkg-deb -f "$deb" Version)
  [[ "${version#*:}" =~ ^([0-9]+)\. ]] && ((BASH_REMATCH[1] >= qemu_min_major)) \
    || die "the archive's newest qemu-user is $version; qemu $qemu_min_major or newer is needed (IP_MULTICAST_IF)"
  "${sudo_cmd[@]}" mkdir -p "$dir"
  # Both emulators, whichever were asked for: a later run for the other architecture then
  # needs no second download.
  dpkg-deb --fsys-tarfile "$deb" | "${sudo_cmd[@]}" tar -x -C "$apt_dir" ./usr/bin/qemu-aarch64 ./usr/bin/qemu-arm \
    || die "qemu-user $version lacks qemu-aarch64 or qemu-arm"
  for q in qemu-aarch64 qemu-arm; do
    "${sudo_cmd[@]}" install -m 0755 "$apt_dir/usr/bin/$q" "$dir/$q"
    [[ -n "$(qemu_major "$dir/$q")" ]] || die "$dir/$q does not run on this machine"
  done
  echo "qemu-user $version from $codename-backports" | "${sudo_cmd[@]}" tee "$cross_root/qemu/VERSION" >/dev/null
  "${sudo_cmd[@]}" rm -rf "$apt_dir"
}

for arch in "${archs[@]}"; do
  make_sysroot "$arch"
done
ensure_qemu
