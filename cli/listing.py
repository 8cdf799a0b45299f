"""``kruzoo list``: the models, datamodules, packaged configs and pretrained entries, one per line."""

from __future__ import annotations

import inspect

from kruzoo import pretrained

from .names import DATAMODULES, datamodule_classes, model_classes, packaged_configs


def _first_line(obj, width: int = 90) -> str:
    """The docstring's first paragraph on one line, cut to ``width`` characters."""
    doc = (inspect.getdoc(obj) or "").strip().split("\n\n")[0]
    text = " ".join(doc.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def listing() -> str:
    lines = ["models (--model NAME, e.g. --model kru; --model.help NAME lists its arguments):"]
    for name, cls in model_classes().items():
        lines.append(f"  {name:<10} kruzoo.models.{cls.__name__:<8} {_first_line(cls)}")
    lines.append("datamodules (--data NAME, e.g. --data adding; --data.help NAME):")
    shorts: dict[str, list[str]] = {}
    for short, cls_name in DATAMODULES.items():
        shorts.setdefault(cls_name, []).append(short)
    for name, cls in datamodule_classes().items():
        alias = "|".join(shorts.get(name, [name.removesuffix("DataModule").lower()]))
        lines.append(f"  {alias:<17} kruzoo.datamodules.{name:<26} {_first_line(cls)}")
    lines.append("configs (--config TASK/MODEL, e.g. --config copy/kru; packaged with kruzoo):")
    configs = packaged_configs()
    tasks: dict[str, list[str]] = {}
    for config in configs:
        task, model = config.split("/")
        tasks.setdefault(task, []).append(model)
    for task, models in tasks.items():
        lines.append(f"  {task}/{{{','.join(models)}}}")
    lines.append("pretrained (--ckpt_path pretrained:NAME to evaluate, fit --init_from pretrained:NAME to fine-tune):")
    for name in pretrained.list():
        entry = pretrained.info(name)
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in entry.get("test_metrics", {}).items())
        lines.append(f"  {name:<24} {entry.get('model', '?'):<6} {entry['data']['class_path'].rsplit('.', 1)[-1]:<26} "
                     f"{metrics}")
    return "\n".join(lines)


def main() -> None:
    print(listing())
