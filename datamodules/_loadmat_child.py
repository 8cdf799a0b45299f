"""Run by ``polyphonic._loadmat_isolated`` in a child interpreter (numpy and scipy only): scipy's C
reader can crash the whole process on a corrupt .mat file, so it never runs in the training one.

argv: MAT_PATH NPZ_OUT. Writes every cell of the piano-roll variables as ``<variable>:<i>`` and the
names of all variables as ``__variables__``; exit status 3 with the reason on stderr when scipy
rejects the file or a cell is not numeric.
"""

import sys

import numpy as np
import scipy.io

KEYS = ("traindata", "validdata", "testdata")


def main(path: str, out: str) -> int:
    try:
        content = scipy.io.loadmat(path)
    except Exception as e:  # noqa: BLE001 - scipy reports corrupt files as ValueError, OSError, TypeError, …
        print(f"not a readable MATLAB v5 .mat file ({type(e).__name__}: {e})", file=sys.stderr)
        return 3
    arrays = {"__variables__": np.array(sorted(k for k in content if not k.startswith("__")), dtype=str)}
    for key in KEYS:
        cells = content.get(key)
        if not isinstance(cells, np.ndarray):
            continue
        for i, cell in enumerate(cells.ravel()):
            roll = np.asarray(cell)
            if roll.dtype == object:
                print(f"{key}[{i}]: expected a numeric piano roll, got a {roll.dtype} array of shape {roll.shape}",
                      file=sys.stderr)
                return 3
            arrays[f"{key}:{i}"] = roll
    np.savez(out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
