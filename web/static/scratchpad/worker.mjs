// The scratchpad's Python: Pyodide in a dedicated worker, so a long cell never freezes the page.
// Bootstrap only — scratch_worker.py (installed from web/py with aipipe.py and cellrun.py) does
// the work. Messages in: {type: "start", runtime, modules, setup}, {type: "wasm", module}, then
// {type: "run", id, code, token, model}. Messages out: {type: "progress", text, step},
// {type: "ready", ms, python, pyodide, streaming, wasm}, {type: "out", id, stream, text},
// {type: "done", id, ...}, {type: "failed", text}.
// Stop is the page terminating this worker: without SharedArrayBuffer (this page is not
// cross-origin isolated) there is no interrupt buffer, and terminate ends even `while True: pass`.
const LIB = "/aipipe";  // where the modules go, first on sys.path
const steps = ["Loading Python (Pyodide)", "Installing the aipipe module"];
const progress = (step) => postMessage({ type: "progress", step, steps: steps.length,
                                         text: steps[step] + "…" });
let ready = null;
let used = false;  // whether Pyodide took the page's module
let gotWasm;
const wasm = new Promise((resolve) => { gotWasm = resolve; });

// The page compiles pyodide.asm.wasm and sends the module (null if it could not). Chromium keeps
// the compiled code of a module compiled by a page for the next visit, but not of one compiled
// in a worker: measured, a warm start takes about half as long this way. Pyodide instantiates
// with WebAssembly.instantiateStreaming; for that one call, hand it the page's module.
function useModule(module) {
  const original = WebAssembly.instantiateStreaming;
  if (!module) return () => {};
  WebAssembly.instantiateStreaming = async (_response, imports) => {
    used = true;
    return { instance: await WebAssembly.instantiate(module, imports), module };
  };
  return () => { WebAssembly.instantiateStreaming = original; };
}

async function start({ runtime, modules, setup }) {
  const started = performance.now();
  progress(0);
  const sources = Promise.all(Object.entries(modules).map(async ([name, url]) => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    return [name, await response.text()];
  }));
  const { loadPyodide } = await import(runtime + "pyodide.mjs");
  const restore = useModule(await wasm);
  let pyodide;
  try {
    pyodide = await loadPyodide({ indexURL: runtime });
  } finally {
    restore();
  }
  progress(1);
  pyodide.FS.mkdirTree(LIB);
  for (const [name, text] of await sources) pyodide.FS.writeFile(`${LIB}/${name}`, text);
  pyodide.globals.set("_setup", pyodide.toPy(setup));
  const info = await pyodide.runPythonAsync(
    `import sys\nsys.path.insert(0, "${LIB}")\nimport scratch_worker\nscratch_worker.setup(_setup)`);
  postMessage({ type: "ready", ms: Math.round(performance.now() - started),
                wasm: used ? "page" : "worker",
                ...info.toJs({ dict_converter: Object.fromEntries }) });
  info.destroy();
  return pyodide;
}

onmessage = async ({ data }) => {
  if (data.type === "wasm") {
    gotWasm(data.module || null);
    return;
  }
  if (data.type === "start") {
    ready = start(data);
    ready.catch((error) => postMessage({ type: "failed", text: String(error) }));
    return;
  }
  if (data.type !== "run") return;
  try {
    const pyodide = await ready;
    pyodide.globals.set("_request", pyodide.toPy(data));
    // runPythonAsync enters Python so that pyodide.ffi.run_sync works (JSPI): aipipe's calls
    // then wait for fetch() synchronously, and streams yield pieces as they arrive.
    await pyodide.runPythonAsync("await scratch_worker.run(_request)");
  } catch (error) {  // Python failed to start, or the runner itself broke (cells cannot)
    postMessage({ type: "done", id: data.id, ok: false, error: String(error), calls: 0 });
  }
};
