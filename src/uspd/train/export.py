"""ONNX export (one hop in, one hop out), int8 dynamic quantization, and the JSON manifest beside the model."""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uspd.detector.model import DopplerNet, EnsembleNet, StepNet, count_params, macs_per_hop
from uspd.detector.neural import FeatureSpec, manifest_path
from uspd.errors import UspdError

OPSET = 17
HOPS_PER_S = 20.0


def export_float_onnx(net: DopplerNet | EnsembleNet, path: str | os.PathLike) -> Path:
    """Write the single-step float ONNX graph: inputs x (C, B) dB, h (1, H)[, e (n_echo,) dB when the network takes
    echo features]; outputs probs (2,), h_new (1, H)."""
    path = Path(path)
    step = StepNet(net).eval()
    args: tuple = (torch.zeros(4, net.n_in), torch.zeros(1, net.hidden))
    names = ["x", "h"]
    if net.n_echo:
        args += (torch.zeros(net.n_echo),)
        names.append("e")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(step, args, str(path), input_names=names, output_names=["probs", "h_new"],
                          dynamic_axes={"x": {0: "channels"}}, opset_version=OPSET, dynamo=False)
    return path


def save_checkpoint(net: DopplerNet, path: str | os.PathLike) -> Path:
    """The float torch weights and the architecture, for building ensembles after training (never shipped)."""
    path = Path(path)
    torch.save({"arch": net.arch, "state_dict": net.state_dict()}, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> DopplerNet:
    """A :class:`DopplerNet` from :func:`save_checkpoint`; one-line error for a missing or foreign file."""
    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UspdError(f"{path}: checkpoint not found (uspd train writes it beside the model as .pt)") from None
    except Exception:  # torch raises many types for a corrupt or foreign file
        raise UspdError(f"{path}: not a uspd training checkpoint (torch cannot read it)") from None
    try:
        net = DopplerNet(**ckpt["arch"])
        net.load_state_dict(ckpt["state_dict"])
    except Exception as exc:  # a torch file of something else: missing keys, other shapes
        raise UspdError(f"{path}: not a uspd training checkpoint ({type(exc).__name__})") from None
    return net.eval()


def build_ensemble(checkpoints: list[str | os.PathLike], out: str | os.PathLike, command: str = "") -> Path:
    """One streaming model from several trained ones (their ``.pt`` checkpoints, manifests beside them): an
    :class:`EnsembleNet` whose scores are the mean of the members' logits, exported float + int8 like a trained
    model, with a manifest that lists each member's training. Returns the int8 model path."""
    from uspd.detector.neural import feature_spec_from_manifest, load_manifest

    out = Path(out)
    if out.suffix != ".onnx":
        raise UspdError(f"--out {out}: the model file name must end in .onnx")
    if len(checkpoints) < 2:
        raise UspdError("--ensemble needs at least two checkpoints")
    members, manifests = [], []
    for ck in checkpoints:
        ck = Path(ck)
        if ck.with_suffix(".onnx").resolve() == out.resolve():
            raise UspdError(f"--out {out}: is the model of member {ck}; write the ensemble elsewhere")
        members.append(load_checkpoint(ck))
        manifests.append(load_manifest(ck.with_suffix(".onnx")))
    spec = feature_spec_from_manifest(manifests[0])
    for ck, m in zip(checkpoints[1:], manifests[1:]):
        if feature_spec_from_manifest(m) != spec:
            raise UspdError(f"{ck}: built on other features than {checkpoints[0]}")
    try:
        net = EnsembleNet(members).eval()
    except ValueError as exc:
        raise UspdError(f"--ensemble: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    float_path = out.with_name(out.stem + ".float.onnx")
    export_float_onnx(net, float_path)
    quantize_int8(float_path, out)
    trainings = [m.get("training", {}) for m in manifests]
    data_sets: list[dict] = []
    for t in trainings:
        data_sets += [d for d in t.get("data_sets", []) if d not in data_sets]
    info = {
        "architecture": f"ensemble of {len(members)} networks: the mean of their logits, states concatenated",
        "training": {
            "command": command,
            "data_seed": trainings[0].get("data_seed"),
            "data_sets": data_sets,
            "held_out_n_mics": trainings[0].get("held_out_n_mics"),
            "members": [{"checkpoint": Path(ck).name, "command": t.get("command", ""),
                         "arch": m.arch, "parameters": count_params(m),
                         "best_epoch": t.get("history", {}).get("best_epoch"),
                         "config": t.get("history", {}).get("config")}
                        for ck, t, m in zip(checkpoints, trainings, members)],
        },
    }
    write_manifest(out, net, spec, info)
    return out


def quantize_int8(float_path: str | os.PathLike, int8_path: str | os.PathLike) -> Path:
    """Dynamic 8-bit quantization of every MatMul weight (activations quantized per hop at run time).

    Weights are unsigned (uint8 x uint8). With signed weights, onnxruntime's uint8 x int8 kernel on x86 CPUs that
    have AVX2 but no VNNI (many home servers and NUCs) sums pairs of products in saturating 16-bit arithmetic
    (VPMADDUBSW), and the scores drift from the float model's: on an AMD EPYC with AVX2 only, the shipped network's
    int8 scores on a walker beside a vacuum differed by up to 0.13 (mean 0.030), against 0.031 (mean 0.007) with
    unsigned weights. uint8 x uint8 has no such path, so the same file scores alike on every CPU."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a generic pre-processing hint on the root logger
    try:
        quantize_dynamic(str(float_path), str(int8_path), weight_type=QuantType.QUInt8, per_channel=False,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
    return Path(int8_path)


def onnx_op_types(path: str | os.PathLike) -> list[str]:
    import onnx

    return sorted({n.op_type for n in onnx.load(str(path)).graph.node})


def model_figures(net: DopplerNet | EnsembleNet) -> dict[str, Any]:
    """Parameter count and MAC figures for the manifest (per hop and per second of audio, 2..8 mics)."""
    return {
        "parameters": count_params(net),
        "macs_per_hop": {str(c): macs_per_hop(net, c) for c in (2, 4, 8)},
        "macs_per_s_8_mics": int(macs_per_hop(net, 8) * HOPS_PER_S),
    }


def write_manifest(model_path: str | os.PathLike, net: DopplerNet | EnsembleNet, spec: FeatureSpec,
                   info: dict[str, Any]) -> Path:
    """Manifest beside ``model_path``: features, hop, carriers, training command/seeds, size figures, ``info``."""
    if net.n_echo and net.n_echo != spec.n_echo_inputs:
        raise UspdError(f"{Path(model_path).name}: the network takes {net.n_echo} echo inputs but the features "
                        f"give {spec.n_echo_inputs}")
    manifest = {
        "format": "uspd-nn-detector/1",
        "model_file": Path(model_path).name,
        "inputs": {"x": f"(n_channels, {net.n_in}) float32 dB, one channel per carrier x mic: "
                        f"{spec.describe_inputs()} (uspd.detector.neural.FeatureStream)",
                   "h": f"(1, {net.hidden}) float32 GRU state, zeros at start",
                   **({"e": f"({net.n_echo},) float32 dB: the same features of the front end's echo spectrum (Doppler "
                            "power not common to all mics)"
                            + (", then each band's z-score against the classic detector's floor "
                               "(uspd.detector.neural.FloorStream)" if spec.echo_floor else "")
                            + ", averaged over carriers (uspd.detector.neural.EchoStream)"} if net.n_echo else {})},
        "outputs": {"probs": "(2,) float32: [P(any motion), P(major | motion)]", "h_new": "next state"},
        "features": {**spec.to_dict(), "n_bands": spec.n_bands, "sound_speed_m_s": 343.2,
                     "velocity": "v = df * c / (2 * f0)"},
        "hop_s": 0.05,
        "carriers_supported": "any carrier (features are on a velocity grid): trained on 32-45 kHz carriers at "
                              "96 kHz and 18-22 kHz carriers at 48 kHz",
        "mics_supported": "2-8 (permutation-invariant pooling over channels)",
        "state_size": net.hidden,
        "quantization": "8-bit weights (onnxruntime quantize_dynamic, MatMul, uint8 x uint8), activations quantized "
                        "per hop",
        **model_figures(net),
    }
    manifest.update(info)
    mpath = manifest_path(Path(model_path))
    mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return mpath


def run_onnx_sequence(path: str | os.PathLike, feats: np.ndarray, echo: np.ndarray | None = None) -> np.ndarray:
    """Run an exported step graph over feats (T, C, B) [and echo (T, n_echo)] from zero state; returns probs (T, 2).
    For checks/tests."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    hidden = sess.get_inputs()[1].shape[1]
    h = np.zeros((1, hidden), np.float32)
    out = np.empty((feats.shape[0], 2), np.float32)
    for i in range(feats.shape[0]):
        inputs = {"x": np.ascontiguousarray(feats[i], dtype=np.float32), "h": h}
        if echo is not None:
            inputs["e"] = np.ascontiguousarray(echo[i], dtype=np.float32)
        out[i], h = sess.run(None, inputs)
    return out


def evaluation_summary(eval_result: dict[str, Any]) -> dict[str, Any]:
    """The side-by-side table of a ``uspd evaluate --json`` result, per detector: recalls (major also settled),
    delays, FA/h (total, settled and by confuser), recall at matched false-alarm rates."""
    def r(x: Any) -> Any:
        return round(float(x), 4) if isinstance(x, float) else x

    table: dict[str, Any] = {}
    for name, d in eval_result.get("detectors", {}).items():
        major, minor, fa = d.get("major", {}), d.get("minor", {}), d.get("false_alarms", {})
        table[name] = {
            "major_recall": r(major.get("recall")),
            "major_recall_by_distance": {k: r(v.get("recall")) for k, v in major.get("by_distance", {}).items()},
            "major_delay_s": {k: r(v) for k, v in major.get("delay_s", {}).items()},
            **({"major_recall_settled": r(major["settled"].get("recall"))} if major.get("settled") else {}),
            "far_detected": r(major.get("far", {}).get("recall")),
            "minor_recall": r(minor.get("recall")),
            "minor_recall_by_action": {k: r(v.get("recall")) for k, v in minor.get("by_action", {}).items()},
            "fa_per_h": r(fa.get("fa_per_h")),
            "negative_h": r(fa.get("negative_h")),
            **({"fa_per_h_settled": r(fa["settled"].get("fa_per_h"))} if fa.get("settled") else {}),
            "fa_per_h_by_confuser": {k: r(v.get("fa_per_h")) for k, v in fa.get("by_confuser", {}).items()},
            "matched_fa": [{k: r(v) for k, v in m.items() if k in _SWEEP_KEYS} for m in d.get("matched_fa", [])],
            "fa_at_recall": [{k: r(v) for k, v in m.items() if k in _SWEEP_KEYS + ("major_recall_level",)}
                             for m in d.get("fa_at_recall", [])],
            "real_time_factor": r(d.get("real_time_factor")),
        }
    return {"eval_dir": eval_result.get("dir"), "recordings": eval_result.get("recordings"),
            "seed_roles": eval_result.get("seed_roles"), "presence_config": eval_result.get("presence"),
            "detectors": table}


#: Keys of an operating point (``uspd evaluate --matched-fa``) kept in the manifest.
_SWEEP_KEYS = ("target_fa_per_h", "threshold", "sensitive_threshold", "debounce_hops", "fa_per_h", "major_recall",
               "minor_recall", "entry_recall", "delay_median_s")


def record_evaluation(model_path: str | os.PathLike, eval_json: str | os.PathLike, name: str) -> Path:
    """Store the summary of ``uspd evaluate --json`` output ``eval_json`` as ``evaluation[name]`` in the manifest."""
    mpath = manifest_path(Path(model_path))
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        result = json.loads(Path(eval_json).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UspdError(f"cannot record evaluation: {exc}") from None
    manifest.setdefault("evaluation", {})[name] = evaluation_summary(result)
    mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return mpath


def record_calibration(model_path: str | os.PathLike, tuned_threshold: float, note: str = "",
                       tuned_sensitive: float | None = None) -> Path:
    """Store ``calibration`` in the manifest of ``model_path``: the logit map that takes ``tuned_threshold`` (a raw
    score threshold chosen on tuning data) onto the default ``[presence] threshold`` and, if given,
    ``tuned_sensitive`` onto the default ``sensitive_threshold`` (:func:`uspd.detector.neural.calibration_map`), so the
    shared defaults run the model at its tuned operating point. It replaces any earlier one (it is relative to the
    raw scores)."""
    from uspd.detector.neural import calibration_map, load_manifest
    from uspd.presence.tracker import PresenceConfig

    manifest = load_manifest(Path(model_path))
    presence = PresenceConfig()
    presence_sensitive = None if tuned_sensitive is None else presence.sensitive_threshold
    scale, offset = calibration_map(tuned_threshold, presence.threshold, tuned_sensitive, presence_sensitive)
    manifest["calibration"] = {
        "score_logit_offset": round(offset, 6), "score_logit_scale": round(scale, 6),
        "tuned_threshold": tuned_threshold, "presence_threshold": presence.threshold,
        "tuned_sensitive_threshold": tuned_sensitive,
        "presence_sensitive_threshold": presence_sensitive,
        "meaning": "score = sigmoid(score_logit_scale * logit(raw score) + score_logit_offset); a raw score at "
                   "tuned_threshold becomes presence_threshold (and one at tuned_sensitive_threshold, if set, "
                   "presence_sensitive_threshold)",
        "chosen_on": note,
    }
    mpath = manifest_path(Path(model_path))
    mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return mpath
