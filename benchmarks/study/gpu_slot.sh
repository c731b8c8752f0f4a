#!/usr/bin/env bash
# The next cells of the study queue on a lent GPU machine, within one short slot (issue 15).
#
# Prepared, NOT yet run on a GPU (no device was lent to the session that wrote it). The CPU
# path never waits for it: cells are independent and a finished cell is just a folder.
#
# Here, before the slot (needs network for pip):
#   1. pick the dataset of the next cells (`python -m benchmarks.study.run --list | grep todo`)
#      and stage its data and features inside the checkout (they travel; carry holds 64 MiB,
#      so one dataset's features per slot: Sports' are 36 MB):
#        mkdir -p shared/data && cp -r ../shared/data/amazon-sports shared/data/
#      and keep .cache/features/sports_minilm_pca (built by any Sports feature run here);
#   2. wheels the device image lacks (it has jax 0.11, flax, optax, orbax; not grain,
#      ml-collections, tensorboardX), for its Python 3.12:
#        echo /.whl/ >> .git/info/exclude
#        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation cp --platform manylinux_2_28_x86_64 -d .whl \
#          grain ml-collections tensorboardX array-record
#   3. run this script through the device tool with carry [".cache/features/sports_minilm_pca",
#      ".whl"] and timeout_s 580, e.g. `bash benchmarks/study/gpu_slot.sh 540 sports/`.
# After the slot: `tar xzf cells.tar.gz` in the repository root; the CPU runner then sees
# those cells as finished (results.json present) and goes on with the next ones.
#
# Arguments: seconds of training budget (default 540), and a cell-name filter for the
# runner's --only (default "": any cell; give the staged dataset, e.g. "sports/"). Cells that
# do not finish in time are left out of the archive (they would resume on the CPU from
# scratch, their workdir stays on the device).
set -uo pipefail
budget="${1:-540}"
only="${2:-}"
out="${OUT:-/tmp/out}"
mkdir -p "$out"
python3 -m pip install -q --no-deps --no-index .whl/*.whl 2>&1 | tail -2
python3 -m pip install -q --no-deps -e . 2>&1 | tail -2
mkdir -p ../shared && cp -rn shared/data ../shared/   # configs name ../shared/data/...
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# The checkout's results/ travel with it: the runner skips what is already finished there,
# and only the cells finished during this slot are packed.
touch /tmp/slot_start
end=$(( $(date +%s) + budget ))
finished() { find results -name results.json -newer /tmp/slot_start | wc -l; }
while [ "$(date +%s)" -lt "$end" ]; do
  before=$(finished)
  timeout $(( end - $(date +%s) )) python3 -m benchmarks.study.run --max-cells 1 --only "$only" \
    --results results --runs /tmp/gpu_runs 2>&1 | tail -3 || break
  [ "$(finished)" -gt "$before" ] || break   # nothing left that matches: give the slot back
done
find results -name results.json -newer /tmp/slot_start -printf '%h\n' > /tmp/new_cells
tar czf "$out/cells.tar.gz" -T /tmp/new_cells && cat /tmp/new_cells
