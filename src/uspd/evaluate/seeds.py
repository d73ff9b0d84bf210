"""Seed convention: training, tuning and evaluation data never share a dataset seed.

A *dataset seed* S is what ``uspd dataset train|eval --seed S`` takes; every clip of that set derives its own scene and
render seeds from ``(S, clip index)`` (see :func:`clip_seed`) and records ``dataset_seed`` in its labels, so a
recording can tell which range it came from.

=============  ==============  ==========================================================================
range          role            used by
=============  ==============  ==========================================================================
0 - 999        ``train``       ``uspd dataset train`` (neural model training data)
1000 - 1999    ``tune``        tuning the classic detector / presence thresholds, model selection
2000 - 8999    ``other``       examples, tests, ad-hoc experiments
>= 9000        ``eval``        ``uspd dataset eval`` sets that ``uspd evaluate`` reports on
=============  ==============  ==========================================================================

``uspd dataset eval`` refuses a training seed; ``uspd evaluate`` refuses recordings whose labels carry a training
``dataset_seed`` (it cannot tell for recordings without one, e.g. real ones).
"""
from __future__ import annotations

import numpy as np

from uspd.errors import UspdError

TRAIN_SEEDS = range(0, 1000)
TUNE_SEEDS = range(1000, 2000)
EVAL_SEED_MIN = 9000


class SeedError(UspdError):
    """A seed from the wrong range for the requested use."""


def seed_role(seed: int) -> str:
    """"train", "tune", "eval" or "other" for a dataset seed (module table)."""
    seed = int(seed)
    if seed < 0:
        raise SeedError(f"seed {seed}: seeds are non-negative integers")
    if seed in TRAIN_SEEDS:
        return "train"
    if seed in TUNE_SEEDS:
        return "tune"
    return "eval" if seed >= EVAL_SEED_MIN else "other"


def check_not_training(seed: int, where: str) -> str:
    """Raise :class:`SeedError` if ``seed`` is a training seed; return its role otherwise."""
    role = seed_role(seed)
    if role == "train":
        raise SeedError(f"{where}: seed {seed} is in the training range {TRAIN_SEEDS.start}-{TRAIN_SEEDS.stop - 1}; "
                        f"evaluation seeds are >= {EVAL_SEED_MIN} (tuning {TUNE_SEEDS.start}-{TUNE_SEEDS.stop - 1})")
    return role


def clip_seed(dataset_seed: int, index: int, stream: int = 0) -> int:
    """Deterministic 31-bit seed for clip ``index`` of a dataset (``stream`` separates scene sampling from render)."""
    ss = np.random.SeedSequence([int(dataset_seed), int(index), int(stream)])
    return int(ss.generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)
