#!/usr/bin/env bash
# README command 2: the whole test suite.
#   1. release build (preset 'default') + ctest
#   2. ASan + UBSan build (preset 'asan': core, sim and their tests) + ctest
#   3. libFuzzer build (preset 'fuzz', clang++-14) + a short fuzz run of the wire decoder
#      (MIXCAST_FUZZ_SECONDS, default 30) on a scratch copy of tests/fuzz/corpus
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

step_asan() {
  quiet_build configure-asan cmake --preset asan || return 1
  quiet_build build-asan cmake --build --preset asan || return 1
  # ModelEngineMixedLarge.* (thousands of simulated nodes) take minutes under ASan; they run in
  # the release build above, the same code paths run here at smaller sizes.
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

if ! bash scripts/install-deps.sh; then
  echo "test.sh: installing dependencies failed"
  exit 1
fi

echo "== release build + tests (build/release)"
if step_default; then record ok "release build + ctest (build/release)"; else record FAILED "release build + ctest (build/release)"; fi

echo "== ASan + UBSan build + tests (build/asan)"
if step_asan; then record ok "ASan+UBSan build + ctest (build/asan)"; else record FAILED "ASan+UBSan build + ctest (build/asan)"; fi

echo "== fuzzing (build/fuzz)"
if ! command -v clang++-14 >/dev/null 2>&1; then
  echo "test.sh: skipped: clang++-14 not found"
  record skipped "fuzz: clang++-14 not found"
elif step_fuzz; then
  record ok "fuzz build + ${fuzz_seconds} s run of fuzz_wire_decode"
else
  record FAILED "fuzz build + ${fuzz_seconds} s run of fuzz_wire_decode"
fi

echo
echo "== summary"
for r in "${results[@]}"; do echo "  $r"; done
if ((failed)); then
  echo "test.sh: FAILED"
  exit 1
fi
echo "test.sh: all steps passed"
