#!/usr/bin/env bash
# The title adapter settings tried on the dev sets (their scores are in each run's model cards and in
# runs/<name>/*/training_summary.json). Each run copies the shipped encoder models and trains only the
# generator's adapters: python -m core train --generator-only --out runs/<name> --set ...
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
  name=$1; shift
  mkdir -p runs/$name
  for m in en_trained de_finetuned; do rm -rf runs/$name/$m; cp -r assets/models/$m runs/$name/$m; done
  python -m core train --generator-only --out runs/$name "$@" > runs/$name/train.log 2>&1
  echo "$name done"
}
for spec in "$@"; do
  eval "run $spec"
done
