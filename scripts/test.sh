#!/usr/bin/env bash
# README command 2: the whole test suite.
#   1. release build (preset 'default') + ctest
#   1b. pytest of the analysis module and scripts against that build (/usr/bin/python3)
#   1c. a fixed-seed random exploration on the model engine (MIXCAST_EXPLORE_RUNS, default 200)
#   2. ASan + UBSan build (preset 'asan': core, sim and their tests) + ctest
#   2b. the amd64 .deb (preset 'deb', cpack) and a check of its contents (scripts/check-deb.sh)
#   3. libFuzzer build (preset 'fuzz', clang++-14) + a short fuzz run of the wire decoder
#      (MIXCAST_FUZZ_SECONDS, default 30) on a scratch copy of tests/fuzz/corpus
#   4. ARM: scripts/install-cross-deps.sh, cross build for aarch64 (preset 'aarch64': mixcastd,
#      mixcast, core and runtime tests), ctest under qemu-aarch64, the arm64 .deb (cpack) and a
#      check of its contents (docs/deploy-arm.md); then the same build and tests for armhf
#      under qemu-arm
# Every step runs even when an earlier one failed; a summary comes last and the exit status
# is non-zero if anything failed. Build output goes to build/*.log and is shown on failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

results=()
failed=0

# quiet_build NAME CMD...: runs CMD with its output in build/NAME.log; shows the tail on failure.
quiet_build() {
  local log="build/$1.log"
  shift
  mkdir -p build
  echo "test.sh: $* (log in $log)"
  if "$@" >"$log" 2>&1; then
    return 0
  fi
  tail -n 80 "$log"
  echo "test.sh: failed: $* (full log: $log)"
  return 1
}

record() {  # record STATUS TEXT
  results+=("$(printf '%-8s %s' "$1" "$2")")
  if [[ "$1" == FAILED ]]; then failed=1; fi
}

step_default() {
  quiet_build configure-default cmake --preset default || return 1
  quiet_build build-default cmake --build --preset default || return 1
  ctest --preset default -j2
}

# The analysis module and scripts (pytest) against the release build: the module must match
# mixcast-sim of the same build. Debian's interpreter, the one with numpy/matplotlib/distributed.
step_analysis() {
  local python=/usr/bin/python3
  if [[ ! -x "$python" ]]; then
    echo "test.sh: $python is missing (python3, python3-numpy, python3-matplotlib, python3-pytest, python3-distributed)"
    return 1
  fi
  if [[ ! -f build/release/python/mixcast/__init__.py ]]; then
    echo "test.sh: the mixcast Python module is missing from build/release (MIXCAST_WITH_PYTHON, pybind11-dev; see build/build-default.log)"
    return 1
  fi
  MIXCAST_BUILD_DIR=build/release PYTHONDONTWRITEBYTECODE=1 "$python" -m pytest analysis/tests -q
}

# A fixed-seed random exploration on the model engine (docs/invariants.md): the same 200 cases
# every run, all of which hold every invariant on the current code, so a change that breaks one
# fails here. Failing cases, shrunk, are in build/explore-ci/failures and replay with
# 'mixcast-sim run'. Other seeds still find failures (about 1 case in 100 on the model engine,
# more on ns-3; see the robustness issue): scripts/explore-bench.sh runs the long exploration.
explore_runs=${MIXCAST_EXPLORE_RUNS:-200}
step_explore() {
  local sim=build/release/sim/mixcast-sim
  if [[ ! -x "$sim" ]]; then
    echo "test.sh: $sim is missing (see build/build-default.log)"
    return 1
  fi
  rm -rf build/explore-ci
  "$sim" explore --engine model --runs "$explore_runs" --seed 17 --jobs 2 --out build/explore-ci -q
}

