"""Print the latest logged scalars of kruzoo runs (TensorBoard event files), for checking progress.

python experiments/scalars.py RUN_DIR [RUN_DIR ...]   (a version_k folder, or any folder above it)
"""

import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read(run: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall_time)] over every event file of a run folder."""
    ea = EventAccumulator(str(run), size_guidance={"scalars": 0})
    ea.Reload()
    return {tag: [(s.step, s.value, s.wall_time) for s in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}


if __name__ == "__main__":
    for root in map(Path, sys.argv[1:]):
        for run in sorted({p.parent for p in root.rglob("events.out.tfevents.*")}):
            scalars = read(run)
            start = min(v[0][2] for v in scalars.values())
            print(run)
            for tag, values in sorted(scalars.items()):
                step, value, wall = values[-1]
                print(f"  {tag:20s} step {step:7d}  {value:.6g}  ({(wall - start) / 60:.1f} min)")
