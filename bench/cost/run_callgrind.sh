#!/usr/bin/env bash
# Runs virt-cost under callgrind and prints instructions per operation (library, raw twin, and
# the difference: what the library adds in user space); writes them into bench-report.json.
#
#   bench/cost/run_callgrind.sh [BUILD_DIR]     (default build/release; use a Release build)
#
# BUILD_DIR/bench-instruction-counts.json gets {"instruction_counts": {...}}; when jq is there,
# the same object is merged into BUILD_DIR/bench-report.json when that is absent (created) or a
# JSON object (its other keys kept); virt-bench's report, a list of rows, is left alone.
set -euo pipefail

src_dir=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=${1:-$src_dir/build/release}
[[ -f $build_dir/CMakeCache.txt ]] || { echo "no CMake build in $build_dir" >&2; exit 1; }
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
[[ $build_type == Release ]] || echo "warning: $build_dir is a '$build_type' build; counts are only meaningful for Release" >&2
command -v valgrind > /dev/null || { echo "valgrind is not installed" >&2; exit 1; }

cmake --build "$build_dir" --target virt-cost > /dev/null
bin=$build_dir/bench/cost/virt-cost
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" > "$work/sections" \
  2> "$work/valgrind.log" || { cat "$work/valgrind.log" >&2; exit 1; }

# Dump N is the Nth "section" line: its "totals:" (or "summary:") is that loop's instruction count.
: > "$work/counts"
n=0
while read -r _ name ops; do
  n=$((n + 1))
  f=$work/cg.out.$n
  [[ -f $f ]] || { echo "callgrind dump $f missing (is virt-cost built with callgrind.h?)" >&2; exit 1; }
  ir=$(awk '/^(totals|summary):/ { print $2; exit }' "$f")
  echo "$name $ops $ir" >> "$work/counts"
done < "$work/sections"

# Pair NAME.library with NAME.raw; per-op figures with one decimal.
awk -v json="$work/json" '
  { split($1, p, "."); op = p[1]; kind = p[2]; per[op, kind] = $3 / $2;
    if (!(op in seen)) { seen[op] = 1; order[++n] = op } }
  END {
    printf "| operation | library instr/op | raw instr/op | library beyond raw |\n"
    printf "| --- | ---: | ---: | ---: |\n"
    printf "{\"instruction_counts\": {\"unit\": \"instructions per operation (callgrind Ir, all threads)\", \"rows\": [" > json
    for (i = 1; i <= n; ++i) {
      op = order[i]; lib = per[op, "library"]
      has_raw = ((op, "raw") in per)
      if (has_raw) { raw = per[op, "raw"]; printf "| %s | %.1f | %.1f | %.1f |\n", op, lib, raw, lib - raw }
      else printf "| %s | %.1f | - | - |\n", op, lib
      printf "%s{\"name\": \"%s\", \"library\": %.1f", (i > 1 ? ", " : ""), op, lib > json
      if (has_raw) printf ", \"raw\": %.1f, \"library_beyond_raw\": %.1f", raw, lib - raw > json
      printf "}" > json
    }
    printf "]}}\n" > json
  }' "$work/counts"

cp "$work/json" "$build_dir/bench-instruction-counts.json"
report=$build_dir/bench-report.json
if command -v jq > /dev/null; then
  if [[ ! -f $report ]]; then
    jq . "$work/json" > "$report"
    echo "wrote instruction_counts into $report"
  elif [[ $(jq -r 'type' "$report") == object ]]; then
    jq --slurpfile c "$work/json" '. + $c[0]' "$report" > "$work/report"
    cp "$work/report" "$report"
    echo "wrote instruction_counts into $report"
  else
    # virt-bench's report is a list of rows: leave it as it is rather than change its shape.
    echo "$report is not a JSON object (virt-bench's row list): counts are in" \
      "$build_dir/bench-instruction-counts.json only" >&2
  fi
else
  echo "jq not found: counts are in $build_dir/bench-instruction-counts.json only" >&2
fi
