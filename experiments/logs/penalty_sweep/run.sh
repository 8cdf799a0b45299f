#!/bin/bash
# Penalty sweep, issue 13: adding T=100, KRU N=512, 1 thread, <= 2 min each.
cd /work/main && . .venv/bin/activate
for p in 0.001 0.1 1 10; do
  echo "== $(date -u +%FT%TZ) penalty $p"
  OMP_NUM_THREADS=1 nice -n 10 kruzoo fit --config experiments/logs/penalty_sweep/base_config.yaml --model.init_args.penalty_weight $p \
    --model.init_args.lr_scheduler null \
    --trainer.max_steps 1500 --trainer.max_time 00:00:02:00 --trainer.val_check_interval 500 --data.val_size 500 \
    --trainer.default_root_dir OUT/p$p --trainer.enable_progress_bar false 2>&1 | grep -v Warning | tail -5
done
echo "== done $(date -u +%FT%TZ)"
