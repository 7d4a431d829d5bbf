#!/usr/bin/env bash
# Every zero-German-title remedy (core/train.py VARIANTS) into assets/models/variants/<name>, one after another.
# The plain recipe is en_trained itself; the report's ablation table scores them all (python -m core evaluate).
set -euo pipefail
cd "$(dirname "$0")/.."
for v in "${@:-low_lr small_adapter unlabelled_de language_prompt language_prompt+unlabelled_de}"; do
  for name in $v; do
    python -m core train --variant "$name" > "runs/variant-$name.log" 2>&1
    echo "$name done"
  done
done
