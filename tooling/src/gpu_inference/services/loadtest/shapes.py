"""Load shapes: find one by name or path, and preview its schedule before a run.

A shape is a locust LoadTestShape subclass, one per file. `probe_shape` imports the file in
a separate Python process (locust monkey-patches whatever imports it), steps its clock
second by second and records every change of tick(): the run's schedule and its length.
That is how a shape file never seen before is checked before any traffic is sent.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from gpu_inference.errors import ConfigError
from gpu_inference.paths import loadtest_dir

log = logging.getLogger(__name__)

#: Longest schedule a probe steps through (a shape that never ends is reported as such).
PROBE_HORIZON_S = 24 * 3600


class Step(BaseModel):
    """From t_s on, the shape asks for `users` users spawned at `spawn_rate` per second."""

    t_s: float
    users: int
    spawn_rate: float


class ShapeSchedule(BaseModel):
    path: str
    class_name: str
    steps: list[Step]
    #: When tick() first returns None; None if it never did within the horizon.
    duration_s: float | None
    peak_users: int
    user_classes: list[str] = []


def bundled_shapes() -> dict[str, Path]:
    folder = loadtest_dir() / "shapes"
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def resolve_shape(name_or_path: str) -> Path:
    """A bundled shape's name (step, ramp, spike, diurnal) or a path to a shape file."""
    bundled = bundled_shapes()
    if name_or_path in bundled:
        return bundled[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.suffix == ".py" or os.sep in name_or_path:
        if not path.is_file():
            raise ConfigError(
                "--shape", f"{path} not found", "pass an existing .py file with one LoadTestShape class"
            )
        if path.suffix != ".py":
            raise ConfigError(
                "--shape", f"{path} is not a .py file", "a shape file is Python (a LoadTestShape subclass)"
            )
        return path.resolve()
    raise ConfigError(
        "--shape",
        f"unknown shape '{name_or_path}'",
        f"use one of {', '.join(bundled) or '(none found)'} or a path to a shape file",
    )


def users_file(api: str) -> Path:
    path = loadtest_dir() / "users" / f"{api}.py"
    if not path.is_file():
        raise ConfigError("api", f"no locust users for '{api}' ({path} missing)", "use openai, tgi or triton")
    return path


def preview_shapes(
    cases: Sequence[tuple[Path, Mapping[str, str]]], *, timeout_s: float = 120.0
) -> list[ShapeSchedule | str]:
    """Preview several shapes in one child process (importing locust costs about a second).

    Each result is the schedule, or the error text of a file that failed to load or tick.
    """
    request = {
        "horizon": PROBE_HORIZON_S,
        "cases": [{"path": str(path), "env": dict(env)} for path, env in cases],
    }
    cmd = [sys.executable, "-m", "gpu_inference.services.loadtest.shape_probe"]
    try:
        proc = subprocess.run(  # argument list, our own interpreter
            cmd, input=json.dumps(request), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(
            "--shape",
            f"previewing the schedule took over {timeout_s:g}s",
            "make tick() cheap (it runs every second)",
        ) from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise ConfigError("--shape", f"the shape preview failed:\n{tail}", "fix the shape file")
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return [str(r["error"]) if "error" in r else ShapeSchedule.model_validate(r) for r in results]


def probe_shape(path: Path, env: Mapping[str, str]) -> ShapeSchedule:
    """Run the shape's tick() over simulated time in a child process. ConfigError if it is broken."""
    result = preview_shapes([(path, env)])[0]
    if isinstance(result, str):
        raise ConfigError("--shape", f"{path} failed to load or tick:\n{result}", "fix the shape file")
    return result


def summarize(schedule: ShapeSchedule) -> str:
    length = (
        f"{schedule.duration_s:.0f}s" if schedule.duration_s is not None else "no end (runs until stopped)"
    )
    return f"{schedule.class_name} from {schedule.path}: peak {schedule.peak_users} users, length {length}"


def _probe_one(path: Path, horizon: float, index: int) -> dict[str, object]:
    """Import one shape file and step its clock (runs inside the probe process)."""
    import importlib.util
    import inspect
    import time

    from locust import LoadTestShape, User

    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"_gpu_inference_shape_{index}", path)
        if spec is None or spec.loader is None:
            return {"error": f"cannot import {path}"}
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    shapes = [
        v
        for v in vars(module).values()
        if inspect.isclass(v) and issubclass(v, LoadTestShape) and not getattr(v, "abstract", True)
    ]
    users = [
        n
        for n, v in vars(module).items()
        if inspect.isclass(v) and issubclass(v, User) and v.abstract is False
    ]
    if len(shapes) != 1:
        names = ", ".join(s.__name__ for s in shapes) or "none"
        return {"error": f"{path} must define exactly one LoadTestShape subclass, found: {names}"}
    shape = shapes[0]()
    steps: list[dict[str, float]] = []
    last: tuple[int, float] | None = None
    duration = None
    t = 0.0
    while t <= horizon:
        shape.start_time = time.perf_counter() - t
        result = shape.tick()
        if result is None:
            duration = t
            break
        current = (int(result[0]), float(result[1]))
        if current != last:
            steps.append({"t_s": t, "users": current[0], "spawn_rate": current[1]})
            last = current
        t += 1.0
    return {
        "path": str(path),
        "class_name": shapes[0].__name__,
        "steps": steps,
        "duration_s": duration,
        "peak_users": max((int(s["users"]) for s in steps), default=0),
        "user_classes": users,
    }


def _main() -> int:
    """Entry point of `python -m gpu_inference.services.loadtest.shape_probe` (JSON request on stdin)."""
    import traceback

    request = json.loads(sys.stdin.read())
    results: list[dict[str, object]] = []
    for i, case in enumerate(request["cases"]):
        saved = dict(os.environ)
        os.environ.update(case["env"])
        try:
            results.append(_probe_one(Path(case["path"]).resolve(), float(request["horizon"]), i))
        except Exception:  # report any error of user code as text; the parent raises it
            results.append({"error": "\n".join(traceback.format_exc().strip().splitlines()[-4:])})
        finally:
            os.environ.clear()
            os.environ.update(saved)
    print(json.dumps(results))
    return 0
