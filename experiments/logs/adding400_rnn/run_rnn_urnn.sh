#!/bin/bash
# Adding T=400 baselines for the curves (issue 14): RNN and uRNN, configs as written with --data.seq_len 400, 20-minute caps.
. /work/main/.venv/bin/activate
export OMP_NUM_THREADS=1
while pgrep -f "adding/lstm.yaml --data.seq_len 400" >/dev/null; do sleep 10; done
for m in rnn urnn; do
  mkdir -p $m; (cd $m && kruzoo fit --config /work/main/configs/adding/$m.yaml --data.seq_len 400 --trainer.max_time 00:00:20:00 --trainer.enable_progress_bar false > stdout.log 2>&1); echo "$m done $(date +%T)"
done
