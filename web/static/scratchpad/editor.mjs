// The scratchpad's code editor: CodeMirror 6 with Python highlighting, loaded without a bundler
// (the page's import map points the bare package names at /static/esm/). The page's Python
// drives it through window.aipipeEditor; the editable element carries data-testid="code" and a
// `value` property (get: the code; set: replaces it), so scripts and Playwright's fill() can use it.
// Its colours are the page's (aipipe.css: CSS variables), so it follows the light/dark switch.
import { Compartment, EditorState } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, drawSelection, highlightActiveLine, highlightSpecialChars,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { python } from "@codemirror/lang-python";
import { classHighlighter } from "@lezer/highlight";

const listeners = { change: [], run: [] };
const emit = (kind, value) => listeners[kind].forEach((fn) => fn(value));
// On a phone long lines wrap instead of scrolling sideways (the width aipipe.css calls a phone).
const narrow = matchMedia("(max-width: 48rem)");
const wrapping = new Compartment();
const wrap = () => (narrow.matches ? EditorView.lineWrapping : []);

function create(parent, doc) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(), highlightSpecialChars(), history(), drawSelection(), highlightActiveLine(),
        indentOnInput(), bracketMatching(), indentUnit.of("    "), EditorState.tabSize.of(4),
        python(), syntaxHighlighting(classHighlighter),  // tok-* classes, coloured in the CSS
        wrapping.of(wrap()),
        keymap.of([
          { key: "Mod-Enter", run: () => { emit("run"); return true; } },
          { key: "Shift-Enter", run: () => { emit("run"); return true; } },
          ...defaultKeymap, ...historyKeymap, indentWithTab,  // Esc then Tab leaves the editor
        ]),
        // tabindex: the editable element is a keyboard stop inside the scrolling area
        EditorView.contentAttributes.of({ "data-testid": "code", "aria-label": "Python code",
                                          tabindex: "0" }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) emit("change", update.state.doc.toString());
        }),
      ],
    }),
  });
  narrow.addEventListener("change", () => view.dispatch({ effects: wrapping.reconfigure(wrap()) }));
  Object.defineProperty(view.contentDOM, "value", {
    get: () => view.state.doc.toString(),
    set: (text) => setCode(view, String(text)),
  });
  return view;
}

function setCode(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text },
                  selection: { anchor: text.length } });
}

let view = null;
window.aipipeEditor = {
  // Draws the editor into `parent` (once) holding `doc`.
  mount(parent, doc) { view = view || create(parent, doc); },
  get code() { return view ? view.state.doc.toString() : ""; },
  set code(text) { if (view) setCode(view, text); },
  focus() { view?.focus(); },
  // kind: "change" (gets the code) or "run" (Ctrl/Cmd+Enter or Shift+Enter)
  on(kind, fn) { listeners[kind].push(fn); },
};
window.dispatchEvent(new Event("aipipe-editor"));
