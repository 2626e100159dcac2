#!/usr/bin/env bash
# scripts/check-deb.sh must reject what is not a complete mixcast package: a package with only
# the binaries (no unit, no sysusers, no config, no maintainer scripts) fails naming each missing
# piece, and bad usage exits 2. (The real packages are built and checked by scripts/test.sh.)
set -uo pipefail
src=$1
check=$src/scripts/check-deb.sh
if ! command -v dpkg-deb >/dev/null; then
  echo "skipped: dpkg-deb is not installed"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$work/pkg/DEBIAN" "$work/pkg/usr/bin"
printf 'Package: mixcast\nVersion: 0.0.1\nArchitecture: amd64\nMaintainer: t <t@t.invalid>\nDescription: t\n' \
  >"$work/pkg/DEBIAN/control"
cp /bin/true "$work/pkg/usr/bin/mixcastd"
cp /bin/true "$work/pkg/usr/bin/mixcast"
dpkg-deb --root-owner-group --build "$work/pkg" "$work/bad.deb" >/dev/null || fail "dpkg-deb --build"

out=$(bash "$check" "$work/bad.deb" amd64 2>&1)
code=$?
[[ $code == 1 ]] || fail "an incomplete package exited $code, not 1:\n$out"
for missing in mixcastd.service sysusers.d/mixcast.conf etc/mixcast/mixcastd.yaml "has no postinst" conffiles Depends; do
  grep -qF -- "$missing" <<<"$out" || fail "the report does not name '$missing':\n$out"
done
out=$(bash "$check" "$work/bad.deb" arm64 2>&1)
grep -qF "Architecture is 'amd64', not arm64" <<<"$out" || fail "a wrong architecture is not reported:\n$out"
grep -qF "usr/bin/mixcastd is not a arm64 binary" <<<"$out" || fail "amd64 binaries pass as arm64:\n$out"

bash "$check" >/dev/null 2>&1; [[ $? == 2 ]] || fail "no arguments: exit must be 2"
bash "$check" "$work/bad.deb" sparc >/dev/null 2>&1; [[ $? == 2 ]] || fail "unknown architecture: exit must be 2"
bash "$check" "$work/none.deb" amd64 >/dev/null 2>&1; [[ $? == 2 ]] || fail "missing package: exit must be 2"
echo "ok: check-deb.sh rejects incomplete packages, wrong architectures and bad usage"
