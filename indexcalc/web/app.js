// indexcalc serve: the page. It sends the fields to POST /api/run and shows the answer:
// the steps typeset by KaTeX, the closed form, the NumPy code, check's verdict, or the
// command line's error message. The address carries the input, so a derivation can be linked.
"use strict";

const FIELDS = ["expr", "wrt", "where", "answer"];

// What each rule of the derivation is called on the page (as in the course's worked solutions).
const RULE_WORDS = {
  "index": "index the derivative",
  "chain rule": "chain rule through the output",
  "index output": "index the output",
  "expand": "expand the sums",
  "differentiate": "differentiate (product rule)",
  "kronecker": "derivative of an entry: Kronecker deltas",
  "sift": "sift the deltas",
  "matrix form": "recognise the matrix form",
  "closed form": "closed form",
  "index form": "the answer in index form (no matrix form)",
  "second derivative": "differentiate again",
};

const $ = (id) => document.getElementById(id);
let pending = null;          // the AbortController of the request in flight

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function tex(latex, display, className) {
  const e = el(display ? "div" : "span", className || (display ? "math" : "imath"));
  katex.render(latex, e, {displayMode: display, throwOnError: false, strict: "ignore"});
  // the MathML namespace is the element's already; its attribute would be the page's only "http"
  for (const m of e.querySelectorAll("math[xmlns]")) m.removeAttribute("xmlns");
  return e;
}

// ---- the address ---------------------------------------------------------------------------

function commandOf(params) {
  const cmd = params.get("cmd");
  if (cmd === "derive" || cmd === "backprop" || cmd === "check") return cmd;
  if (params.get("answer")) return "check";
  return (params.get("expr") || "").includes("=") ? "backprop" : "derive";
}

function request(cmd) {
  const req = {command: cmd, expr: $("expr").value, wrt: $("wrt").value, where: $("where").value};
  if (cmd === "check") req.answer = $("answer").value;
  if (cmd === "derive" && $("order2").checked) req.order = 2;
  return req;
}

function address(req) {
  const p = new URLSearchParams();
  p.set("cmd", req.command);
  for (const f of FIELDS) if (req[f]) p.set(f, req[f]);
  if (req.order === 2) p.set("order", "2");
  return "?" + p.toString();
}

function fromAddress() {
  const params = new URLSearchParams(window.location.search);
  for (const f of FIELDS) $(f).value = params.get(f) || "";
  $("order2").checked = params.get("order") === "2";
  if (params.get("expr")) run(commandOf(params), false);
  else {
    clear();
    document.title = "indexcalc";
  }
}

// ---- the command line, for copying ---------------------------------------------------------

function shellQuote(s) {
  return /^[A-Za-z0-9_,.:=+\/-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
}

function commandLine(req) {
  const words = ["indexcalc", req.command, shellQuote(req.expr), "--wrt", shellQuote(req.wrt)];
  if (req.where) words.push("--where", shellQuote(req.where));
  if (req.answer) words.push("--answer", shellQuote(req.answer));
  if (req.order === 2) words.push("--order", "2");
  return words.join(" ");
}

// ---- running a command ---------------------------------------------------------------------

function clear() {
  $("error").hidden = true;
  $("verdict").hidden = true;
  $("verdict").replaceChildren();
  $("results").replaceChildren();
  $("status").textContent = "";
  $("cmdline").hidden = true;
}

async function run(cmd, push) {
  const req = request(cmd);
  document.title = "indexcalc: " + cmd + " " + req.expr;        // what a bookmark is called
  if (push !== false) {
    const url = address(req);
    if (url !== window.location.search) history.pushState(null, "", url);
  }
  if (pending) pending.abort();
  pending = new AbortController();
  const mine = pending;
  clear();
  $("cmdline").querySelector("code").textContent = commandLine(req);
  $("cmdline").hidden = false;
  $("status").textContent = cmd === "check" ? "checking…" : "deriving…";
  document.body.classList.add("busy");
  let answer;
  try {
    const response = await fetch("api/run", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(req), signal: mine.signal,
    });
    answer = await response.json();
  } catch (e) {
    if (e.name === "AbortError") return;
    answer = {ok: false, error: "indexcalc: error: no answer from the server (" + e.message + ")"};
  } finally {
    if (pending === mine) document.body.classList.remove("busy");
  }
  if (pending !== mine) return;
  pending = null;
  $("status").textContent = "";
  show(cmd, answer);
}

function show(cmd, answer) {
  if (!answer.ok) {
    // the command line's message: its first line wraps, the input and the caret under it do not
    const text = String(answer.error || "indexcalc: error: no answer");
    const cut = text.indexOf("\n");
    const box = $("error");
    box.replaceChildren(el("span", "message", cut < 0 ? text : text.slice(0, cut)));
    if (cut >= 0) box.append(el("span", "where", text.slice(cut)));
    box.hidden = false;
    return;
  }
  if (answer.verdict) showVerdict(answer);
  showDerivation(answer.derivation, answer.display, Boolean(answer.verdict));
}

// ---- check's verdict -----------------------------------------------------------------------

