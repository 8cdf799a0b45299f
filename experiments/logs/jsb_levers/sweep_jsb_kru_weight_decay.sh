#!/bin/bash
# JSB KRU: decoupled weight decay (AdamW) strong enough to matter (1e-3 × lr 1e-3 was 1e-6 a step).
. /work/main/.venv/bin/activate
export OMP_NUM_THREADS=1
C=/work/main/configs/jsb/kru.yaml
D="--data.data_dir /work/shared/data/polyphonic --data.download false --trainer.max_epochs 40"
run() { name=$1; shift; mkdir -p $name; (cd $name && kruzoo fit --config $C $D "$@" > stdout.log 2>&1); echo "$name done $(date +%T)"; }
for wd in 0.03 0.1 0.3 1.0; do
run wd$wd --model.init_args.optimizer torch.optim.AdamW --model.init_args.optimizer.init_args.weight_decay $wd
done
