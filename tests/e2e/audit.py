"""What a page looks like to a person, measured in the browser: horizontal scrolling, text
drawn over other text, text cut off by a box it does not fit in, and accessibility (axe-core
from web/node_modules, evaluated in the page — nothing is fetched from elsewhere).
Used by the layout and accessibility tests and by demos/tour.py."""

from __future__ import annotations

import functools
from pathlib import Path

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Returns a list of problems (strings). Text boxes are measured per line (Range.getClientRects),
# each clipped to the ancestors that clip it (overflow other than visible). Two boxes overlap when
# their visible parts intersect by more than 2 px both ways and nothing opaque lies between them
# at that point (an open menu over the page is not "overlapping text"). A box is cut when under
# 90% of it shows and what clips it cannot be scrolled (overflow hidden or clip, not auto/scroll).
LAYOUT_JS = r"""
() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    problems.push(`page scrolls sideways: ${root.scrollWidth}px wide in ${root.clientWidth}px`);
  }
  const clipped = (el) => {
    // [visible rect, does a non-scrollable ancestor clip it?] for an element's content
    let rect = {left: -1e9, top: -1e9, right: 1e9, bottom: 1e9};
    const clippers = [];
    for (let a = el; a && a !== document.documentElement; a = a.parentElement) {
      const s = getComputedStyle(a);
      const ox = s.overflowX, oy = s.overflowY;
      if (ox !== "visible" || oy !== "visible") {
        const r = a.getBoundingClientRect();
        clippers.push({el: a, scroll: /auto|scroll/.test(ox + oy)});
        rect = {left: Math.max(rect.left, r.left), top: Math.max(rect.top, r.top),
                right: Math.min(rect.right, r.right), bottom: Math.min(rect.bottom, r.bottom)};
      }
    }
    return {rect, clippers};
  };
  const viewport = {left: 0, top: 0, right: root.clientWidth, bottom: window.innerHeight};
  const fixedOrSticky = (el) => {
    for (let a = el; a; a = a.parentElement) {
      const p = getComputedStyle(a).position;
      if (p === "fixed" || p === "sticky") return true;
    }
    return false;
  };
  const boxes = [];
  const skip = (el) => !el || el.closest(".sr-only, .skeleton, script, style, template, title") ||
    !el.checkVisibility({opacityProperty: true, visibilityProperty: true});
  const add = (el, r, text) => {
    if (r.width < 1 || r.height < 1) return;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) return;  // visually hidden, for screen readers only
    const {rect, clippers} = clipped(el);
    const v = {left: Math.max(r.left, rect.left), top: Math.max(r.top, rect.top),
               right: Math.min(r.right, rect.right), bottom: Math.min(r.bottom, rect.bottom)};
    const shown = Math.max(0, v.right - v.left) * Math.max(0, v.bottom - v.top);
    const whole = r.width * r.height;
    if (shown < whole * 0.9 && !clippers.some((c) => c.scroll)) {
      problems.push(`text cut off: "${text}" (${Math.round(100 * shown / whole)}% shows)`);
    }
    if (r.right > viewport.right + 1 && !clippers.length) {
      problems.push(`text past the right edge: "${text}"`);
    }
    if (shown > 0) boxes.push({el, v, text});
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    if (!text || skip(n.parentElement) || n.parentElement.closest("svg")) continue;
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) add(n.parentElement, r, text.slice(0, 40));
  }
  for (const t of document.querySelectorAll("svg text")) {
    const text = t.textContent.trim();
    if (text && !skip(t)) add(t, t.getBoundingClientRect(), text.slice(0, 40));
  }
  const opaque = (el) => {
    const c = getComputedStyle(el).backgroundColor;
    return !(c === "transparent" || /rgba\(.*, 0\)$/.test(c));
  };
  const covered = (top, other) => {
    // Is `other` hidden under an opaque box that holds `top` (a menu, a dialog, a sticky bar)?
    for (let a = top; a && !a.contains(other); a = a.parentElement) if (opaque(a)) return true;
    return false;
  };
  const seen = new Set();
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.el === b.el) continue;
      const w = Math.min(a.v.right, b.v.right) - Math.max(a.v.left, b.v.left);
      const h = Math.min(a.v.bottom, b.v.bottom) - Math.max(a.v.top, b.v.top);
      if (w <= 2 || h <= 2) continue;
      const x = Math.max(a.v.left, b.v.left) + w / 2, y = Math.max(a.v.top, b.v.top) + h / 2;
      const hit = document.elementFromPoint(x, y);
      if (hit && a.el.contains(hit) && covered(hit, b.el)) continue;
      if (hit && b.el.contains(hit) && covered(hit, a.el)) continue;
      const apart = (h) => !a.el.contains(h) && !b.el.contains(h) && !h.contains(a.el) && !h.contains(b.el);
      if (hit && apart(hit)) continue;  // something else is on top: neither text shows there
      if (fixedOrSticky(a.el) !== fixedOrSticky(b.el)) continue;  // scrolled under the header
      const key = `"${a.text}" / "${b.text}"`;
      if (!seen.has(key)) { seen.add(key); problems.push(`overlapping text: ${key}`); }
    }
  }
  return problems;
}
"""


def layout_problems(page: Page) -> list[str]:
    """Sideways scrolling, overlapping text and cut-off text on the page as it is now."""
    return page.evaluate(LAYOUT_JS)


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts, one line each (rule, impact, where)."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.evaluate(_axe_source())
    found = page.evaluate(
        """() => axe.run(document, {resultTypes: ["violations"]}).then((r) => r.violations.map(
             (v) => ({id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))})))""")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(v['nodes'])}"
            for v in found if v["impact"] in impacts]
