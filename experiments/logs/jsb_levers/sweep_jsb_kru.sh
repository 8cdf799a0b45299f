#!/bin/bash
# JSB KRU levers, each otherwise configs/jsb/kru.yaml, 40 epochs (the KRU's best val was at epoch 14).
. /work/main/.venv/bin/activate
export OMP_NUM_THREADS=1
C=/work/main/configs/jsb/kru.yaml
D="--data.data_dir /work/shared/data/polyphonic --data.download false --trainer.max_epochs 40"
run() { name=$1; shift; mkdir -p $name; (cd $name && kruzoo fit --config $C $D "$@" > stdout.log 2>&1); echo "$name done $(date +%T)"; }
run base
run p0 --model.init_args.penalty_weight 0
run lr3e-4 --model.init_args.optimizer.init_args.lr 0.0003
run wd1e-4 --model.init_args.optimizer torch.optim.AdamW --model.init_args.optimizer.init_args.weight_decay 0.0001
run wd1e-3 --model.init_args.optimizer torch.optim.AdamW --model.init_args.optimizer.init_args.weight_decay 0.001
run f8 --model.init_args.factor_size 8
run noclip --trainer.gradient_clip_val null
