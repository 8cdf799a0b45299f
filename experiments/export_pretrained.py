"""Ship a trained checkpoint in the pretrained zoo: strip it to weights + hyperparameters, record
its sha256, its full test metrics and a small golden subset that CI re-checks.

python experiments/export_pretrained.py NAME --ckpt RUN/checkpoints/best-....ckpt --config configs/copy/kru.yaml \
    --train-command "kruzoo fit --config configs/copy/kru.yaml ..." [--train-command "kruzoo fit ... --ckpt_path last"] \
    --log experiments/logs/RUN --provenance "what was run" --wall-time "14 min" [--data data_dir=...] [--golden-batches 4]

Every --train-command (in order) must start with ``kruzoo fit --config FILE``; the index stores the sha256 of
each config named, which tests/test_pretrained.py checks, and ``--log`` (the folder with the run's resolved
config.yaml, which the test compares with the last command resolved against today's configs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import torch
import yaml
from lightning.pytorch import Trainer

import kruzoo
from kruzoo import pretrained
from kruzoo.models.registry import get_model_class

REPO = Path(__file__).resolve().parents[1]


def evaluate(model, data_spec: dict, overrides: dict, batches: int | None = None) -> dict[str, float]:
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, limit_test_batches=batches or 1.0)
    (metrics,) = trainer.test(model, pretrained.build_datamodule(data_spec, overrides), verbose=False)
    return {k: float(v) for k, v in metrics.items()}


def _config_of(command: str) -> str:
    match = re.match(r"kruzoo fit --config (\S+\.yaml)( |$)", command)
    if match is None:
        raise SystemExit(f"--train-command must start with 'kruzoo fit --config FILE.yaml', got {command!r}")
    return match[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--ckpt", required=True, type=Path)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--train-command", required=True, action="append", dest="train_commands")
    parser.add_argument("--log", required=True, help="folder with the run's config.yaml (experiments/logs/RUN)")
    parser.add_argument("--provenance", required=True, help="what was actually run, honestly")
    parser.add_argument("--wall-time", required=True)
    parser.add_argument("--data", nargs="*", default=[], help="KEY=VALUE overrides for evaluation only (e.g. data_dir)")
    parser.add_argument("--golden-batches", type=int, default=4)
    args = parser.parse_args()
    torch.set_flush_denormal(True)

    checkpoint = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    class_name = checkpoint["hyper_parameters"].get("_class_path", checkpoint.get("kruzoo_model", "")).rsplit(".", 1)[-1]
    model_name = next(n for n in kruzoo.list_models() if get_model_class(n).__name__ == class_name)
    minimal = {
        "state_dict": checkpoint["state_dict"],
        "hyper_parameters": hparams,
        "pytorch-lightning_version": checkpoint["pytorch-lightning_version"],
        "kruzoo_model": class_name,
        "epoch": checkpoint["epoch"],
        "global_step": checkpoint["global_step"],
    }
    file = pretrained.FOLDER / f"{args.name}.ckpt"
    torch.save(minimal, file)

    config = yaml.safe_load(args.config.read_text())
    data_spec = config["data"]
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.data)}
    model = get_model_class(model_name)(**hparams)
    model.load_state_dict(minimal["state_dict"])
    model.eval()
    full = evaluate(model, data_spec, overrides)
    golden = evaluate(model, data_spec, overrides, args.golden_batches)
    params = model.parameter_counts()

    index = json.loads(pretrained.INDEX.read_text()) if pretrained.INDEX.is_file() else {}
    index[args.name] = {
        "model": model_name,
        "file": file.name,
        "sha256": pretrained.sha256_of(file),
        "config": str(args.config),
        "data": data_spec,
        "parameters": params,
        "global_step": checkpoint["global_step"],
        "test_metrics": full,
        # Where the files were is this machine's business, not a setting of the evaluation.
        "evaluation_overrides": {k: v for k, v in overrides.items() if k not in ("data_dir", "download")},
        "golden": {"test_batches": args.golden_batches, "metrics": golden},
        "train_commands": args.train_commands,
        "config_sha256": {c: hashlib.sha256((REPO / c).read_bytes()).hexdigest()
                          for c in dict.fromkeys([str(args.config), *map(_config_of, args.train_commands)])},
        "log": str(args.log),
        "provenance": args.provenance,
        "wall_time": args.wall_time,
        "evaluate_command": f"kruzoo test --config {args.config} --ckpt_path pretrained:{args.name}",
    }
    pretrained.INDEX.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    print(json.dumps(index[args.name], indent=2))


if __name__ == "__main__":
    main()
