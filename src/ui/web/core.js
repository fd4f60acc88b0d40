// The UI's core: DOM building, the API client, routing, the signed-in user,
// progress and errors. Every screen file registers its routes with
// `route()` and builds its view with `h()`. Loaded first in the bundle.
'use strict';

// h('div', {class: 'x', onclick: f, 'aria-label': 'y'}, child, [children], null)
// Strings become text nodes (never HTML): nothing from dockerd is parsed.
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(9)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// Replaces an element's content.
function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// An error from dockerd or from the gateway, with the rule and field the
// gateway names when its policy refused the request.
class ApiError extends Error {
  constructor(status, body) {
    const message = (body && typeof body.message === 'string' && body.message) || 'HTTP ' + status;
    super(message);
    this.status = status;
    this.rule = body && body.rule;
    this.field = body && body.field;
  }
}

function query(q) {
  const parts = [];
  for (const [k, v] of Object.entries(q || {})) {
    if (v == null || v === '') continue;
    parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(typeof v === 'object' ? JSON.stringify(v) : v));
  }
  return parts.length ? '?' + parts.join('&') : '';
}

// The page's half of its login session's secret (the cookie is the other):
// browsers send a cookie to every port of its host, where containers may
// publish pages, but keep this storage per origin. The gateway hands it
// over with the cookie, in a reply no other origin can read: the login's,
// or the page a ticket sign-in answers with. Never in an address: any page
// can send a browser to any address.
const BINDING = 'dockermand-binding';
function bindingHeader() {
  const binding = localStorage.getItem(BINDING);
  return binding ? {'X-Dockermand-Binding': binding} : {};
}

// Calls the Docker API (paths without a version: dockerd picks its own) or
// one of the gateway's endpoints (`/_dockermand/...`).
// opts: {method, query, json, body, headers, signal, raw}. Resolves to the
// parsed JSON (or null for an empty body), or the Response itself with
// `raw`. Rejects with an ApiError; a 401 sends the user to the sign-in.
async function api(path, opts = {}) {
  const headers = Object.assign(bindingHeader(), opts.headers);
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  let res;
  try {
    res = await fetch(path + query(opts.query), {
      method: opts.method || 'GET', headers, body, signal: opts.signal, credentials: 'same-origin',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, {message: 'cannot reach dockermand: ' + e.message});
  }
  if (!res.ok) {
    let detail = null;
    try { detail = JSON.parse(await res.text()); } catch (e) { /* not JSON */ }
    if (res.status === 401 && !path.startsWith('/_dockermand/login')) signedOut();
    throw new ApiError(res.status, detail);
  }
  if (opts.raw) return res;
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch (e) { return text; }
}

// Reads a streaming reply chunk by chunk: onChunk(Uint8Array).
async function stream(path, opts, onChunk) {
  const res = await api(path, Object.assign({}, opts, {raw: true}));
  const reader = res.body.getReader();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    onChunk(value);
  }
}

// Splits newline-delimited JSON that arrives in pieces: feed(text) calls
// onObject(object) for each complete line; feed('\n') ends the last one.
function jsonLines(onObject) {
  let rest = '';
  return text => {
    const parts = (rest + text).split('\n');
    rest = parts.pop();
    for (const line of parts) if (line.trim()) onObject(JSON.parse(line));
  };
}

// Reads newline-delimited JSON (events, pull progress): onObject(object)
// for each line.
async function ndjson(path, opts, onObject) {
  const decoder = new TextDecoder();
  const feed = jsonLines(onObject);
  await stream(path, opts, chunk => feed(decoder.decode(chunk, {stream: true})));
  feed(decoder.decode() + '\n');
}

// --- the signed-in user ----------------------------------------------------

const session = {name: null, role: null};
const canWrite = () => session.role !== null && session.role !== 'read';
// A write control, left out altogether for a read-only role.
const writable = el => (canWrite() ? el : null);

function signedOut() {
  session.name = session.role = null;
  if (!location.hash.startsWith('#/login')) location.hash = '#/login?next=' + encodeURIComponent(location.hash);
}

// --- routing -----------------------------------------------------------------

// '#/containers/abc/logs' is the route 'containers' with params ['abc', 'logs'].
const routes = new Map();
const navItems = [];
let current = null;

// render(view, params, signal, search): builds the screen into `view`;
// `signal` aborts when the user leaves it (streams stop) or hides the tab.
// nav: the label of its entry in the menu, if it has one.
// Screen files load in name order, so the menu takes its order from here.
const navOrder = ['overview', 'containers', 'images', 'networks', 'volumes', 'events'];
function route(name, render, nav) {
  routes.set(name, render);
  if (nav) {
    navItems.push([name, nav]);
    const rank = n => (navOrder.indexOf(n) + 1) || navOrder.length + 1;
    navItems.sort((a, b) => rank(a[0]) - rank(b[0]));
  }
}

