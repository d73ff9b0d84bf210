"""The room simulator: declarative scenes (``scene.py``) rendered to mic signals (``render.py``).

``SceneRenderer(load_scene("walk-in"), seed=0).render(n)`` streams audio; ``render_to_file`` writes a recording.
The renderer (and scipy) is imported on first use, so commands that only list presets start fast.
"""
from uspd.simulate.scene import PRESETS, Scene, SceneError, load_scene, random_scene_spec

__all__ = ["Scene", "SceneError", "PRESETS", "load_scene", "random_scene_spec", "SceneRenderer", "render_to_file"]


def __getattr__(name: str):
    if name in ("SceneRenderer", "render_to_file"):
        from uspd.simulate import render

        return getattr(render, name)
    raise AttributeError(f"module 'uspd.simulate' has no attribute {name!r}")
