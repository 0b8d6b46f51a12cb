"""/scratchpad: write Python that calls models through AI Pipe, run it, see its output and what
it cost. This page is light (MicroPython, ready in well under a second); the Python you run is
Pyodide in a Web Worker (web/static/scratchpad/worker.mjs + scratch_worker.py), started in the
background once the page is idle or on the first Run, so a long cell never freezes the page.
Stop terminates that worker and starts a fresh one. Logic: scratch.py; this file wires the page.
"""

import json

import js
import money
import pagekit as kit
import scratch
import session
from pyscript.ffi import create_proxy

page = {
    "profile": None,
    "models": ["", ""],  # [default, second] (scratch.default_models)
    "worker": None,
    "ready": False,
    "loading_since": 0,
    "timer": None,
    "step": "",
    "run_id": 0,
    "running": False,
    "run_started": 0,
    "shown": 0,  # characters in the output area
}


def js_object(value):
    """A Python dict/list as a plain JS value (the same in MicroPython and Pyodide)."""
    return js.JSON.parse(json.dumps(value))


def now() -> float:
    return float(js.performance.now()) / 1000


def editor():
    """editor.mjs's API once that module has run, else None (MicroPython raises on a missing
    property: the module may load after this script)."""
    return getattr(js.window, "aipipeEditor", None)


# -- the worker ------------------------------------------------------------------------------
def worker_config() -> dict:
    node = js.document.getElementById("aipipe-worker")
    return json.loads(node.textContent) if node else {}


def ensure_worker() -> None:
    """Start Python (Pyodide) in a fresh worker unless one is there."""
    if page["worker"] is not None or page["profile"] is None:
        return
    config = worker_config()
    worker = js.Worker.new(config["script"], js_object({"type": "module"}))
    worker.onmessage = create_proxy(on_message)
    worker.onerror = create_proxy(on_worker_error)
    page["worker"], page["ready"] = worker, False
    page["loading_since"] = now()
    show_progress("Starting…")
    worker.postMessage(js_object({
        "type": "start", "runtime": config["runtime"], "modules": config["modules"],
        "setup": {"token": page["profile"]["token"], "base_url": kit.origin(),
                  "model": page["models"][0]},
    }))
    kit.spawn(send_wasm(worker, config["runtime"] + "pyodide.asm.wasm"))


async def send_wasm(worker, url) -> None:
    """Compile Pyodide's WebAssembly here and hand the module to the worker: Chromium caches the
    compiled code of a page's module (not a worker's), so the next visit starts faster."""
    module = None
    try:
        module = await js.WebAssembly.compileStreaming(js.fetch(url))
    except Exception as error:  # a JS error: the worker compiles it itself, as Pyodide does
        js.console.warn("scratchpad: compiling Pyodide in the page failed: " + str(error))
    message = js_object({"type": "wasm"})
    message.module = module
    worker.postMessage(message)


def show_progress(text) -> None:
    page["step"] = text
    kit.show("progress")
    tick()
    if page["timer"] is None:
        page["timer"] = js.setInterval(create_proxy(lambda *_a: tick()), 200)


def tick() -> None:
    kit.set_text("progress-text", scratch.loading_text(page["step"],
                                                       now() - page["loading_since"]))


def hide_progress() -> None:
    if page["timer"] is not None:
        js.clearInterval(page["timer"])
        page["timer"] = None
    kit.hide("progress")


def on_message(event) -> None:
    message = json.loads(js.JSON.stringify(event.data))
    kind = message.get("type")
    if kind == "out":
        if message.get("id") == page["run_id"]:
            append(message.get("text", ""), message.get("stream") == "stderr")
    elif kind == "progress":
        show_progress(message.get("text", ""))
    elif kind == "ready":
        page["ready"] = True
        hide_progress()
        kit.set_text("python-status", scratch.ready_text(message))
        kit.node("python-status").dataset.wasm = message.get("wasm") or ""  # who compiled it
    elif kind == "done":
        if message.get("id") == page["run_id"]:
            finish(scratch.run_summary(message), message.get("ok"))
    elif kind == "failed":
        python_failed("Python could not start: " + message.get("text", ""))


def on_worker_error(event) -> None:
    event.preventDefault()
    python_failed("Python could not start: " + str(event.message or "the worker failed"))


def python_failed(text) -> None:
    hide_progress()
    kit.set_text("python-status", text)
    if page["worker"] is not None:
        page["worker"].terminate()
        page["worker"] = None
    if page["running"]:
        finish("Not run: " + text, False)


# -- running ---------------------------------------------------------------------------------
def run(*_args) -> None:
    if page["running"] or page["profile"] is None:
        return
    ensure_worker()
    page["run_id"] += 1
    clear_output()
    kit.set_text("run-cost", "Running…")
    kit.node("run-cost").className = "run-cost muted"
    set_running(True)
    # On a phone the output is under the editor: bring it into view (on a laptop it is beside).
    kit.node("output").scrollIntoView(js_object({"block": "nearest"}))
    page["run_started"] = now()
    page["worker"].postMessage(js_object({
        "type": "run", "id": page["run_id"], "code": str(editor().code),
        "token": page["profile"]["token"], "model": page["models"][0],
    }))


def stop(*_args) -> None:
    """Stop a running cell: end its worker (the only way to stop `while True: pass` without
    SharedArrayBuffer) and start Python afresh."""
    if not page["running"]:
        return
    page["worker"].terminate()
    page["worker"] = None
    page["run_id"] += 1  # anything still in flight from the old worker is ignored
    append("\n[stopped]\n", note=True)
    finish(scratch.stopped_text(now() - page["run_started"]), False)
    hide_progress()
    ensure_worker()


