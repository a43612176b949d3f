#!/usr/bin/env bash
# Fuzz the decoders of outside input (cargo-fuzz + libFuzzer): builds the fuzz
# crates schemas/fuzz and collector/fuzz, then runs every target for FUZZ_SECS seconds each from a
# working corpus under target/fuzz/ seeded with the checked-in one (new inputs
# stay out of git). Exits non-zero on any finding and prints the input's path.
#   ./deploy/local/fuzz.sh                         # every target, 30 s each
#   FUZZ_SECS=300 ./deploy/local/fuzz.sh json_batch  # one target, 5 minutes
# Installs cargo-fuzz once (cached in ~/.cargo/bin). The stable toolchain
# runs it with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only -Z flags).
# Build outputs go to AGENTOPS_FUZZ_TARGET_DIR (default outside the checkout,
# ~/.cache/agentops/fuzz-target, so a fresh clone in CI reuses the last build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# The fuzz targets: one file each in <crate>/fuzz/fuzz_targets/, one [[bin]]
# each in that fuzz crate's Cargo.toml. Add new targets (and crates) here.
FUZZ_DIRS=("$ROOT/schemas/fuzz" "$ROOT/collector/fuzz")
TARGETS=(json_batch otlp otlp_logs otlp_metrics claude_line codex_line)
# The fuzz crate holding target $1.
fuzz_dir_of() {
  local d
  for d in "${FUZZ_DIRS[@]}"; do
    [ -f "$d/fuzz_targets/$1.rs" ] && { echo "$d"; return 0; }
  done
  return 1
}
FUZZ_SECS=${FUZZ_SECS:-30}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}    # libFuzzer -rss_limit_mb (and the malloc limit)
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}    # seconds one input may take (-timeout)
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-16384} # bytes per generated input (-max_len)
TARGET_DIR=${AGENTOPS_FUZZ_TARGET_DIR:-$HOME/.cache/agentops/fuzz-target}
WORK="$ROOT/target/fuzz"

if [ $# -gt 0 ]; then
  for t in "$@"; do
    fuzz_dir_of "$t" >/dev/null || die "no fuzz target $t (in ${FUZZ_DIRS[*]#$ROOT/})"
  done
  TARGETS=("$@")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz from crates.io (about a minute, once; cached in ~/.cargo/bin)"
  cargo install cargo-fuzz --locked >&2 || die "cargo install cargo-fuzz failed"
fi

export RUSTC_BOOTSTRAP=1
# The same dependency versions as the workspace (serde_json's parser is part
# of what is under test): start from the root lock file; cargo prunes it and
# adds libfuzzer-sys. Not checked in (each fuzz crate's .gitignore).
# Release build with debug assertions: overflow checks turn silent
# wrap-arounds into findings.
start=$(date +%s)
for FUZZ_DIR in "${FUZZ_DIRS[@]}"; do
  wanted=0
  for t in "${TARGETS[@]}"; do [ "$(fuzz_dir_of "$t")" = "$FUZZ_DIR" ] && wanted=1; done
  [ "$wanted" = 1 ] || continue
  if [ ! -f "$FUZZ_DIR/Cargo.lock" ] || [ "$ROOT/Cargo.lock" -nt "$FUZZ_DIR/Cargo.lock" ]; then
    cp "$ROOT/Cargo.lock" "$FUZZ_DIR/Cargo.lock"
  fi
  log "building the fuzz targets of ${FUZZ_DIR#$ROOT/} in $TARGET_DIR"
  cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" --debug-assertions >&2 \
    || die "cargo fuzz build (${FUZZ_DIR#$ROOT/}) failed"
done
log "fuzz build took $(($(date +%s) - start)) s"

failed=()
for t in "${TARGETS[@]}"; do
  FUZZ_DIR=$(fuzz_dir_of "$t")
  FUZZ_BUILD=(--fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" --debug-assertions)
  corpus="$WORK/corpus/$t"
  artifacts="$WORK/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  # Seed with the checked-in corpus; inputs found earlier stay (locally).
  cp -n "$FUZZ_DIR/corpus/$t/"* "$corpus/" 2>/dev/null || true
  args=(-max_total_time="$FUZZ_SECS" -rss_limit_mb="$FUZZ_RSS_MB" -timeout="$FUZZ_TIMEOUT"
    -max_len="$FUZZ_MAX_LEN" -artifact_prefix="$artifacts/" -print_final_stats=1)
  [ -f "$FUZZ_DIR/dict/$t.dict" ] && args+=(-dict="$FUZZ_DIR/dict/$t.dict")
  before=$(ls "$artifacts" | wc -l)
  log "fuzzing $t for $FUZZ_SECS s (corpus $corpus)"
  if cargo fuzz run "${FUZZ_BUILD[@]}" "$t" "$corpus" -- "${args[@]}" >"$WORK/$t.log" 2>&1; then
    grep -E '^#[0-9]+\s+DONE' "$WORK/$t.log" | tail -n1 | sed "s/^/[$t] /" >&2 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$WORK/$t.log" \
      | sed "s/^/[$t] /" >&2 || true
  else
    failed+=("$t")
    tail -n 60 "$WORK/$t.log" >&2
    log "fuzz target $t FAILED (full log: $WORK/$t.log)"
    if [ "$(ls "$artifacts" | wc -l)" -gt "$before" ]; then
      for f in $(ls -t "$artifacts" | head -n $(($(ls "$artifacts" | wc -l) - before))); do
        log "crashing input: $artifacts/$f"
        log "  replay: RUSTC_BOOTSTRAP=1 cargo fuzz run ${FUZZ_BUILD[*]} $t $artifacts/$f"
      done
    fi
  fi
done

[ ${#failed[@]} -eq 0 ] || die "fuzzing found problems in: ${failed[*]}"
log "fuzzing: no findings (${TARGETS[*]}, $FUZZ_SECS s each)"
