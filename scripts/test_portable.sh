#!/usr/bin/env bash
# make test-portable: the tests whose assertions depend on float rounding (decoder contracts and their
# equivalences, dedup and batch-cap equality, the whole-block padding, agreement with diffusers), run under
# kernel choices that stand in for other processors, in one run. Each setting must pass:
#   ONEDNN_MAX_CPU_ISA=AVX2 / SSE41   oneDNN's convolutions and matmuls limited to older instruction sets
#   ATEN_CPU_CAPABILITY=default       ATen's own kernels without AVX2/AVX-512 vectorisation
#   OMP_NUM_THREADS=1 / 2             one or two intra-op threads (another split of each reduction)
set -uo pipefail
py=${PYTHON:-$(pwd)/.venv/bin/python}
tests=(tests/test_decoders.py tests/test_decoders_gaussian.py tests/test_distinct.py tests/test_scale.py
       tests/test_diffusers_agreement.py tests/test_gaussian_diffusion.py tests/test_masked_diffusion.py
       tests/test_beam.py tests/test_population_decoders.py)
settings=("ONEDNN_MAX_CPU_ISA=AVX2" "ONEDNN_MAX_CPU_ISA=SSE41" "ATEN_CPU_CAPABILITY=default" "OMP_NUM_THREADS=1"
          "OMP_NUM_THREADS=2")
failed=()
for setting in "${settings[@]}"; do
  echo "== $setting"
  # training converges the same way under any kernels; it is not a rounding check and takes most of the time
  if ! env "$setting" "$py" -m pytest -q -p no:cacheprovider "${tests[@]}" -k "not training_lowers_loss"; then
    failed+=("$setting")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-portable: FAILED under ${failed[*]}"; exit 1
fi
echo "test-portable: passed under all ${#settings[@]} settings (${settings[*]})"