def finish(summary, ok) -> None:
    kit.set_text("run-cost", summary)
    kit.node("run-cost").className = "run-cost" if ok else "run-cost error"
    set_running(False)
    kit.spawn(show_budget())


def set_running(running) -> None:
    """Run and Stop swap being usable; keyboard focus moves with them (a disabled button would
    drop it to the top of the page)."""
    page["running"] = running
    js.document.body.dataset.running = "true" if running else "false"
    run_button, stop_button = kit.node("run"), kit.node("stop")
    leaving = stop_button if not running else run_button
    focused = js.document.activeElement
    had_focus = bool(focused) and bool(focused.isSameNode(leaving))
    run_button.disabled = running
    stop_button.disabled = not running
    if had_focus:
        (run_button if not running else stop_button).focus()


def on_key(event) -> None:
    """Ctrl/Cmd+Enter runs from anywhere on the page (the editor handles its own)."""
    if str(event.key) == "Enter" and (event.ctrlKey or event.metaKey) and \
            not event.defaultPrevented:
        event.preventDefault()
        run()


def clear_output() -> None:
    kit.node("output").textContent = ""
    page["shown"] = 0


def append(text, error=False, note=False) -> None:
    output = kit.node("output")
    room = scratch.MAX_OUTPUT - page["shown"]
    if room <= 0:
        return
    if len(text) > room:
        text = text[:room] + "\n… output cut at " + str(scratch.MAX_OUTPUT) + " characters\n"
    page["shown"] += len(text)
    if error or note:
        output.appendChild(kit.make("span", text, **{"class": "err" if error else "note"}))
    else:
        output.appendChild(js.document.createTextNode(text))
    output.scrollTop = output.scrollHeight


# -- the editor ------------------------------------------------------------------------------
async def mount_editor() -> None:
    if not editor():  # editor.mjs has not run yet: wait for its event
        await js.Promise.new(create_proxy(lambda resolve, _reject: js.window.addEventListener(
            "aipipe-editor", resolve, js_object({"once": True}))))
    storage = js.window.localStorage
    linked = None
    param = scratch.code_param(js.window.location.hash)
    if param is not None:
        try:
            linked = str(js.decodeURIComponent(param))
        except Exception:  # a JS URIError: a mangled link; keep the saved code
            linked = None
    code = scratch.initial_code(linked, storage.getItem(scratch.STORAGE_KEY), page["models"][0])
    if linked:  # a link can come from anywhere: nothing runs until the user presses Run
        kit.set_text("run-cost", scratch.LINKED_NOTE)
        kit.node("run-cost").className = "run-cost warn"
    editor().mount(kit.node("editor"), code)
    storage.setItem(scratch.STORAGE_KEY, code)
    editor().on("change", create_proxy(
        lambda text: storage.setItem(scratch.STORAGE_KEY, str(text))))
    editor().on("run", create_proxy(run))


def fill_examples() -> None:
    select = kit.node("examples")
    for key, title, _code in scratch.EXAMPLES:
        select.appendChild(kit.make("option", title, value=key))


def pick_example(_event) -> None:
    select = kit.node("examples")
    code = scratch.example(str(select.value), page["models"][0], page["models"][1])
    select.value = ""
    if code is not None:
        editor().code = code
        editor().focus()


# -- start -----------------------------------------------------------------------------------
async def show_budget() -> None:
    status, data = await kit.request_json("/usage", token=page["profile"]["token"])
    if status == 200 and isinstance(data, dict):
        kit.note_usage(page["profile"], data)
        summary = money.spend_summary(data)
        kit.set_text("budget-left", summary["remaining"] + " of " + summary["limit"] + " left")
        kit.show_meter("budget-meter", summary["percent"], summary["exhausted"], summary["some"])
    elif status == 401:
        kit.set_text("signin-text", "Your sign-in has expired or was revoked (" +
                     session.error_message(status, data) + "). Sign in again.")
        kit.show("signin-needed")


async def choose_models() -> None:
    config = kit.config()
    prices = None
    if not config.get("demo_model"):
        status, prices = await kit.request_json("/prices")
        prices = prices if status == 200 else None
    page["models"] = scratch.default_models(config, prices)
    kit.set_text("default-model", page["models"][0])


def start_when_idle() -> None:
    """Load Python in the background once the page has nothing else to do."""
    callback = create_proxy(lambda *_a: ensure_worker())
    if js.window.requestIdleCallback:
        js.window.requestIdleCallback(callback, js_object({"timeout": 3000}))
    else:
        js.setTimeout(callback, 500)


def clean_address() -> None:
    """Drop a sign-in hand-off's aipipe_* parameters (the token is in storage now) and the
    playground's #code= (it is in the editor now) from the address bar."""
    location = js.window.location
    if "aipipe_" in str(location.hash) or "aipipe_" in str(location.search) or \
            scratch.code_param(location.hash) is not None:
        js.window.history.replaceState(None, "", str(location.pathname))


async def main() -> None:
    profile = kit.load_profile()
    kit.start_header(profile)
    if profile is None:
        kit.show("signin-needed")
        kit.hide("pad")
        clean_address()
        kit.mark_ready()
        return
    page["profile"] = profile
    fill_examples()
    kit.on("run", "click", run)
    kit.on("stop", "click", stop)
    kit.on("examples", "change", pick_example)
    js.document.addEventListener("keydown", create_proxy(on_key))
    if "Mac" in str(js.navigator.platform):
        kit.set_text("run-keys", "⌘+Enter runs")
        kit.node("run").title = "Run (⌘+Enter)"
    await mount_editor()
    clean_address()
    set_running(False)
    kit.mark_ready()
    kit.spawn(show_budget())
    await choose_models()
    start_when_idle()


kit.spawn(main())
