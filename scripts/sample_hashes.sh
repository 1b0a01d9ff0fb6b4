#!/usr/bin/env bash
# sha256 (first 16 hex) of samples.csv for each domain:decoder pair, 16 samples, seed 0: the check that a
# behaviour-preserving change keeps the samples. Two decodes at a time, one thread each.
#   scripts/sample_hashes.sh OUT_DIR [domain:decoder ...] [-- extra decode.py options]
set -euo pipefail
out=${1:?usage: scripts/sample_hashes.sh OUT_DIR [domain:decoder ...] [-- extra options]}; shift
pairs=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  pairs+=("$1"); shift
done
if [ ${#pairs[@]} -eq 0 ]; then
  pairs=(dna:pretrained dna:svdd_pm dna:svdd_mc dna:smc dna:best_of_n
         rna:pretrained rna:svdd_pm rna:best_of_n rna:svdd_r rna:smc
         molecule:pretrained molecule:svdd_pm molecule:svdd_mc molecule:dps molecule:best_of_n molecule:smc
         molecule:svdd_r image:pretrained image:svdd_pm)
fi
py=${PYTHON:-$(pwd)/.venv/bin/python}
run() {
  local domain=${1%%:*} decoder=${1##*:}
  OMP_NUM_THREADS=1 "$py" decode.py domain="$domain" decoder="$decoder" num_samples=16 seed=0 logger=none \
    output_dir="$out/$domain-$decoder" overwrite=true trainer.enable_progress_bar=false "${extra[@]}" \
    > "$out/$domain-$decoder.log" 2>&1 || { echo "$1 FAILED (see $out/$domain-$decoder.log)"; return; }
  echo "$1 $(sha256sum "$out/$domain-$decoder/samples.csv" | cut -c1-16)"
}
mkdir -p "$out"
export -f run; export out py; export extra_str="${extra[*]:-}"
i=0
for p in "${pairs[@]}"; do
  run "$p" &
  i=$((i + 1)); if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait
