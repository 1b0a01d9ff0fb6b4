#!/usr/bin/env bash
# sha256 (first 16 hex) of samples.csv for each domain:decoder pair, 16 samples, seed 0: the check that a
# behaviour-preserving change keeps the samples. Two decodes at a time, one thread each.
#   scripts/sample_hashes.sh OUT_DIR [domain:decoder[:options] ...] [-- extra decode.py options]
# A pair's third field holds decode.py options of that pair alone (space-separated); `starts` stands for the
# decodes that begin from seeds or refine (inpainting from one light chain and from the two shipped heavy
# chains, refinement), beside the 19 default pairs.
set -euo pipefail
out=${1:?usage: scripts/sample_hashes.sh OUT_DIR [domain:decoder ...] [-- extra options]}; shift
pairs=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  pairs+=("$1"); shift
done
seeds=svdd_lightning/resources/antibody_light_seeds.fasta
starts=("antibody:svdd_pm:init.fasta=$seeds init.mask=header"
        "antibody:svdd_r:init.fasta=$seeds init.mask=header decoder.resample_fraction=0.25"
        "antibody:smc:init.fasta=$seeds init.mask=header decoder.num_candidates=2"
        "antibody:best_of_n:init.fasta=$seeds init.mask=0.2"
        "antibody:svdd_r:decoder.resample_fraction=0.25"
        "antibody:smc:decoder.num_candidates=2 decoder.alpha=0.1"
        "antibody:svdd_pm:init.fasta=$seeds init.mask=header decoder.refine_rounds=2"
        "dna:svdd_pm:decoder.refine_rounds=1 decoder.refine_fraction=0.2"
        "molecule:beam:decoder.refine_rounds=1")
if [ "${pairs[0]:-}" = "starts" ]; then pairs=("${starts[@]}"); fi
if [ ${#pairs[@]} -eq 0 ]; then
  pairs=(dna:pretrained dna:svdd_pm dna:svdd_mc dna:smc dna:best_of_n
         rna:pretrained rna:svdd_pm rna:best_of_n rna:svdd_r rna:smc
         molecule:pretrained molecule:svdd_pm molecule:svdd_mc molecule:dps molecule:best_of_n molecule:smc
         molecule:svdd_r image:pretrained image:svdd_pm)
fi
py=${PYTHON:-$(pwd)/.venv/bin/python}
run() {
  local domain decoder options label
  IFS=: read -r domain decoder options <<< "$1"
  label="$domain-$decoder${options:+-$(printf %s "$options" | sha256sum | cut -c1-8)}"
  # shellcheck disable=SC2086  # a pair's options are words
  OMP_NUM_THREADS=1 "$py" decode.py domain="$domain" decoder="$decoder" num_samples=16 seed=0 logger=none \
    output_dir="$out/$label" overwrite=true trainer.enable_progress_bar=false $options "${extra[@]}" \
    > "$out/$label.log" 2>&1 || { echo "$1 FAILED (see $out/$label.log)"; return; }
  echo "$1 $(sha256sum "$out/$label/samples.csv" | cut -c1-16)"
}
mkdir -p "$out"
export -f run; export out py; export extra_str="${extra[*]:-}"
i=0
for p in "${pairs[@]}"; do
  run "$p" &
  i=$((i + 1)); if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait
