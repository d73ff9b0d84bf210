"""Training loop for :class:`uspd.detector.model.DopplerNet` (torch CPU), then export + int8 quantization.

Batches are random crops of ``crop_hops`` hops from clips drawn in proportion to their length, times a hard-example
mining factor (clips the model currently gets wrong come back more often; :class:`_Batcher`) (a fifth start at the
clip's first hop, so the warm-up from zero state is learned too), channels padded with a mask; ``channel_drop`` of
the crops keep only a random subset of their channels (a device with fewer mics). With ``overlay_hours``, mixes of a
walker laid over a running confuser (:mod:`uspd.train.overlay`) join the training split. Loss per hop:

- ``score``: BCE against "any motion", weighted: hard negatives (no motion while a confuser, pet, still or distant
  person is active) ``hard_weight``, times ``far_weight`` while a person moves beyond 5 m (times
  ``approach_weight`` where that person crosses the 5 m range, :func:`uspd.train.labels.approach_hops`); minor motion
  ``minor_weight`` (typing, almost invisible, ``typing_weight``); hard positives (motion while a confuser or pet is
  active) times ``hard_positive_weight``, so that "a confuser is there" never becomes a shortcut for "nobody moves"
  (it did: a walker beside a vacuum scored 0.01);
  hops near a motion interval's start or end 0 (ambiguous);
- ``major``: BCE against "major" on motion hops, and towards 0 with ``major_neg_weight`` elsewhere;
- ``mover`` (with ``mover_weight`` > 0, a second task): a linear head on the GRU state learns "a pet or a robot
  vacuum moves and no person does" (1) against "a person moves" (0), the mover readout's targets
  (:func:`uspd.train.readout.mover_targets`), so the state has to keep a person beside a pet apart from the pet; its
  mean BCE over those hops, times ``mover_weight``, is added to the loss, and the head is written into the manifest
  as the model's ``mover_readout``.

With ``peak_weight`` > 0 an event-level term is added (max-pooling loss, as in keyword spotting): in each crop, the
``peak_hops`` highest "any motion" logits among its negative hops are pushed towards 0. A false alarm is one
rising edge, so what matters on a pet or HVAC stretch is its highest score, which the per-hop mean barely sees.

With ``teachers`` (knowledge distillation), every clip is first scored by each teacher model exactly as it runs
live (:meth:`NeuralDetector.process_bands` from zero state); the "any motion" target becomes
``(1 - distill) x label + distill x teachers' probability`` (logit mean over the teachers). An ensemble of seeds
raises far fewer false alarms than any one of them but is too large to ship; the student is trained towards its
scores (so far it has not kept the gain: docs/NEURAL_DETECTOR_LOG.md).

A validation split (whole clips) picks the best epoch. Everything is seeded: same data + seed -> same model.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uspd.errors import UspdError
from uspd.train.labels import ACTION_CODES, MAJOR, MINOR, approach_hops
from uspd.train.readout import mover_targets

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 12
    seed: int = 0
    batch: int = 32
    crop_hops: int = 600
    lr: float = 3e-3
    weight_decay: float = 1e-4
    hard_weight: float = 3.0
    hard_positive_weight: float = 3.0  # multiplies the weight of motion hops while a confuser or a pet is active
    far_weight: float = 1.0  # multiplies the weight of negative hops while a person moves beyond 5 m
    approach_weight: float = 1.0  # multiplies it again on far hops of a walker crossing 5 m (0: no loss there)
    minor_weight: float = 2.0
    typing_weight: float = 0.3
    major_neg_weight: float = 0.2
    channel_drop: float = 0.3  # share of crops that keep only a random subset (>= 2) of their channels
    val_fraction: float = 0.1
    threads: int = 1
    max_minutes: float = 0.0  # 0 = no limit
    hidden: int = 48
    enc: int = 32
    proj: int = 0  # size of a linear projection of the pooled features before the GRU (0 = none)
    mining: float = 1.0  # hard-example mining strength: crops drawn more often from clips the model gets wrong
    mining_cap: float = 4.0  # a clip is drawn at most this many times more often than its length alone says
    echo: bool = True  # also feed the echo features (front end's Doppler power not common to all mics)
    echo_enc: int = 16  # size of their dense encoding
    level_jitter_db: float = 0.0  # augmentation: crop gain offset U(-j, j) dB and per-channel offset U(-j/2, j/2) dB
    level_bands: int = -1  # leading inputs that are absolute band levels (set from the FeatureSpec; -1 = all)
    band_mask: int = 0  # augmentation: half the crops lose a run of 1..band_mask adjacent velocity bands (0 = off)
    n_bands: int = 32  # velocity bands per input block (set from the FeatureSpec)
    peak_weight: float = 0.0  # weight of the event-level loss on each crop's highest negative scores (0 = off)
    peak_hops: int = 4  # how many of a crop's highest negative hops that loss takes (a hop is 50 ms)
    burn_in_hops: int = 0  # crops that start inside a clip carry no loss on their first hops (GRU warm-up)
    teachers: tuple[str, ...] = ()  # model files whose mean score the "any motion" target is mixed with
    distill: float = 0.5  # share of the teachers' score in that target (only with teachers)
    prewarm: float = 0.0  # share of clips whose feature backgrounds start settled (see add_model_inputs)
    mover_weight: float = 0.0  # weight of the second task, the mover head (0 = no head)
    ema: float = 0.0  # per-step decay of an exponential moving average of the weights, validated and kept (0 = off)
    overlay_hours: float = 0.0  # hours of walkers laid over running confusers added to the training split (0 = off)


def hop_weights(clip: dict[str, np.ndarray], cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-hop targets (2, F) [any motion, major] and weights (F,) for the score and the major output."""
    motion = clip["motion"]
    target = (motion > 0).astype(np.float32)
    if cfg.teachers and "teacher" in clip:  # distillation: soft targets from the teachers' scores
        target = (1.0 - cfg.distill) * target + cfg.distill * clip["teacher"].astype(np.float32)
    major = (motion == MAJOR).astype(np.float32)
    w = np.ones(motion.shape, np.float32)
    neg = motion == 0
    hard = neg & ((clip["confusers"] != 0) | clip["pet"] | clip["far"] | clip["presence"])
    w[hard] = cfg.hard_weight
    w[neg & clip["far"]] *= cfg.far_weight
    if cfg.approach_weight != 1.0:
        w[neg & approach_hops(motion, clip["presence"], clip["far"])] *= cfg.approach_weight
    w[motion == MINOR] = cfg.minor_weight
    w[(motion == MINOR) & (clip["action"] == ACTION_CODES["typing"])] = cfg.typing_weight
    w[(motion > 0) & ((clip["confusers"] != 0) | clip["pet"])] *= cfg.hard_positive_weight
    w[clip["edge"]] = 0.0
    wm = np.where(motion > 0, 1.0, cfg.major_neg_weight).astype(np.float32)
    wm[clip["edge"]] = 0.0
    return np.stack([target, major]), w, wm


