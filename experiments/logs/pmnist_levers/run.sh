#!/bin/bash
# pMNIST levers (issue 14): KRU N=512 (configs/pmnist/kru.yaml), 600 steps each, 2 threads,
# validation on 1,000 of the 5K images every 200 steps; one setting changed per run.
cd /work/main && . .venv/bin/activate
OUT=${OUT:-/work/runs/pmnist_levers}
common="--config configs/pmnist/kru.yaml --data.data_dir /work/shared/data/mnist --data.download false
  --trainer.max_steps 600 --trainer.val_check_interval 200 --trainer.limit_val_batches 20
  --trainer.enable_progress_bar false"
run() {  # name, overrides...
  name=$1; shift
  echo "== $(date -u +%FT%TZ) $name: $*"
  kruzoo fit $common --trainer.default_root_dir $OUT/$name "$@" 2>&1 | grep -v -i warning | tail -3
}
run p0.001_clip1
run p10_clip1 --model.init_args.penalty_weight 10
run p10_noclip --model.init_args.penalty_weight 10 --trainer.gradient_clip_val null
run p100_noclip --model.init_args.penalty_weight 100 --trainer.gradient_clip_val null
echo "== done $(date -u +%FT%TZ)"
