"""Record a page as an animated WebP with Chromium's own screencast — the tour's video when
Playwright's ffmpeg is not installed (it cannot be downloaded everywhere), needing nothing else.

Chromium sends a JPEG frame over CDP (`Page.screencastFrame`) each time the page repaints, with
the time it was painted; each frame must be acknowledged before the next comes. Frames are kept
as JPEG bytes while the page runs and decoded only when the WebP is written (with Pillow), each
shown for as long as it was on screen. Bursts (a reply streaming in) are thinned to at most
`fps` frames a second, keeping the last paint of each burst, and a long recording to
`max_frames` (decoding holds ~4 MB a frame at 1280×800 while the WebP is encoded).
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import CDPSession, Page

FPS = 10
MAX_FRAMES = 240
QUALITY = 90  # JPEG quality asked of Chromium, and the WebP's (at 80, faint ghosts of earlier pages stay)


@dataclass(frozen=True, slots=True)
class Frame:
    at: float  # seconds (the browser's wall clock, as time.time())
    jpeg: bytes


def pick_frames(frames: list[Frame], fps: float = FPS, max_frames: int = MAX_FRAMES) -> list[Frame]:
    """Frames in time order, none closer than 1/fps to the previous one: a frame that comes too
    soon replaces the previous one but keeps its time (so a burst ends on its final paint).
    When that still leaves more than `max_frames`, the gap grows until it does not."""
    ordered = sorted(frames, key=lambda f: f.at)  # CDP timestamps can arrive slightly out of order
    gap = 1 / fps
    while True:
        kept: list[Frame] = []
        for frame in ordered:
            if kept and frame.at - kept[-1].at < gap:
                kept[-1] = Frame(kept[-1].at, frame.jpeg)
            else:
                kept.append(frame)
        if len(kept) <= max_frames:
            return kept
        gap *= 1.5


def durations_ms(times: list[float], end: float, last_ms: int = 1000) -> list[int]:
    """How long each frame stays, in ms: until the next frame, the last one until `end` (when
    the recording stopped; at least `last_ms`, so the loop pauses on the final page)."""
    stops = [*times[1:], max(end, times[-1] + last_ms / 1000)]
    return [max(1, round((stop - start) * 1000)) for start, stop in zip(times, stops, strict=True)]


@dataclass
class Screencast:
    """Records `page` (and the pages it navigates to) from `start()` to `stop()`."""

    page: Page
    size: dict[str, int]  # the viewport: every frame is drawn on a canvas this big
    frames: list[Frame] = field(default_factory=list)
    stopped_at: float = 0.0
    _session: CDPSession | None = None

    def start(self) -> None:
        self._session = self.page.context.new_cdp_session(self.page)
        self._session.on("Page.screencastFrame", self._on_frame)
        self._session.send("Page.startScreencast", {
            "format": "jpeg", "quality": QUALITY,
            "maxWidth": self.size["width"], "maxHeight": self.size["height"]})

    def _on_frame(self, params: dict[str, Any]) -> None:
        if self._session is None:  # a frame painted as the recording stopped
            return
        # Chromium sends the next frame only after this one is acknowledged.
        self._session.send("Page.screencastFrameAck", {"sessionId": params["sessionId"]})
        meta = params["metadata"]
        if (meta.get("deviceWidth"), meta.get("deviceHeight")) != (self.size["width"],
                                                                   self.size["height"]):
            return  # painted while a full-page screenshot stretched the page: not what was shown
        self.frames.append(Frame(meta["timestamp"], base64.b64decode(params["data"])))

    def stop(self) -> None:
        """Stop recording (call it before the page's context closes)."""
        self.stopped_at = time.time()
        if self._session is not None:
            self._session.send("Page.stopScreencast")
            self._session.detach()
            self._session = None

    def save(self, path: Path) -> int:
        """Write the animated WebP; returns its number of frames (0: nothing was painted)."""
        return write_webp(pick_frames(self.frames), self.stopped_at or time.time(), self.size,
                          path)


def write_webp(frames: list[Frame], end: float, size: dict[str, int], path: Path) -> int:
    if not frames:
        return 0
    from PIL import Image, ImageOps  # only the video fallback needs Pillow

    canvas_size = (size["width"], size["height"])
    images = []
    for frame in frames:
        image = Image.open(io.BytesIO(frame.jpeg)).convert("RGB")
        if image.size != canvas_size:  # (Chromium scales frames to fit the size asked for)
            image = ImageOps.pad(image, canvas_size, color="white", centering=(0, 0))
        images.append(image)
    durations = durations_ms([f.at for f in frames], end)
    images[0].save(path, format="WEBP", save_all=True, append_images=images[1:],
                   duration=durations, loop=0, quality=QUALITY, method=4)
    return len(images)