function go(hash) {
  if (location.hash === hash) show();
  else location.hash = hash;
}

async function show() {
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  const [path, search] = (location.hash.slice(2) || 'overview').split('?');
  const [name, ...params] = path.split('/').map(decodeURIComponent);
  const view = document.getElementById('view');
  if (name !== 'login' && session.role === null) {
    try { Object.assign(session, await api('/_dockermand/whoami')); } catch (e) { return; }
    drawHeader();
  }
  for (const a of document.querySelectorAll('#nav a')) {
    a.toggleAttribute('aria-current', a.dataset.route === name);
  }
  const render = routes.get(name) || routes.get('overview');
  fill(view, h('p', {class: 'muted', text: 'Loading…'}));
  try {
    const built = h('div', {class: 'screen screen-' + name});
    await render(built, params, signal, new URLSearchParams(search || ''));
    if (!signal.aborted) fill(view, built);
    const focus = view.querySelector('[autofocus]') || view.querySelector('h1');
    if (focus) focus.focus();
  } catch (e) {
    if (!signal.aborted) fill(view, errorBox(e));
  }
}

// Streams stop while the page is hidden; the screen is rebuilt on return.
document.addEventListener('visibilitychange', () => {
  if (document.hidden && current) current.abort();
  else if (!document.hidden && !location.hash.startsWith('#/login')) show();
});

function drawHeader() {
  const nav = document.getElementById('nav');
  fill(nav, navItems.map(([name, label]) => h('a', {href: '#/' + name, 'data-route': name, text: label})));
  const who = document.getElementById('who');
  fill(who, session.name ? [
    h('span', {id: 'user', text: session.name}), ' ',
    h('span', {id: 'role', class: 'badge', text: session.role}), ' ',
    h('button', {id: 'logout', type: 'button', onclick: logout, text: 'Log out'}),
  ] : []);
}

async function logout() {
  try { await api('/_dockermand/logout', {method: 'POST'}); } catch (e) { /* signed out anyway */ }
  localStorage.removeItem(BINDING);
  session.name = session.role = null;
  drawHeader();
  go('#/login');
}

// --- feedback ------------------------------------------------------------------

// A readable message for any failure, naming the policy rule and field.
function describe(e) {
  if (e instanceof ApiError && e.rule) {
    return e.message + (e.field && !e.message.includes(e.field) ? ' (field ' + e.field + ')' : '');
  }
  return (e && e.message) || String(e);
}

function errorBox(e) {
  const box = h('div', {class: 'error', role: 'alert'}, describe(e));
  if (e instanceof ApiError && e.rule) {
    box.append(h('div', {class: 'policy'}, 'rule: ', h('code', {class: 'rule', text: e.rule}),
      e.field ? [' field: ', h('code', {class: 'field', text: e.field})] : null));
  }
  return box;
}

// A message in the notice area: kind 'error' or 'ok'.
function notify(message, kind = 'ok') {
  const area = document.getElementById('notices');
  const note = kind === 'error' && typeof message !== 'string' ? errorBox(message)
    : h('div', {class: kind, role: kind === 'error' ? 'alert' : 'status', text: String(message)});
  const close = h('button', {type: 'button', class: 'close', 'aria-label': 'Dismiss', text: '×', onclick: () => note.remove()});
  note.prepend(close);
  area.prepend(note);
  if (kind === 'ok') setTimeout(() => note.remove(), 4000);
}

// Runs an action from a button: disables it meanwhile and reports failures.
async function act(button, work) {
  if (button) button.disabled = true;
  try { return await work(); } catch (e) {
    if (e.name !== 'AbortError') notify(e, 'error');
  } finally {
    if (button) button.disabled = false;
  }
}

// A checkbox inside its label; the box itself is `label.control`.
function checkbox(id, text, checked) {
  return h('label', {class: 'check'}, h('input', {type: 'checkbox', id, checked}), ' ', text);
}

