"""``kruzoo report RUN_DIR [--out DIR]``: a run at a glance.

From a run folder (``runs/<DataModule>-<Model>/version_k``: TensorBoard events, ``checkpoints/``,
``config.yaml``) it writes into ``DIR`` (default ``RUN_DIR/report``):

- ``curves.png``: the training loss per step and the validation loss at each validation, with the
  task's baseline (the datamodule's ``baseline``, when it has one) as a dashed line;
- ``spectrum.png``: the eigenvalues of the recurrent matrix of the run's last checkpoint
  (``kruzoo spectrum``, cli/spectrum.py);
- ``report.md``: model, data, parameter counts, the last and best validation loss and their
  steps, the baseline, and the two figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kruzoo.datamodules import datamodule_from_config
from kruzoo.models import loading

from .spectrum import save_spectrum


class ReportError(ValueError):
    """A folder that is not a kruzoo run folder, or one with nothing to report."""


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the run's TensorBoard events: tag -> [(step, value)] in step order."""
    # here, not at the top: tensorboard's reader is slow to import and only the report needs it
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not list(run_dir.glob("events.out.tfevents.*")):
        raise ReportError(f"{run_dir} has no TensorBoard events (events.out.tfevents.*): give a run folder, "
                          "e.g. runs/CopyMemoryDataModule-KRU/version_0")
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    out = {}
    for tag in events.Tags()["scalars"]:
        points = {}
        for event in events.Scalars(tag):  # a resume may re-log a step: keep the last value
            points[event.step] = event.value
        out[tag] = sorted(points.items())
    return out


def _checkpoint(run_dir: Path) -> Path:
    folder = run_dir / "checkpoints"
    for candidate in [folder / "last.ckpt", *sorted(folder.glob("best-*.ckpt"))]:
        if candidate.is_file():
            return candidate
    raise ReportError(f"{run_dir} has no checkpoint in checkpoints/ (last.ckpt or best-*.ckpt)")


def _datamodule(checkpoint: dict, run_dir: Path):
    spec = checkpoint.get("kruzoo_data")
    if not spec and (run_dir / "config.yaml").is_file():
        spec = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("data")
    if not spec:
        return None, None
    try:
        return spec, datamodule_from_config(spec)
    except Exception:  # noqa: BLE001 - a datamodule that cannot be built here (data elsewhere): no baseline
        return spec, None


def curves_figure(scalars: dict, baseline: float | None, loss_name: str) -> Figure:
    figure = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    drawn = []
    for tag, label, style in (("train/loss_step", "train (per step)", dict(lw=0.8, alpha=0.7)),
                              ("val/loss", "validation", dict(marker="o", lw=1.5))):
        if scalars.get(tag):
            steps, values = zip(*scalars[tag])
            ax.plot(steps, values, label=label, **style)
            drawn += list(values)
    if baseline is not None:
        ax.axhline(baseline, color="k", ls="--", lw=1, label=f"baseline {baseline:.4g}")
        drawn.append(baseline)
    if drawn and min(drawn) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(loss_name)
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    return figure


def report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write curves.png, spectrum.png and report.md for ``run_dir``; returns the report's path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a folder: give a run folder such as runs/CopyMemoryDataModule-KRU/version_0")
    out = Path(out) if out else run_dir / "report"
    scalars = read_scalars(run_dir)
    if not scalars.get("val/loss") and not scalars.get("train/loss_step"):
        raise ReportError(f"{run_dir}: its events hold no train/loss_step or val/loss yet")
    ckpt_path = _checkpoint(run_dir)
    checkpoint = loading.read_checkpoint(ckpt_path)
    model = loading.load_model(checkpoint)
    spec, datamodule = _datamodule(checkpoint, run_dir)
    baseline = getattr(datamodule, "baseline", None) if datamodule is not None else None
    baseline = float(baseline) if isinstance(baseline, (int, float)) else None
    loss_name = {"cross_entropy": "cross-entropy (nats)", "mse": "MSE", "bernoulli": "NLL (nats)"}[model.task.loss]

    out.mkdir(parents=True, exist_ok=True)
    curves_figure(scalars, baseline, loss_name).savefig(out / "curves.png")
    name = f"{type(model).__name__} on {str((spec or {}).get('class_path', '?')).rsplit('.', 1)[-1]}"
    save_spectrum(model.recurrent_matrix().detach(), out / "spectrum.png", title=name)

    counts = model.parameter_counts()
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_") and k != "task"}
    val = scalars.get("val/loss", [])
    lines = [f"# {name}", "", f"Run folder: `{run_dir}`; checkpoint: `{ckpt_path.name}` "
             f"(step {checkpoint.get('global_step', '?')}).", "",
             f"- model: `{checkpoint.get('kruzoo_model', type(model).__name__)}` {hparams}",
             f"- data: `{(spec or {}).get('class_path', '?')}` {(spec or {}).get('init_args', {})}",
             f"- task: {model.task.as_dict()}",
             f"- parameters: {counts['total']:,} in all, {counts['recurrent']:,} recurrent"]
    if val:
        best_step, best = min(val, key=lambda p: p[1])
        lines.append(f"- validation {loss_name}: last {val[-1][1]:.4g} (step {val[-1][0]}), best {best:.4g} "
                     f"(step {best_step})")
    acc = scalars.get("val/acc")
    if acc:
        lines.append(f"- validation accuracy: last {100 * acc[-1][1]:.1f}%")
    if baseline is not None:
        meaning = getattr(type(datamodule), "baseline_meaning", "")
        lines.append(f"- baseline: {baseline:.4g}" + (f" ({meaning})" if meaning else ""))
    lines += ["", "![learning curves](curves.png)", "", "![recurrent spectrum](spectrum.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    return out / "report.md"


def main(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="kruzoo report", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run folder, e.g. runs/CopyMemoryDataModule-KRU/version_0")
    parser.add_argument("--out", help="where to write (default RUN_DIR/report)")
    args = parser.parse_args(argv)
    path = report(args.run_dir, args.out)
    print(f"kruzoo: report in {path} (curves.png, spectrum.png beside it)", flush=True)
    return path
