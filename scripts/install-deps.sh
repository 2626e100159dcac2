#!/usr/bin/env bash
# Installs every Debian package mixcast needs. Idempotent: when all packages are
# present it only runs dpkg-query and returns in well under a second.
# Usage: scripts/install-deps.sh   (run as root, or with sudo available)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
  libns3-dev ns3 libgsl-dev
  libboost-dev libspdlog-dev libfmt-dev
  iproute2 iptables
  python3-dev pybind11-dev python3-numpy python3-matplotlib python3-pytest python3-distributed
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/mixcast-apt.log 2>&1; then
  # A fresh machine may have stale package lists.
  "${sudo_cmd[@]}" apt-get update >>/tmp/mixcast-apt.log 2>&1
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/mixcast-apt.log 2>&1 \
    || { echo "install-deps: apt-get failed, see /tmp/mixcast-apt.log" >&2; tail -20 /tmp/mixcast-apt.log >&2; exit 1; }
fi