// A modal dialog; resolves true on confirm, false on cancel. Escape
// cancels. Each of optionLabels adds a checkbox (force, all, volumes too);
// with any, it resolves {options: [checked, ...], option: the first's} on
// confirm instead.
function confirmDialog(text, okLabel = 'OK', ...optionLabels) {
  return new Promise(resolve => {
    const labels = optionLabels.map((text, i) => checkbox('confirm-option-' + i, text));
    const boxes = labels.map(label => label.control);
    const dlg = h('dialog', {class: 'confirm'}, h('p', {text}), labels.map(label => h('p', {}, label)),
      h('form', {method: 'dialog'},
        h('button', {value: 'cancel', type: 'submit', text: 'Cancel'}), ' ',
        h('button', {value: 'ok', type: 'submit', class: 'danger', text: okLabel, autofocus: true})));
    dlg.addEventListener('close', () => {
      dlg.remove();
      const ok = dlg.returnValue === 'ok';
      const options = boxes.map(box => box.checked);
      resolve(ok && boxes.length ? {options, option: options[0]} : ok);
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// A progress line for long work, with a cancel button that aborts it, as
// does the optional parent signal (the screen's, when the user leaves).
// Returns {el, signal, set(done, total), text(s), finish(message), fail(error)}.
function progress(label, parent) {
  const ctl = new AbortController();
  if (parent) parent.addEventListener('abort', () => ctl.abort(), {once: true});
  const bar = h('progress', {max: 1});
  bar.removeAttribute('value');
  const info = h('span', {class: 'info'});
  const cancel = h('button', {type: 'button', text: 'Cancel', onclick: () => ctl.abort()});
  const el = h('div', {class: 'progress', role: 'status'}, h('span', {class: 'label', text: label}), bar, info, cancel);
  return {
    el, signal: ctl.signal,
    set(done, total) {
      if (total > 0) {
        bar.max = total; bar.value = Math.min(done, total);
        info.textContent = bytes(done) + ' of ' + bytes(total) + ' (' + Math.floor(100 * done / total) + '%)';
      } else {
        info.textContent = bytes(done);
      }
    },
    text(s) { info.textContent = s; },
    finish(message) { bar.value = bar.max; info.textContent = message || 'done'; cancel.remove(); },
    fail(e) {
      cancel.remove();
      if (!bar.hasAttribute('value')) bar.value = 0; // an indeterminate bar would go on moving
      el.classList.add('failed');
      info.replaceWith(e && e.name === 'AbortError' ? h('span', {class: 'info', text: 'cancelled'}) : errorBox(e));
    },
  };
}

// Downloads a GET reply as a file, with progress; progress(label) decides
// where the progress line shows (caller appends p.el). convert(blob) →
// blob, if given, turns the reply into the file saved (decoded logs, a file
// taken out of a tar).
async function download(path, filename, p, q, convert) {
  const res = await api(path, {query: q, raw: true, signal: p.signal});
  const total = Number(res.headers.get('Content-Length')) || 0;
  const parts = [];
  let done = 0;
  const reader = res.body.getReader();
  for (;;) {
    const {value, done: end} = await reader.read();
    if (end) break;
    parts.push(value);
    done += value.length;
    p.set(done, total);
  }
  saveBlob(convert ? await convert(new Blob(parts)) : new Blob(parts), filename);
  p.finish(bytes(done) + ' saved as ' + filename);
}

// Hands a Blob to the browser as a downloaded file.
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', {href: url, download: filename});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// Sends a file (or Blob) as a request body, with upload progress. fetch has
// no upload progress, so this uses XMLHttpRequest. Resolves to the reply's
// text; onText(textSoFar) sees streamed replies (load, build) as they come.
function upload(path, blob, p, {method = 'PUT', q, headers = {}, onText} = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path + query(q));
    for (const [k, v] of Object.entries(Object.assign(bindingHeader(), headers))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = e => p.set(e.loaded, e.lengthComputable ? e.total : blob.size);
    if (onText) xhr.onprogress = () => onText(xhr.responseText);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.responseText);
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 401) signedOut();
      reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new ApiError(0, {message: 'upload failed: connection lost'}));
    xhr.onabort = () => reject(new DOMException('cancelled', 'AbortError'));
    p.signal.addEventListener('abort', () => xhr.abort());
    xhr.send(blob);
  });
}

// An AbortSignal that fires when any of `signals` does (a stream that stops
// when the screen goes away or when the user restarts it).
function anySignal(...signals) {
  const ctl = new AbortController();
  for (const s of signals) {
    if (s.aborted) ctl.abort();
    else s.addEventListener('abort', () => ctl.abort(), {once: true});
  }
  return ctl.signal;
}

// Splits a command line as a POSIX shell would (create's command, the
// console's): 'single' and "double" quotes, backslash escapes; no expansion.
function shellSplit(s) {
  const words = [];
  let word = null, quote = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote === "'") {
      if (c === "'") quote = null; else word += c;
    } else if (c === '\\' && i + 1 < s.length && (!quote || '"\\$`'.includes(s[i + 1]))) {
      word = (word || '') + s[++i];
    } else if (quote === '"') {
      if (c === '"') quote = null; else word += c;
    } else if (c === '"' || c === "'") {
      quote = c; word = word || '';
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word || '') + c;
    }
  }
  if (quote) throw new Error('Command: unterminated ' + quote + ' quote');
  if (word !== null) words.push(word);
  return words;
}