function matrixLatex(v) {
  const num = (x) => (typeof x === "number" ? String(Math.round(x * 1e4) / 1e4) : String(x));
  if (!Array.isArray(v)) return num(v);
  const rows = Array.isArray(v[0]) ? v : v.map((x) => [x]);
  return "\\begin{bmatrix}" + rows.map((r) => r.map(num).join(" & ")).join(" \\\\ ") + "\\end{bmatrix}";
}

function showVerdict(answer) {
  const v = answer.verdict;
  const box = $("verdict");
  box.className = v.correct ? "right" : "wrong";
  const head = el("div", "verdict-head");
  head.append(el("span", "badge", v.correct ? "RIGHT" : "WRONG"));
  if (answer.claimed_latex) {
    head.append(el("span", "", " the claim "));
    head.append(tex(answer.claimed_latex, false));
  }
  box.append(head, el("p", "reason", v.reason));
  const c = v.counterexample;
  if (c) {
    const t = el("div", "counterexample");
    t.append(el("h3", "", "Counterexample"));
    const sizes = Object.entries(c.sizes || {}).map(([k, n]) => k + " = " + n).join(", ");
    if (sizes) t.append(el("p", "", "sizes: " + sizes));
    if (c.entry && c.entry.length) {
      const num = (x) => (typeof x === "number" ? x.toPrecision(6).replace(/\.?0+$/, "") : String(x));
      t.append(el("p", "", "entry [" + c.entry.join(", ") + "]: the claim gives " + num(c.claimed) +
                           ", the derivative is " + num(c.actual)));
    }
    if (c.claimed_shape) {
      t.append(el("p", "", "the claim's shape: (" + c.claimed_shape.join(", ") + "), the derivative's: (" +
                           c.expected_shape.join(", ") + ")"));
    }
    if (c.values) {
      const vals = el("div", "values");
      for (const [name, value] of Object.entries(c.values)) {
        const deep = Array.isArray(value) && value.some((row) => Array.isArray(row) && row.some(Array.isArray));
        if (deep) vals.append(el("pre", "", name + " = " + JSON.stringify(value)));   // rank 3 and up
        else vals.append(tex(name + " = " + matrixLatex(value), true));
      }
      t.append(vals);
    }
    box.append(t);
  }
  box.hidden = false;
}

// ---- the derivation ------------------------------------------------------------------------

function copyButton(text) {
  const b = el("button", "copy", "Copy");
  b.type = "button";
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {                            // not a secure context: select and copy
      const area = el("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    b.textContent = "Copied";
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
  return b;
}

function codeBlock(title, text) {
  const box = el("div", "code");
  const head = el("div", "code-head");
  head.append(el("span", "", title), copyButton(text));
  const pre = el("pre");
  pre.append(el("code", "", text));
  box.append(head, pre);
  return box;
}

function showDerivation(json, display, checked) {
  const out = $("results");
  const given = el("div", "given");
  if (display.given) given.append(tex(display.given, true));
  else given.append(el("p", "typed", json.input));        // index notation: as typed
  if (display.upstream) {
    const up = el("p", "upstream");
    up.append("the upstream gradient ", tex(display.upstream, false),
              " is " + display.upstream_name + " in the NumPy code");
    given.append(up);
  }
  given.append(el("p", "variables", display.variables));
  out.append(given);
  display.results.forEach((shown, k) => {
    const r = json.results[k];
    const card = el("article", "result");
    card.append(el("h2", "", (checked ? "The derivative" : "Derivative") + " with respect to " + shown.wrt));
    const steps = el("ol", "steps");
    for (const s of shown.steps) {
      const li = el("li", s.answer ? "answer" : "");
      li.append(el("div", "rule", RULE_WORDS[s.rule] || s.rule));
      const body = el("div", "body");
      body.append(tex(s.latex, true));
      if (s.note) {
        const note = el("div", "note");
        note.append("using ", tex(s.note, false));
        body.append(note);
      }
      li.append(body);
      steps.append(li);
    }
    card.append(steps);
    const facts = el("dl", "facts");
    const fact = (name, value) => { facts.append(el("dt", "", name), el("dd", "", value)); };
    if (r.closed_form) fact("closed form", r.closed_form);
    else fact("index form", r.index_form);
    fact("shape", shown.shape);
    const sizes = Object.entries(r.checked.sizes).map(([a, b]) => a + "=" + b).join(", ");
    fact("checked", "agrees with " + r.checked.method + " on random arrays" + (sizes ? " (" + sizes + ")" : ""));
    card.append(facts);
    card.append(codeBlock("NumPy", r.numpy));
    if (r.function) card.append(codeBlock("NumPy function", r.function));
    out.append(card);
  });
}

// ---- wiring ----------------------------------------------------------------------------------

function start() {
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    let cmd = e.submitter ? e.submitter.value : "derive";
    const typing = document.activeElement;       // Enter in a field, not a click on a button
    if (typing && typing.tagName === "INPUT" && typing.type === "text") {
      if (typing === $("answer") && $("answer").value.trim()) cmd = "check";
      else cmd = $("expr").value.includes("=") ? "backprop" : "derive";
    }
    run(cmd);
  });
  window.addEventListener("popstate", fromAddress);
  fromAddress();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
