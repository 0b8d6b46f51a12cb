"""The web/py modules under MicroPython itself (the interpreter the light pages run on), via
Node and the npm package's micropython.mjs: they import, and their core answers match."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tools import need

ROOT = Path(__file__).resolve().parents[1]
WEB_PY = ROOT / "web" / "py"
MPY = ROOT / "web/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs"
PURE = ("money", "handoff", "session", "snippets", "markup")  # pagekit and *_page need a browser

# Loads MicroPython, copies web/py/*.py into its filesystem, runs stdin, prints the result.
RUNNER = """
import fs from "fs";
// argv[1] is a dummy: micropython.mjs runs its own CLI when argv[1] names it.
const [mjs, dir] = process.argv.slice(2);
const { loadMicroPython } = await import(mjs);
const lines = [];
const mp = await loadMicroPython({ stdout: (line) => lines.push(line) });
for (const f of fs.readdirSync(dir)) {
  if (f.endsWith(".py")) mp.FS.writeFile("/" + f, fs.readFileSync(dir + "/" + f));
}
try {
  mp.runPython("import sys\\nsys.path.insert(0, '/')\\n" + fs.readFileSync(0, "utf8"));
} catch (e) {
  console.error(e.type || e.name, String(e.message).slice(0, 3000));
  process.exit(1);
}
console.log(lines.join("\\n"));
"""

PROGRAM = """
import json
import money, handoff, session, snippets
out = {
    "implementation": __import__("sys").implementation.name,
    "usd": [money.usd(money.pico("0.1")), money.usd(money.pico(0.1)),
            money.usd(money.pico(1.23456789)), money.usd(None), money.usd(money.pico("abc"))],
    "summary": money.spend_summary({"cost": 0.025, "limit": "0.1", "days": 7})["text"],
    "budget": money.budget_text({"limit": "0.10", "days": 7}),
    "decide": [handoff.decide("https:", "https://A.example:443", "http://127.0.0.1:8787",
                              ["https://a.example"]),
               handoff.decide("javascript:", "null", "http://x", [])],
    "quote": handoff.quote("a+b@x.com é/?"),
    "handoff": handoff.handoff_url("http://x/#r", {"token": "t.o.k", "email": "a@b.c"}),
    "profile": session.load(session.dump({"token": "t", "email": "a@b.c", "name": "Zoë"})),
    "snippet_ids": [s[0] for s in snippets.all_snippets("http://h", "tok")],
    "curl": snippets.all_snippets("http://h", "tok", "demo")[0][2],
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    need(bool(node) and MPY.is_file(), "node and web/node_modules (bash scripts/setup.sh)")
    assert node is not None
    return node


def test_pure_modules_run_under_micropython(node: str) -> None:
    """Each pure module imports under MicroPython and answers as it does under CPython."""
    import importlib.util

    result = subprocess.run(
        [node, "--input-type=module", "-e", RUNNER, "runner", str(MPY), str(WEB_PY)],
        input=PROGRAM, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["implementation"] == "micropython"

    cpython = {}
    for name in PURE:
        spec = importlib.util.spec_from_file_location(f"webpy_mpy_{name}", WEB_PY / f"{name}.py")
        assert spec and spec.loader
        cpython[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cpython[name])
    money, handoff = cpython["money"], cpython["handoff"]
    assert got["usd"] == ["$0.10", "$0.10", "$1.2346", "—", "$0.00"]
    assert got["summary"] == money.spend_summary({"cost": 0.025, "limit": "0.1", "days": 7})["text"]
    assert got["budget"] == "$0.10 per user over 7 days"
    assert got["decide"] == ["allowed", "invalid"]
    assert got["quote"] == handoff.quote("a+b@x.com é/?") == "a%2Bb%40x.com%20%C3%A9%2F%3F"
    assert got["handoff"] == "http://x/#r&aipipe_token=t.o.k&aipipe_email=a%40b.c"
    assert got["profile"] == {"token": "t", "email": "a@b.c", "name": "Zoë"}
    assert got["snippet_ids"] == ["curl", "python", "notebook", "llm", "js"]
    assert got["curl"] == cpython["snippets"].all_snippets("http://h", "tok", "demo")[0][2]


def test_every_micropython_page_compiles_under_micropython(node: str) -> None:
    """The page glue of every MicroPython page (which needs a browser to run) at least parses
    under MicroPython, whose grammar is narrower than CPython's — a slip would only show in the
    browser."""
    from relay.routes.pages import PAGES

    files = sorted({name for p in PAGES if p.interpreter == "mpy" for name in (p.script, *p.modules)})
    program = f"""
for name in {files!r}:
    compile(open("/" + name).read(), name, "exec")
    print("compiled", name)
"""
    result = subprocess.run(
        [node, "--input-type=module", "-e", RUNNER, "runner", str(MPY), str(WEB_PY)],
        input=program, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    compiled = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("compiled")}
    assert compiled == set(files)