step_asan() {
  quiet_build configure-asan cmake --preset asan || return 1
  quiet_build build-asan cmake --build --preset asan || return 1
  # ModelEngineMixedLarge.* (thousands of simulated nodes) take minutes under ASan; they run in
  # the release build above, the same code paths run here at smaller sizes.
  # No retries: a flaky test is a bug to find. (The testbed's islands gate once let measuring
  # start while claims still changed; it now waits for the same hash over several polls.)
  ctest --preset asan -j2 -E '^ModelEngineMixedLarge\.'
}

fuzz_seconds=${MIXCAST_FUZZ_SECONDS:-30}
fuzz_bin=build/fuzz/tests/fuzz/fuzz_wire_decode
step_fuzz() {
  quiet_build configure-fuzz cmake --preset fuzz || return 1
  quiet_build build-fuzz cmake --build --preset fuzz || return 1
  if [[ ! -x "$fuzz_bin" ]]; then
    echo "test.sh: the fuzz build succeeded but $fuzz_bin is missing"
    return 1
  fi
  local corpus=build/fuzz-corpus-work artifacts=build/fuzz-artifacts/
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts"
  if compgen -G "tests/fuzz/corpus/*" >/dev/null; then
    cp -r tests/fuzz/corpus/* "$corpus"/
  fi
  echo "test.sh: fuzzing the wire decoder for ${fuzz_seconds} s (log in build/fuzz-run.log)"
  if "$fuzz_bin" -max_total_time="$fuzz_seconds" -artifact_prefix="$artifacts" "$corpus" >build/fuzz-run.log 2>&1; then
    grep -E '^Done [0-9]+ runs' build/fuzz-run.log || tail -n 1 build/fuzz-run.log
    return 0
  fi
  tail -n 60 build/fuzz-run.log
  echo "test.sh: the fuzzer found a problem; inputs are in $artifacts (full log: build/fuzz-run.log)"
  return 1
}

# The aarch64 cross build: the unit tests run under qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR
# of cmake/toolchains/aarch64-linux-gnu.cmake), then the arm64 .deb is built and checked. The
# 32-bit armhf build and its tests under qemu-arm follow (step_armhf).
step_arm() {
  quiet_build cross-deps bash scripts/install-cross-deps.sh arm64 || return 1
  quiet_build configure-aarch64 cmake --preset aarch64 || return 1
  quiet_build build-aarch64 cmake --build --preset aarch64 || return 1
  local f
  for f in build/aarch64/real/mixcastd build/aarch64/real/mixcast \
           build/aarch64/tests/mixcast_core_tests build/aarch64/tests/mixcast_runtime_tests; do
    if ! LC_ALL=C readelf -h "$f" 2>/dev/null | grep -q 'Machine: *AArch64'; then
      echo "test.sh: $f is missing or not an AArch64 binary"
      return 1
    fi
  done
  # Both suites must be registered: a suite whose binary is missing shows up only as
  # <suite>_NOT_BUILT, which the test preset excludes.
  local listing suite n
  listing=$(ctest --preset aarch64 -N -V)
  for suite in mixcast_core_tests mixcast_runtime_tests; do
    n=$(grep -c "Test command: .*/tests/$suite\"" <<<"$listing" || true)
    if ((n == 0)); then
      echo "test.sh: ctest in build/aarch64 lists no test of $suite"
      return 1
    fi
    echo "test.sh: $suite: $n tests registered"
  done
  ctest --preset aarch64 -j2 -E "_NOT_BUILT\$" || return 1

  quiet_build cpack-aarch64 cpack --config build/aarch64/CPackConfig.cmake -B build/aarch64/packages || return 1
  local deb
  deb=$(ls build/aarch64/packages/mixcast_*_arm64.deb 2>/dev/null | head -n 1)
  if [[ -z "$deb" ]]; then
    echo "test.sh: cpack wrote no mixcast_*_arm64.deb into build/aarch64/packages"
    return 1
  fi
  bash scripts/check-deb.sh "$deb" arm64
}

