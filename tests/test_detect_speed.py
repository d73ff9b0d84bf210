"""benchmarks/detect_speed.py: its detectors run with the config given (a candidate model's speed is measured too)."""
from __future__ import annotations

from pathlib import Path

from conftest import load_benchmark


def test_the_config_reaches_uspd_detect_and_the_streaming_pipeline(tmp_path):
    speed = load_benchmark("detect_speed")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[detector.hybrid]\nnn_weight = 0.3\n")
    assert f"'--config', {str(cfg)!r}" in speed.detect_code(Path("r.wav"), "hybrid", cfg)
    assert "--config" not in speed.detect_code(Path("r.wav"), "hybrid")
    assert repr(str(cfg)) in speed.stream_code(60.0, "nn", cfg)
    assert speed.pipeline("hybrid", cfg).config.detector.hybrid.nn_weight == 0.3
    assert speed.pipeline("hybrid").config.detector.hybrid.nn_weight != 0.3