def mask_bands(x: np.ndarray, bands: np.ndarray, n_bands: int, n_level: int) -> None:
    """Mask velocity ``bands`` of one crop's inputs ``x`` (T, C, blocks x n_bands) in place: in the leading
    ``n_level`` inputs (band levels, dB) each channel's band keeps its median over the crop, so the band shows its
    usual level and no movement; in the other blocks (rise above the background) it becomes 0 dB."""
    for start in range(0, x.shape[-1], n_bands):
        cols = start + bands
        if start < n_level:
            x[:, :, cols] = np.median(x[:, :, cols], axis=0, keepdims=True)
        else:
            x[:, :, cols] = 0.0


class _Batcher:
    """Random crops (N, T, C, B) with masks and weights, from a list of clips.

    Hard-example mining: each clip keeps a running difficulty (the weighted loss of its recent crops, see
    :meth:`update`); clips are drawn with probability proportional to length x (difficulty / mean) ** mining,
    capped at ``mining_cap``, so the confusers the model still mistakes for people come back more often."""

    def __init__(self, clips: list[dict], cfg: TrainConfig, rng: np.random.Generator):
        self.clips, self.cfg, self.rng = clips, cfg, rng
        self.lengths = np.array([c["x"].shape[0] for c in clips], np.float64)
        self.difficulty = np.full(len(clips), np.nan)
        self.prob = self.lengths / self.lengths.sum()
        self.prep = [hop_weights(c, cfg) for c in clips]
        self.mover = [mover_targets(c) for c in clips] if cfg.mover_weight > 0 else None
        self.last_idx = np.zeros(0, int)

    def update(self, per_crop_loss: np.ndarray, decay: float = 0.5) -> None:
        """Fold the last batch's per-crop losses into the difficulty of their clips and re-weight the draw."""
        for i, loss in zip(self.last_idx, per_crop_loss):
            d = self.difficulty[i]
            self.difficulty[i] = loss if np.isnan(d) else decay * d + (1.0 - decay) * loss
        if self.cfg.mining <= 0:
            return
        seen = ~np.isnan(self.difficulty)
        if not seen.any():
            return
        mean = float(np.mean(self.difficulty[seen]))
        rel = np.where(seen, self.difficulty / max(mean, 1e-9), 1.0)
        factor = np.clip(rel, 1.0 / self.cfg.mining_cap, self.cfg.mining_cap) ** self.cfg.mining
        p = self.lengths * factor
        self.prob = p / p.sum()

    def batch(self):
        import torch

        cfg, rng = self.cfg, self.rng
        idx = rng.choice(len(self.clips), size=cfg.batch, p=self.prob)
        self.last_idx = idx
        n_ch = max(self.clips[i]["x"].shape[1] for i in idx)
        t_len = cfg.crop_hops
        x = np.zeros((cfg.batch, t_len, n_ch, self.clips[0]["x"].shape[2]), np.float32)
        mask = np.zeros((cfg.batch, t_len, n_ch), np.float32)
        e = np.zeros((cfg.batch, t_len, self.clips[0]["e"].shape[1]), np.float32) if cfg.echo else None
        n_out = 2 if self.mover is None else 3  # [score, major(, mover)]
        nl = x.shape[3] if cfg.level_bands < 0 else cfg.level_bands  # leading inputs that are band levels
        y = np.zeros((cfg.batch, t_len, n_out), np.float32)
        w = np.zeros((cfg.batch, t_len, n_out), np.float32)
        for b, i in enumerate(idx):
            clip = self.clips[i]
            n = clip["x"].shape[0]
            start = 0 if (rng.random() < 0.2 or n <= t_len) else int(rng.integers(0, n - t_len + 1))
            stop = min(n, start + t_len)
            m = stop - start
            c = clip["x"].shape[1]
            x[b, :m, :c] = clip["x"][start:stop]
            if m < t_len:  # pad with the clip's last hop so the padded part looks plausible (its weight is 0)
                x[b, m:, :c] = clip["x"][stop - 1]
            if e is not None:
                e[b, :m] = clip["e"][start:stop]
                e[b, m:] = clip["e"][stop - 1]
            if cfg.level_jitter_db > 0:  # augmentation: other echo strengths and mic sensitivities (levels only:
                # the rise above the background is offset-free)
                gain_db = rng.uniform(-cfg.level_jitter_db, cfg.level_jitter_db)
                # drawn even without level inputs (nl = 0), so such a model sees the same crops as one with them
                x[b, :, :c, :nl] += gain_db + rng.uniform(-0.5, 0.5, size=(c, 1)) * cfg.level_jitter_db
                if e is not None:
                    e[b, :, :nl] += gain_db
            if cfg.band_mask > 0 and rng.random() < 0.5:  # augmentation: a Doppler spectrum shaped otherwise
                width = int(rng.integers(1, cfg.band_mask + 1))
                bands = int(rng.integers(0, cfg.n_bands - width + 1)) + np.arange(width)
                mask_bands(x[b, :, :c], bands, cfg.n_bands, nl)
                if e is not None:
                    mask_bands(e[b, :, None, :], bands, cfg.n_bands, nl)
            if c > 2 and rng.random() < cfg.channel_drop:  # augmentation: a device with fewer mics
                keep = rng.choice(c, size=int(rng.integers(2, c)), replace=False)
                mask[b, :, keep] = 1.0
            else:
                mask[b, :, :c] = 1.0
            targets, wa, wm = self.prep[i]
            y[b, :m, :2] = targets[:, start:stop].T
            w[b, :m, 0] = wa[start:stop]
            w[b, :m, 1] = wm[start:stop]
            if self.mover is not None:
                used, target = self.mover[i]
                y[b, :m, 2] = target[start:stop]
                w[b, :m, 2] = used[start:stop]
            if start > 0 and cfg.burn_in_hops > 0:  # zero GRU state on warm inputs never happens live: let the
                w[b, :min(cfg.burn_in_hops, m)] = 0.0  # state warm up before the loss counts (a clip's start keeps it)
        return (*(torch.from_numpy(a) for a in (x, mask, y, w)), None if e is None else torch.from_numpy(e))


