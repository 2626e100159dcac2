#!/usr/bin/env bash
# Checks a mixcast Debian package (cmake/packaging.cmake) built by cpack:
#   scripts/check-deb.sh DEB ARCH
# ARCH is the Debian architecture it must be for (amd64, arm64, armhf). Checked: the files
# (mixcastd, mixcast, the systemd unit, the sysusers.d file, the config, the docs), that the
# binaries are for ARCH, the control fields (Package, Architecture, Depends), the conffile, the
# unit (runs /usr/bin/mixcastd as user mixcast with /etc/mixcast/mixcastd.yaml), the sysusers
# line, and the maintainer scripts (present, executable, valid sh; postinst creates the user).
# Exit 0 when everything holds, 1 with one line per problem otherwise, 2 on bad usage.
set -uo pipefail

if (($# != 2)); then
  echo "usage: scripts/check-deb.sh DEB ARCH" >&2
  exit 2
fi
deb=$1 arch=$2
case "$arch" in
  amd64) machine='Advanced Micro Devices X86-64' ;;
  arm64) machine='AArch64' ;;
  armhf) machine='ARM' ;;
  *) echo "check-deb: unknown architecture '$arch' (amd64, arm64 or armhf)" >&2; exit 2 ;;
esac
if [[ ! -f "$deb" ]]; then
  echo "check-deb: no such package: $deb" >&2
  exit 2
fi

problems=0
problem() {
  echo "check-deb: $deb: $*"
  problems=$((problems + 1))
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! dpkg-deb -x "$deb" "$work/root" || ! dpkg-deb -e "$deb" "$work/control"; then
  echo "check-deb: $deb: dpkg-deb cannot unpack it"
  exit 1
fi

# Files.
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/mixcastd ./usr/bin/mixcast ./usr/lib/systemd/system/mixcastd.service \
         ./usr/lib/sysusers.d/mixcast.conf ./etc/mixcast/mixcastd.yaml \
         ./usr/share/doc/mixcast/README.md ./usr/share/doc/mixcast/real-backend.md; do
  grep -q " $f\$" <<<"$contents" || problem "lacks $f"
done
for f in usr/bin/mixcastd usr/bin/mixcast; do
  [[ -x "$work/root/$f" ]] || { problem "$f is not executable"; continue; }
  LC_ALL=C readelf -h "$work/root/$f" 2>/dev/null | grep -q "Machine: *$machine\$" ||
    problem "$f is not a $arch binary ($(LC_ALL=C readelf -h "$work/root/$f" 2>/dev/null | sed -n 's/^ *Machine: *//p'))"
done
if [[ "$arch" == amd64 && "$(dpkg --print-architecture 2>/dev/null)" == amd64 ]]; then
  # Native: the binaries run here.
  "$work/root/usr/bin/mixcast" --help 2>&1 | grep -q 'control a running mixcastd' || problem "usr/bin/mixcast --help does not run"
  "$work/root/usr/bin/mixcastd" --help >/dev/null 2>&1 || problem "usr/bin/mixcastd --help does not run"
fi

# Control fields.
[[ "$(dpkg-deb -f "$deb" Package)" == mixcast ]] || problem "Package is not 'mixcast'"
[[ "$(dpkg-deb -f "$deb" Architecture)" == "$arch" ]] || problem "Architecture is '$(dpkg-deb -f "$deb" Architecture)', not $arch"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libstdc++6 libyaml-cpp; do
  grep -q "$lib" <<<"$depends" || problem "Depends ('$depends') lacks $lib"
done
[[ "$(cat "$work/control/conffiles" 2>/dev/null)" == /etc/mixcast/mixcastd.yaml ]] ||
  problem "conffiles must be exactly /etc/mixcast/mixcastd.yaml"

# The unit and the system user.
unit=$work/root/usr/lib/systemd/system/mixcastd.service
if [[ -f "$unit" ]]; then
  grep -qx 'ExecStart=/usr/bin/mixcastd --config /etc/mixcast/mixcastd.yaml' "$unit" ||
    problem "the unit's ExecStart is not /usr/bin/mixcastd --config /etc/mixcast/mixcastd.yaml"
  grep -qx 'User=mixcast' "$unit" || problem "the unit does not run as User=mixcast"
  grep -q '^Restart=' "$unit" || problem "the unit has no Restart="
  grep -q '^WantedBy=multi-user.target' "$unit" || problem "the unit is not WantedBy=multi-user.target"
fi
sysusers=$work/root/usr/lib/sysusers.d/mixcast.conf
if [[ -f "$sysusers" ]]; then
  grep -Eq '^u +mixcast ' "$sysusers" || problem "sysusers.d/mixcast.conf does not declare the user mixcast"
fi
cmp -s "$work/root/etc/mixcast/mixcastd.yaml" "$(dirname "$0")/../real/mixcastd.example.yaml" ||
  problem "etc/mixcast/mixcastd.yaml is not real/mixcastd.example.yaml"

# Maintainer scripts.
for s in postinst prerm postrm; do
  f=$work/control/$s
  [[ -f "$f" ]] || { problem "has no $s"; continue; }
  [[ -x "$f" ]] || problem "$s is not executable"
  sh -n "$f" 2>/dev/null || problem "$s is not valid sh"
done
if [[ -f "$work/control/postinst" ]]; then
  grep -q 'systemd-sysusers /usr/lib/sysusers.d/mixcast.conf' "$work/control/postinst" ||
    problem "postinst does not create the user from sysusers.d/mixcast.conf"
  grep -q 'daemon-reload' "$work/control/postinst" || problem "postinst does not reload systemd"
  grep -Eq 'systemctl (enable|start) ' "$work/control/postinst" &&
    problem "postinst enables or starts the service (the config must be written first)"
fi

if ((problems > 0)); then
  echo "check-deb: $deb: $problems problems"
  exit 1
fi
echo "check-deb: $deb ($(stat -c %s "$deb") bytes, $arch) holds mixcastd, mixcast, the unit, sysusers.d, the config and the maintainer scripts"
