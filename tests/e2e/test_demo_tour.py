"""demos/tour.py, the Playwright demo script, runs against a bare `aipipe serve --dev` relay
and produces its screenshots and its video (as CI runs it)."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image, ImageChops

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _tour() -> ModuleType:
    sys.path.insert(0, str(ROOT / "demos"))  # tour.py imports screencast as a script would
    try:
        spec = importlib.util.spec_from_file_location("demo_tour", ROOT / "demos" / "tour.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # (dataclasses look their module up)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "demos"))
    return module


def _screencast() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_screencast",
                                                  ROOT / "demos" / "screencast.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


screencast = _screencast()
STATES = _tour().STATES
WIDTHS = {"desktop": 1280, "phone": 390}


def test_tour_saves_every_page_and_state_on_a_laptop_and_a_phone(dev_relay: str,
                                                                 tmp_path: Path) -> None:
    """The tour signs in, chats with the demo model, opens every page and state — picker,
    settings, code, dark theme, the scratchpad's editor and a run's streamed output with its
    cost, the dashboard loading and loaded, an empty dashboard, the admin page refused and as an
    admin — on a laptop and on a phone, saving one PNG per state and
    device (each as wide as the device, each different from the one before) and a video, with no
    page error and no request leaving the relay (--strict). Without Playwright's ffmpeg (as here)
    the video is an animated WebP from Chromium's screencast: many frames, timed as they were
    painted, from the home page to the admin page."""
    out = tmp_path / "tour"
    result = subprocess.run(
        [sys.executable, str(ROOT / "demos" / "tour.py"), "--url", dev_relay, "--out", str(out),
         "--strict"], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(STATES) >= 16 and {"scratchpad", "scratchpad-run"} <= set(STATES)
    for device, width in WIDTHS.items():
        names = sorted(p.name for p in (out / device).glob("*.png"))
        assert names == [f"{i:02d}-{state}.png" for i, state in enumerate(STATES, 1)]
        previous = None
        for name in names:
            data = (out / device / name).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
            with Image.open(io.BytesIO(data)) as image:
                assert image.width == width, (device, name, image.size)
                assert image.height >= (800 if device == "desktop" else 844), (device, name)
                pixels = image.convert("RGB")
            if previous is not None and previous.size == pixels.size:
                assert ImageChops.difference(previous, pixels).getbbox() is not None, name
            previous = pixels
    # The dark shot is dark: its average brightness is far below the light one's.
    light = Image.open(out / "desktop" / f"{STATES.index('reply') + 1:02d}-reply.png")
    dark = Image.open(out / "desktop" / f"{STATES.index('playground-dark') + 1:02d}-playground-dark.png")
    assert _brightness(dark) < _brightness(light) / 2
    assert result.stdout.count("model openai:aipipe-demo") == 2  # one chat per device
    assert result.stdout.count("reply cost $") == 2
    assert result.stdout.count("   run Done in ") == 2  # one scratchpad run per device...
    assert result.stdout.count(" · 1 call · $") == 2  # ...that called the demo model and cost

    videos = sorted(p.name for p in out.glob("tour.*"))
    if videos == ["tour.webm"]:  # Playwright's ffmpeg is installed: its own recorder ran
        assert (out / "tour.webm").read_bytes()[:4] == b"\x1a\x45\xdf\xa3"
        return
    assert videos == ["tour.webp"], result.stdout
    with Image.open(out / "tour.webp") as animation:
        assert animation.format == "WEBP" and animation.is_animated
        assert animation.size == (1280, 800)
        assert animation.n_frames > 5
        durations, frames = [], []
        for index in range(animation.n_frames):
            animation.seek(index)
            animation.load()
            durations.append(animation.info["duration"])
            frames.append(animation.convert("RGB"))
    assert all(d > 0 for d in durations)
    assert 1_000 < sum(durations) < 180_000  # real timings: the tour takes seconds
    assert ImageChops.difference(frames[1], frames[-1]).getbbox() is not None  # pages change


def _brightness(image: Image.Image) -> float:
    from PIL import ImageStat

    return ImageStat.Stat(image.convert("L")).mean[0]


def test_pick_frames_thins_bursts_and_keeps_their_last_paint() -> None:
    """Frames closer than 1/fps collapse into one that shows the burst's final paint at the
    burst's start time; out-of-order timestamps are sorted; a long recording is capped."""
    frame = screencast.Frame
    frames = [frame(10.0, b"a"), frame(10.05, b"b"), frame(9.8, b"z"), frame(10.5, b"c"),
              frame(10.52, b"d")]
    picked = screencast.pick_frames(frames, fps=10)
    assert [(f.at, f.jpeg) for f in picked] == [(9.8, b"z"), (10.0, b"b"), (10.5, b"d")]
    many = [frame(i * 0.2, bytes([i % 256])) for i in range(1000)]
    capped = screencast.pick_frames(many, fps=10, max_frames=100)
    assert 50 <= len(capped) <= 100 and capped[-1].jpeg == many[-1].jpeg


def test_durations_are_the_real_gaps_and_the_last_frame_holds() -> None:
    """Each frame lasts until the next one was painted; the last until the recording stopped,
    at least a second so the loop pauses on the final page."""
    assert screencast.durations_ms([1.0, 1.25, 3.0], end=5.0) == [250, 1750, 2000]
    assert screencast.durations_ms([1.0, 1.25], end=1.3) == [250, 1000]


def test_write_webp_keeps_the_frames_and_their_timing(tmp_path: Path) -> None:
    """JPEG frames become an animated WebP of the canvas size with the given timings; a frame of
    another size is fitted onto the canvas instead of breaking the encoder."""
    def jpeg(color: str, size: tuple[int, int] = (64, 40)) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", size, color).save(buffer, format="JPEG")
        return buffer.getvalue()

    frames = [screencast.Frame(0.0, jpeg("red")), screencast.Frame(0.3, jpeg("blue")),
              screencast.Frame(0.5, jpeg("green", (32, 20)))]
    path = tmp_path / "a.webp"
    assert screencast.write_webp(frames, 2.0, {"width": 64, "height": 40}, path) == 3
    with Image.open(path) as animation:
        assert animation.n_frames == 3 and animation.size == (64, 40)
        got = []
        for index in range(3):
            animation.seek(index)
            animation.load()
            got.append((animation.info["duration"], animation.convert("RGB").getpixel((5, 5))))
    assert [d for d, _ in got] == [300, 200, 1500]
    assert got[0][1][0] > 200 and got[1][1][2] > 200 and got[2][1][1] > 100
    assert screencast.write_webp([], 1.0, {"width": 64, "height": 40}, tmp_path / "b.webp") == 0
