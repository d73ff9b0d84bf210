"""The room simulator: declarative scenes (``scene.py``) rendered to mic signals (``render.py``).

``SceneRenderer(load_scene("walk-in"), seed=0).render(n)`` streams audio; ``render_to_file`` writes a recording.
"""
from uspd.simulate.render import SceneRenderer, render_to_file
from uspd.simulate.scene import PRESETS, Scene, SceneError, load_scene, random_scene_spec

__all__ = ["Scene", "SceneError", "PRESETS", "load_scene", "random_scene_spec", "SceneRenderer", "render_to_file"]