# The native (amd64) package: preset 'deb' (CMAKE_INSTALL_PREFIX=/usr), cpack, and the same
# content check as the ARM packages (scripts/check-deb.sh: binaries, unit, sysusers, config,
# maintainer scripts), here with the binaries run once.
step_deb() {
  quiet_build configure-deb cmake --preset deb || return 1
  quiet_build build-deb cmake --build --preset deb || return 1
  rm -rf build/pkg/packages
  quiet_build cpack-deb cpack --config build/pkg/CPackConfig.cmake -B build/pkg/packages || return 1
  local deb
  deb=$(ls build/pkg/packages/mixcast_*_amd64.deb 2>/dev/null | head -n 1)
  if [[ -z "$deb" ]]; then
    echo "test.sh: cpack wrote no mixcast_*_amd64.deb into build/pkg/packages"
    return 1
  fi
  bash scripts/check-deb.sh "$deb" amd64
}

# 32-bit ARM: catches what only a 32-bit size_t or a missing 128-bit integer breaks.
step_armhf() {
  quiet_build cross-deps-armhf bash scripts/install-cross-deps.sh armhf || return 1
  quiet_build configure-armhf cmake --preset armhf || return 1
  quiet_build build-armhf cmake --build --preset armhf || return 1
  ctest --preset armhf -j2 -E "_NOT_BUILT\$"
}

if ! bash scripts/install-deps.sh; then
  echo "test.sh: installing dependencies failed"
  exit 1
fi

echo "== release build + tests (build/release)"
if step_default; then record ok "release build + ctest (build/release)"; else record FAILED "release build + ctest (build/release)"; fi

echo "== analysis module + scripts: pytest (build/release)"
if step_analysis; then record ok "analysis pytest (build/release)"; else record FAILED "analysis pytest (build/release)"; fi

echo "== random exploration, model engine, seed 17 (build/explore-ci)"
if step_explore; then record ok "explore: $explore_runs model cases, seed 17 (build/explore-ci)"; else record FAILED "explore: $explore_runs model cases, seed 17 (build/explore-ci)"; fi

echo "== ASan + UBSan build + tests (build/asan)"
if step_asan; then record ok "ASan+UBSan build + ctest (build/asan)"; else record FAILED "ASan+UBSan build + ctest (build/asan)"; fi

echo "== amd64 .deb (build/pkg)"
if [[ "$(dpkg --print-architecture 2>/dev/null)" != amd64 ]]; then
  echo "test.sh: skipped: this host is not amd64"
  record skipped "amd64 .deb: host is not amd64"
elif step_deb; then
  record ok "amd64 .deb: cpack + contents (build/pkg)"
else
  record FAILED "amd64 .deb: cpack + contents (build/pkg)"
fi

echo "== fuzzing (build/fuzz)"
if ! command -v clang++-14 >/dev/null 2>&1; then
  echo "test.sh: skipped: clang++-14 not found"
  record skipped "fuzz: clang++-14 not found"
elif step_fuzz; then
  record ok "fuzz build + ${fuzz_seconds} s run of fuzz_wire_decode"
else
  record FAILED "fuzz build + ${fuzz_seconds} s run of fuzz_wire_decode"
fi

echo "== ARM cross build (build/aarch64)"
if step_arm; then
  record ok "aarch64 cross build + ctest under qemu-aarch64 + arm64 .deb (build/aarch64)"
else
  record FAILED "aarch64 cross build + ctest under qemu-aarch64 + arm64 .deb (build/aarch64)"
fi

echo "== ARM 32-bit cross build (build/armhf)"
if step_armhf; then
  record ok "armhf cross build + ctest under qemu-arm (build/armhf)"
else
  record FAILED "armhf cross build + ctest under qemu-arm (build/armhf)"
fi

echo
echo "== summary"
for r in "${results[@]}"; do echo "  $r"; done
if ((failed)); then
  echo "test.sh: FAILED"
  exit 1
fi
echo "test.sh: all steps passed"