def _weighted_bce(logits, y, w):
    """Per-hop weighted BCE (N, T, 2)."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(logits, y, reduction="none") * w


def _loss(logits, y, w):
    return _weighted_bce(logits, y, w).sum() / w.sum().clamp(min=1.0)


def _peak_loss(logits, y, w, k: int):
    """Event-level loss: mean BCE towards 0 of the ``k`` highest "any motion" logits among each crop's negative
    hops (target 0, weight > 0), averaged over the crops that have at least ``k`` of them (0 if none do)."""
    import torch
    import torch.nn.functional as F

    neg = (y[..., 0] == 0) & (w[..., 0] > 0)  # (N, T)
    has = neg.sum(dim=1) >= k
    if k < 1 or not bool(has.any()):
        return logits.sum() * 0.0
    top = logits[..., 0].masked_fill(~neg, -1e4)[has].topk(k, dim=1).values  # (n, k)
    return F.binary_cross_entropy_with_logits(top, torch.zeros_like(top))


def input_stats(clips: list[dict], n_in: int, rng: np.random.Generator, key: str = "x"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-input mean and std (dB) of ``clip[key]`` over a sample of hops and channels."""
    rows = []
    for c in clips:
        x = c[key]
        take = rng.choice(x.shape[0], size=min(64, x.shape[0]), replace=False)
        rows.append(x[take].reshape(-1, n_in).astype(np.float64))
    a = np.concatenate(rows)
    return a.mean(axis=0), np.maximum(a.std(axis=0), 1.0)


