#!/bin/sh
# Long fuzz runs for docs/fuzzing.md: each target for RUNS executions (default 10 million), one
# target at a time, from a build-tree copy of its seed corpus (the repository is not written).
# With JOBS=2 a target runs as two jobs of RUNS/2 each (at most 2 processes: the machine is
# shared). Logs, corpora and any crash inputs go to build/fuzz/long/<target>/.
#   fuzz/long_run.sh [target...]        (run from the source root after the fuzz preset build)
set -eu
RUNS=${RUNS:-10000000}
JOBS=${JOBS:-1}
BIN=build/fuzz/fuzz
OUT=build/fuzz/long
targets=${*:-"fuzz_msi_message fuzz_x86_mmio_decoder fuzz_mshv_message fuzz_whp_exit fuzz_ports fuzz_kernel_loader"}
for t in $targets; do
  dir=$OUT/$t
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp fuzz/corpus/$t/* "$dir/corpus/"
  start=$(date +%s)
  if [ "$JOBS" -gt 1 ]; then
    (cd "$dir" && "../../fuzz/$t" -runs=$((RUNS / JOBS)) -jobs="$JOBS" -workers="$JOBS" \
       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=artifacts/ corpus \
       > run.log 2>&1) || echo "$t: FAILED (see $dir)"
  else
    "$BIN/$t" -runs="$RUNS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$dir/corpus" > "$dir/run.log" 2>&1 || echo "$t: FAILED (see $dir)"
  fi
  end=$(date +%s)
  echo "$t: $((end - start)) s, corpus $(ls "$dir/corpus" | wc -l) files, artifacts $(ls "$dir/artifacts" | wc -l)"
done