// A form of labelled fields [[label, input]], submitted by its button or
// Enter; onSubmit(form) runs through act(), so failures are reported.
let fieldIds = 0;
function formGrid(label, fields, submit, onSubmit) {
  const button = h('button', {class: 'primary', text: submit});
  const form = h('form', {class: 'grid card', 'aria-label': label}, fields.map(([text, input]) => {
    input.id = input.id || 'field-' + ++fieldIds;
    return [h('label', {for: input.id, text}), input];
  }), h('div', {class: 'full'}, button));
  form.addEventListener('submit', e => {
    e.preventDefault();
    act(button, () => onSubmit(form));
  });
  return form;
}

// A toolbar whose buttons [label, build(close) → form] each open their form
// in one area below it; the same button or Escape closes it. `extra`
// nodes (plain buttons, a filter) join the toolbar.
function actions(items, ...extra) {
  const area = h('div', {class: 'action-area'});
  let open = null;
  const close = () => {
    if (open) open.setAttribute('aria-expanded', 'false');
    open = null;
    fill(area);
  };
  const buttons = items.map(([label, build]) => {
    const b = h('button', {type: 'button', 'aria-expanded': 'false', text: label, onclick: () => {
      const again = open === b;
      close();
      if (again) return;
      open = b;
      b.setAttribute('aria-expanded', 'true');
      fill(area, build(close));
      const first = area.querySelector('input, select, textarea');
      if (first) first.focus();
    }});
    return b;
  });
  area.addEventListener('keydown', e => {
    if (e.key !== 'Escape' || !open) return;
    const b = open;
    close();
    b.focus();
  });
  return [h('div', {class: 'toolbar'}, buttons, extra), area];
}

// --- formatting ------------------------------------------------------------------

function bytes(n) {
  if (!(n >= 0)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}

// "3 minutes ago" from a Unix time in seconds (or an ISO date string).
function ago(t) {
  const secs = typeof t === 'number' ? t : Date.parse(t) / 1000;
  if (!(secs > 0)) return '–';
  const d = Math.max(0, Date.now() / 1000 - secs);
  const [n, unit] = d < 60 ? [d, 'second'] : d < 3600 ? [d / 60, 'minute'] : d < 86400 ? [d / 3600, 'hour'] : [d / 86400, 'day'];
  const k = Math.floor(n);
  return k + ' ' + unit + (k === 1 ? '' : 's') + ' ago';
}

const shortId = id => String(id || '').replace(/^sha256:/, '').slice(0, 12);

// A table: columns [[label (string or node), cell(row) → node|string]],
// rows; rowProps(row) gives each <tr>'s attributes.
function table(columns, rows, empty = 'None.', rowProps = null) {
  if (!rows.length) return h('p', {class: 'muted', text: empty});
  return h('div', {class: 'table-wrap'}, h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', {scope: 'col'}, label)))),
    h('tbody', {}, rows.map(r => h('tr', rowProps && rowProps(r),
      columns.map(([label, cell]) => h('td', {'data-label': typeof label === 'string' ? label : null}, cell(r))))))));
}

// Collapsible JSON: objects and arrays are <details>, open to `depth`.
function jsonTree(value, depth = 1) {
  if (value === null || typeof value !== 'object') {
    return h('span', {class: 'json-' + (value === null ? 'null' : typeof value), text: JSON.stringify(value)});
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (!entries.length) return h('span', {text: Array.isArray(value) ? '[]' : '{}'});
  return h('details', {class: 'json', open: depth > 0},
    h('summary', {text: Array.isArray(value) ? '[' + entries.length + ']' : '{' + entries.length + '}'}),
    h('ul', {}, entries.map(([k, v]) => h('li', {}, h('span', {class: 'key', text: k + ': '}), jsonTree(v, depth - 1)))));
}

// Tabs: [[id, label, render(panel, signal)]]; the active one is in the URL
// (base + '/' + id), so each tab has its own address.
function tabs(base, items, active, signal) {
  const panel = h('div', {class: 'tab-panel', role: 'tabpanel'});
  const current = items.find(t => t[0] === active) || items[0];
  const bar = h('nav', {class: 'tabs', role: 'tablist'}, items.map(([id, label]) =>
    h('a', {href: base + '/' + id, role: 'tab', 'aria-selected': String(id === current[0]), text: label})));
  Promise.resolve().then(() => current[2](panel, signal))
    .catch(e => { if (!signal.aborted) fill(panel, errorBox(e)); });
  return [bar, panel];
}

// --- start -------------------------------------------------------------------------

window.addEventListener('hashchange', show);
document.addEventListener('DOMContentLoaded', () => {
  // A ticket sign-in's answer is a page with the binding and this script:
  // keep it, and open the UI in its place (the ticket leaves the history).
  const handedOver = document.querySelector('meta[name="dockermand-binding"]');
  if (handedOver) {
    localStorage.setItem(BINDING, handedOver.content);
    location.replace(location.pathname + (location.hash || '#/overview'));
    return;
  }
  drawHeader();
  show();
});