def evaluate_clips(net, clips: list[dict], cfg: TrainConfig) -> dict[str, float]:
    """Validation on whole clips from zero state: weighted loss, recall at 0.5 on major/minor hops, and the
    fraction of hard-negative hops scored above 0.5."""
    import torch

    tot_loss = tot_w = 0.0
    hits = {"major": [0, 0], "minor": [0, 0], "hard_neg_fp": [0, 0], "neg_fp": [0, 0]}
    net.eval()
    with torch.no_grad():
        for clip in clips:
            x = torch.from_numpy(clip["x"].astype(np.float32))[None]
            e = torch.from_numpy(clip["e"].astype(np.float32))[None] if cfg.echo else None
            logits, _ = net(x, e=e)
            logits = logits[..., :2]  # the detection outputs pick the best epoch, not the mover head
            targets, wa, wm = hop_weights(clip, cfg)
            y = torch.from_numpy(targets.T)[None]
            w = torch.from_numpy(np.stack([wa, wm], axis=1))[None]
            loss = _loss(logits, y, w)
            tot_loss += float(loss) * float(w.sum())
            tot_w += float(w.sum())
            p = torch.sigmoid(logits[0, :, 0]).numpy() > 0.5
            motion = clip["motion"]
            ok = ~clip["edge"]
            hard = (motion == 0) & ((clip["confusers"] != 0) | clip["pet"] | clip["far"] | clip["presence"])
            for key, sel in (("major", motion == MAJOR), ("minor", motion == MINOR),
                             ("hard_neg_fp", hard), ("neg_fp", motion == 0)):
                sel = sel & ok
                hits[key][0] += int(p[sel].sum())
                hits[key][1] += int(sel.sum())
    net.train()
    out = {"loss": tot_loss / max(tot_w, 1e-9)}
    out.update({k: (v[0] / v[1] if v[1] else float("nan")) for k, v in hits.items()})
    return out


