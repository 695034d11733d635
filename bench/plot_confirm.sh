#!/bin/sh
# Draws the layer-1 confirmation figure (paper Fig. 7) from the JSON of two runs of
# `mchain-bench confirm --json`, one per mode, for docs/benchmarks.md:
#
#   bench/plot_confirm.sh INORDER.json CONCURRENT.json [OUT.png [TITLE]]
#
# OUT.png defaults to docs/img/confirm.png; TITLE is added to the figure's title.
# Medians with a bar up to the p90; the limit (cold rows) and 1.5 x the limit, the goal at 200
# packages. Needs gnuplot (gnuplot-nox) and jq; for the docs only, not for CI.
set -eu

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "usage: $0 INORDER.json CONCURRENT.json [OUT.png [TITLE]]" >&2
  exit 2
fi
inorder=$1
concurrent=$2
out=${3:-$(dirname "$0")/../docs/img/confirm.png}
title="Layer-1 confirmation, 3 node processes on one host (paper Fig. 7)${4:+, $4}"
for tool in gnuplot jq; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 1; }
done

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

# One whitespace-separated file per curve: packages, median, p90 (or the limit).
series() {
  jq -er --arg cache "$2" \
    '.[] | select(.cache == $cache) | "\(.packages) \(.median_ms) \(.p90_ms)"' "$1" >"$data/$3"
}
series "$inorder" cold inorder-cold
series "$inorder" warm inorder-warm
series "$concurrent" cold concurrent-cold
series "$concurrent" warm concurrent-warm
jq -er '.[] | select(.cache == "cold") | "\(.packages) \(.limit_ms)"' "$concurrent" >"$data/limit"

gnuplot <<EOF
set terminal pngcairo size 900,600 font "sans,11" noenhanced
set output "$out"
set title "$title"
set xlabel "packages per block (2,960 bytes each)"
set ylabel "proposal to last confirmation (ms)"
set key outside below center horizontal maxcols 3 width 1
set grid
set xrange [10:210]
set yrange [0:*]
set xtics 20
plot "$data/concurrent-cold" using 1:2:2:3 with yerrorlines lw 2 lc rgb "#c0392b" \
       title "concurrent, cold", \
     "$data/inorder-cold" using 1:2:2:3 with yerrorlines lw 2 lc rgb "#e67e22" \
       title "in order, cold", \
     "$data/concurrent-warm" using 1:2:2:3 with yerrorlines lw 2 lc rgb "#2471a3" \
       title "concurrent, warm", \
     "$data/inorder-warm" using 1:2:2:3 with yerrorlines lw 2 lc rgb "#17a589" \
       title "in order, warm", \
     "$data/limit" using 1:2 with lines dt 2 lw 2 lc rgb "#555555" \
       title "limit (cold): 9N P-256 verifies on all cores", \
     "$data/limit" using 1:(1.5*\$2) with lines dt 3 lw 1 lc rgb "#555555" \
       title "1.5 x limit"
EOF
echo "wrote $out"