def split_clips(clips: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Whole-clip train/validation split, reproducible from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x56414C]))
    order = rng.permutation(len(clips))
    n_val = int(round(len(clips) * fraction)) if len(clips) > 1 else 0
    n_val = min(max(n_val, 1 if len(clips) > 1 and fraction > 0 else 0), len(clips) - 1)
    val = [clips[i] for i in order[:n_val]]
    train = [clips[i] for i in order[n_val:]]
    return train, val


def train_model(clips: list[dict], cfg: TrainConfig, progress: bool = True,
                extra_train: list[dict] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train a DopplerNet on ``clips`` (from :func:`uspd.train.data.load_shards`); ``extra_train`` (e.g. overlay
    mixes) join the training split only, never validation. Returns (net, history)."""
    import torch
    from tqdm import tqdm

    from uspd.detector.model import DopplerNet

    if not clips:
        raise UspdError("training: no clips")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x545241]))
    n_in = int(clips[0]["x"].shape[2])
    train, val = split_clips(clips, cfg.val_fraction, cfg.seed)
    train = train + list(extra_train or [])
    if cfg.echo and any("e" not in c for c in train + val):
        raise UspdError("training: --echo needs shards with echo features (built by this version of "
                        "'uspd dataset train'); these are older")
    n_echo = int(clips[0]["e"].shape[1]) if cfg.echo else 0
    net = DopplerNet(n_in=n_in, enc=cfg.enc, hidden=cfg.hidden, n_echo=n_echo, echo_enc=cfg.echo_enc,
                     proj=cfg.proj, mover_head=cfg.mover_weight > 0)
    mean, std = input_stats(train, n_in, rng)
    net.in_mean_db.copy_(torch.from_numpy(mean.astype(np.float32)))
    net.in_std_db.copy_(torch.from_numpy(std.astype(np.float32)))
    if n_echo:
        mean, std = input_stats(train, n_echo, rng, key="e")
        net.echo_mean_db.copy_(torch.from_numpy(mean.astype(np.float32)))
        net.echo_std_db.copy_(torch.from_numpy(std.astype(np.float32)))
    batcher = _Batcher(train, cfg, rng)
    steps_per_epoch = max(1, int(batcher.lengths.sum() // (cfg.batch * cfg.crop_hops)))
    total_steps = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=0.1)
    averaged = None  # with cfg.ema, the moving average of the weights is what is validated and kept
    if cfg.ema > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    kept = net if averaged is None else averaged.module  # the network each epoch validates and the best one keeps
    history: dict[str, Any] = {"epochs": [], "config": asdict(cfg), "n_train_clips": len(train),
                               "n_extra_train_clips": len(extra_train or []),
                               "n_val_clips": len(val), "train_hours": float(batcher.lengths.sum()) * 0.05 / 3600}
    best = (math.inf, None, -1)
    t0 = time.monotonic()
    stopped_early = False
    bar = tqdm(total=total_steps, desc="training", unit="step", disable=not progress)
    for epoch in range(cfg.epochs):
        running = 0.0
        for _ in range(steps_per_epoch):
            x, mask, y, w, e = batcher.batch()
            logits, _ = net(x, mask, e=e)
            bce = _weighted_bce(logits[..., :2], y[..., :2], w[..., :2])
            loss = bce.sum() / w[..., :2].sum().clamp(min=1.0)
            if cfg.mover_weight > 0:
                loss = loss + cfg.mover_weight * _loss(logits[..., 2:], y[..., 2:], w[..., 2:])  # mean over its hops
            if cfg.peak_weight > 0:
                loss = loss + cfg.peak_weight * _peak_loss(logits, y, w, cfg.peak_hops)
            if cfg.mining > 0:  # the weighted loss of each crop is its clip's latest difficulty
                batcher.update((bce.detach().sum(dim=(1, 2)) / w[..., :2].sum(dim=(1, 2)).clamp(min=1.0)).numpy())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            if averaged is not None:
                averaged.update_parameters(net)
            running += loss.item()
            bar.update(1)
        val_stats = evaluate_clips(kept, val, cfg) if val else {"loss": running / steps_per_epoch}
        entry = {"epoch": epoch + 1, "train_loss": running / steps_per_epoch,
                 "minutes": (time.monotonic() - t0) / 60, **{f"val_{k}": v for k, v in val_stats.items()}}
        history["epochs"].append(entry)
        bar.set_postfix(val_loss=f"{val_stats['loss']:.4f}")
        log.info("epoch %d: %s", epoch + 1, " ".join(f"{k}={v:.4g}" for k, v in entry.items() if k != "epoch"))
        if val_stats["loss"] < best[0]:
            best = (val_stats["loss"], copy.deepcopy(kept.state_dict()), epoch + 1)
        if cfg.max_minutes and (time.monotonic() - t0) / 60 > cfg.max_minutes:
            stopped_early = epoch + 1 < cfg.epochs
            break
    bar.close()
    net.load_state_dict(best[1])
    net.eval()
    history["best_epoch"] = best[2]
    history["stopped_early_by_time_limit"] = stopped_early
    history["train_minutes"] = (time.monotonic() - t0) / 60
    return net, history


def attach_teacher_scores(clips: list[dict], teachers: tuple[str, ...] | list[str], spec,
                          progress: bool = True) -> None:
    """Set ``clip["teacher"]`` (F,) float32: the teachers' "any motion" probability, their logits averaged, each
    teacher run as live (band features, zero state at the clip's first hop). ``spec`` is the training data's
    FeatureSpec; a teacher built on other features is refused."""
    from tqdm import tqdm

    from uspd.detector.neural import NeuralDetector, logit_mean

    detectors = [NeuralDetector(t) for t in teachers]
    for path, det in zip(teachers, detectors):
        if det.spec != spec:
            raise UspdError(f"--teachers {path}: built on other features than the training data ({det.spec} vs {spec})")
    for clip in tqdm(clips, desc="teacher scores", unit="clip", disable=not progress, leave=False):
        x = clip["x"].astype(np.float32)
        e = clip["e"].astype(np.float32) if "e" in clip else None
        members = []
        for det in detectors:
            det.reset()
            members.append(det.process_bands(x, e).score)
        clip["teacher"] = logit_mean(members)


#: Length of the pre-roll that settles a clip's feature backgrounds (s of audio; twice the background's rise time,
#: so the running-mean warm-up is over and forgotten).
PREWARM_S = 60.0


def preroll_index(n_hops: int, length: int) -> np.ndarray:
    """Hop indices (length,) of a pre-roll made from a clip of ``n_hops`` hops: the clip played backwards and
    forwards in turn, ending backwards on hop 0, so the pre-roll runs into the clip's first hop without a jump."""
    if n_hops < 1 or length < 0:
        raise ValueError(f"preroll_index: need n_hops >= 1 and length >= 0, got {n_hops}, {length}")
    period = np.concatenate([np.arange(n_hops), np.arange(n_hops - 1, -1, -1)])  # forwards, then back to hop 0
    seq = np.tile(period, -(-length // len(period)))  # whole periods, at least length hops
    return seq[len(seq) - length:]


def add_model_inputs(clips: list[dict], spec, prewarm: float = 0.0, seed: int = 0, hop_s: float = 0.05) -> None:
    """Replace each clip's band features ``x`` (and echo band features ``e``, if the shards have them) by the model
    inputs: FeatureStream from the clip's first hop; ``e`` through an EchoStream as in the detector.

    ``prewarm``: for this share of the clips (drawn with ``seed``) the streams first run over a :data:`PREWARM_S`
    pre-roll of the clip itself (:func:`preroll_index`), so the clip starts with the backgrounds settled, as on a
    device that has been on for a while; otherwise they start cold, as on one just switched on. A live device is
    mostly in the settled state, but short training clips (20-40 s, where most people move) are nearly all in the
    cold one; without the pre-roll the model learns that movement is rare once the backgrounds have settled."""
    from uspd.detector.neural import EchoStream, FeatureStream

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x505257]))
    warm = rng.random(len(clips)) < prewarm
    n_pre = int(round(PREWARM_S / hop_s))
    for clip, w in zip(clips, warm):
        streams = {"x": FeatureStream(spec, hop_s)}
        if "e" in clip:
            streams["e"] = EchoStream(spec, hop_s)
        for key, stream in streams.items():
            if w:
                stream.process(clip[key][preroll_index(len(clip[key]), n_pre)])
            clip[key] = stream.process(clip[key]).astype(np.float16)


def train_and_export(data_dir: str | os.PathLike | list, out: str | os.PathLike, cfg: TrainConfig,
                     command: str = "", progress: bool = True, feature_overrides: dict | None = None
                     ) -> dict[str, Any]:
    """Load shards (``data_dir``: one folder or a list), train, export float + int8 ONNX and write the manifest. ``out`` is the int8 model path;
    the float graph goes beside it as ``<stem>.float.onnx``. ``feature_overrides``: FeatureSpec fields changed at
    training time (background tracker settings). Returns the manifest info."""
    from uspd.detector.neural import FeatureSpec
    from uspd.train.data import check_trainable, load_shards, read_manifest
    from uspd.train.export import export_float_onnx, quantize_int8, save_checkpoint, write_manifest

    feature_overrides = feature_overrides or {}
    out = Path(out)
    if out.suffix != ".onnx":
        raise UspdError(f"--out {out}: the model file name must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    dirs = [Path(d) for d in (data_dir if isinstance(data_dir, (list, tuple)) else [data_dir])]
    manifests = [read_manifest(d) for d in dirs]
    first = manifests[0]
    first_spec = FeatureSpec.from_dict(first.get("features", {}))  # a field a manifest lacks: its default then
    for d, m in zip(dirs, manifests):  # refuse tuning pools and other features before loading any shards
        check_trainable(d, m)
        if "features" in m and FeatureSpec.from_dict(m["features"]) != first_spec:
            raise UspdError(f"{d}: built with other features than {dirs[0]}")
    clips, loaded_h = [], []
    for d in dirs:
        part = load_shards(d)
        clips += part
        loaded_h.append(sum(float(c["meta"].get("duration_s", 0.0)) for c in part) / 3600.0)
    spec = FeatureSpec.from_dict({**first.get("features", {}), **feature_overrides})
    if spec.n_bands != clips[0]["x"].shape[2]:
        raise UspdError(f"{dirs[0]}: shards have {clips[0]['x'].shape[2]} bands, manifest says {spec.n_bands}")
    if cfg.teachers:
        attach_teacher_scores(clips, cfg.teachers, spec, progress)
    mixes = []
    if cfg.overlay_hours > 0:  # made from the training split's band features, so validation stays unseen
        from uspd.train.overlay import CONTEXT_S, SETTLE_S, overlay_clips, trim_mix

        mixes = overlay_clips(split_clips(clips, cfg.val_fraction, cfg.seed)[0], cfg.overlay_hours, cfg.seed)
        if not mixes:
            raise UspdError("--overlay: the data hold no clip with a major movement, or no negative clip of at least "
                            f"{SETTLE_S + CONTEXT_S:g} s with a confuser or a pet on most of it to lay one over")
    add_model_inputs(clips, spec, cfg.prewarm, cfg.seed)
    if mixes:  # the backgrounds run over the whole host, then the mix is cut around the movement
        add_model_inputs(mixes, spec)
        mixes = [trim_mix(m) for m in mixes]
    cfg = dataclasses.replace(cfg, level_bands=spec.n_bands if spec.level and not spec.level_shape else 0,
                              n_bands=spec.n_bands)
    net, history = train_model(clips, cfg, progress=progress, extra_train=mixes)
    float_path = out.with_name(out.stem + ".float.onnx")
    export_float_onnx(net, float_path)
    quantize_int8(float_path, out)
    save_checkpoint(net, out.with_suffix(".pt"))
    info = {
        "training": {
            "command": command,
            "data_seed": first.get("seed"),
            "data_sets": [{"dir": d.name, "seed": m.get("seed"), "hours": round(h, 3),
                           "kind_weights": m.get("kind_weights"), "command": m.get("command", "")} for d, m, h in zip(dirs, manifests, loaded_h)],
            "data_hours": round(sum(loaded_h), 3),
            "held_out_n_mics": first.get("held_out_n_mics"),
            "clips": len(clips),
            "history": history,
        },
    }
    if net.mover is not None:
        from uspd.train.readout import trained_head_readout

        info["mover_readout"] = trained_head_readout(net, cfg.mover_weight)
    write_manifest(out, net, spec, info)
    return info
