/* A compact terminal emulator for the consoles (xterm-compatible subset).
 *
 * The screen is a list of lines, each a div of spans (one span per run of
 * equal attributes), so the browser's own selection and copy work. Lines
 * own their divs: scrolling moves divs instead of repainting every row, and
 * a line scrolled off the top of the main screen simply stays in the DOM as
 * history. Changed lines are repainted once per animation frame.
 *
 * Classic script (the UI concatenates its files); exposes window.Term only. */
(function () {
  'use strict';

  var BOLD = 1, DIM = 2, ITALIC = 4, UNDER = 8, INVERSE = 16, HIDDEN = 32, STRIKE = 64;
  // SGR 1..9 -> flag (5, blink, is not drawn)
  var SGR_ON = [0, BOLD, DIM, ITALIC, UNDER, 0, 0, INVERSE, HIDDEN, STRIKE];
  var HISTORY = 1000;
  // DEC special graphics for 0x60..0x7e (ESC ( 0): line drawing and symbols
  var DEC = '◆▒␉␌␍␊°±␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│≤≥π≠£·';
  var XTERM16 = ['#000000', '#cd0000', '#00cd00', '#cdcd00', '#0000ee', '#cd00cd', '#00cdcd', '#e5e5e5',
    '#7f7f7f', '#ff0000', '#00ff00', '#ffff00', '#5c5cff', '#ff00ff', '#00ffff', '#ffffff'];

  // Colours are -1 (default), 0..255 (palette) or 0x1000000 + 0xRRGGBB.
  // Pens are interned so that runs of cells compare by identity.
  function Pen(f, b, m) { this.f = f; this.b = b; this.m = m; }
  var pens = new Map();
  function pen(f, b, m) {
    var k = f + ',' + b + ',' + m, p = pens.get(k);
    if (!p) {
      // truecolor can make many; old pens stay valid, runs merely split
      if (pens.size > 4096) pens.clear();
      pens.set(k, p = new Pen(f, b, m));
    }
    return p;
  }
  var DEF = pen(-1, -1, 0);

  function colour(c) {
    if (c < 16) return XTERM16[c];
    if (c < 232) {
      c -= 16;
      var v = function (n) { return n ? n * 40 + 55 : 0; };
      return 'rgb(' + v((c / 36 | 0) % 6) + ',' + v((c / 6 | 0) % 6) + ',' + v(c % 6) + ')';
    }
    if (c < 256) { c = (c - 232) * 10 + 8; return 'rgb(' + c + ',' + c + ',' + c + ')'; }
    return '#' + (c & 0xffffff).toString(16).padStart(6, '0');
  }

  // Stylesheet built once per document through CSSOM: a content security
  // policy without 'unsafe-inline' blocks <style> elements, not this.
  var CSS = '.term{position:relative;overflow:hidden;width:100%;height:100%;' +
    '--tfg:#d0d0d0;--tbg:#111;color:var(--tfg);background:var(--tbg);font:14px monospace;line-height:1.2}' +
    '.term-vp{position:absolute;inset:0;overflow-y:scroll;overflow-x:hidden;overflow-anchor:none;outline:none}' +
    '.term-row{white-space:pre;height:1.2em;overflow:hidden}' +
    '.term textarea{position:absolute;left:0;top:0;width:1px;height:1px;opacity:0;border:0;padding:0;resize:none}' +
    '.term-probe{position:absolute;visibility:hidden;white-space:pre}' +
    '.tB{font-weight:bold}.tD{opacity:.6}.tI{font-style:italic}.tU{text-decoration:underline}' +
    '.tS{text-decoration:line-through}.tU.tS{text-decoration:underline line-through}.tH{color:transparent}' +
    '.tf257{color:var(--tbg)}.tb256{background:var(--tfg)}';
  XTERM16.forEach(function (c, i) { CSS += '.tf' + i + '{color:' + c + '}.tb' + i + '{background:' + c + '}'; });
  function addStyles() {
    if (addStyles.done) return;
    addStyles.done = true;
    var s = new CSSStyleSheet();
    s.replaceSync(CSS);
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat(s);
  }

  // Two cells for East Asian wide and emoji; zero for combining marks.
  function width(c) {
    if (c < 0x300) return 1;
    if (c <= 0x36f || (c >= 0x200b && c <= 0x200f) || (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0x20d0 && c <= 0x20ff)) return 0;
    return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c !== 0x303f) ||
      (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
      (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd) ? 2 : 1;
  }

  function Line(n, p) {
    this.c = new Array(n).fill(' ');
    this.p = new Array(n).fill(p);
    this.d = document.createElement('div');
    this.d.className = 'term-row';
  }

  function Buf(parent) {
    this.lines = [];
    this.el = parent.appendChild(document.createElement('div'));
    this.hist = [];    // lines kept above the screen (main buffer only)
    this.saved = null; // DECSC
  }

  function Term(container) {
    addStyles();
    var t = this;
    t.root = container.appendChild(document.createElement('div'));
    t.root.className = 'term';
    t.vp = t.root.appendChild(document.createElement('div'));
    t.vp.className = 'term-vp';
    // focusable, so keys still arrive after a mouse selection moved focus here
    t.vp.tabIndex = -1;
    t.probe = t.root.appendChild(document.createElement('div'));
    t.probe.className = 'term-row term-probe';
    t.probe.textContent = 'W'.repeat(40);
    // input goes through a hidden textarea: paste, IME and mobile keyboards
    t.ta = t.root.appendChild(document.createElement('textarea'));
    t.ta.setAttribute('autocapitalize', 'off');
    t.ta.setAttribute('autocomplete', 'off');
    t.ta.spellcheck = false;
    t.ta.setAttribute('aria-label', 'terminal input');
    t.main = new Buf(t.vp);
    t.alt = new Buf(t.vp);
    t.alt.el.style.display = 'none';
    t.buf = t.main;
    t.dec = new TextDecoder();
    t.dirty = new Set();
    t.raf = 0;
    t.onData = t.onResize = null;
    t.cols = t.rows = 0;
    t.reset();
    t.fit();
    if (!t.cols) t.resize(80, 24);
    // the caller sets onResize right after construction
    Promise.resolve().then(function () { if (t.onResize) t.onResize(t.cols, t.rows); });
    t.ro = new ResizeObserver(function () { t.fit(); });
    t.ro.observe(t.root);

    var on = function (el, ev, fn) { el.addEventListener(ev, fn.bind(t)); };
    on(t.root, 'keydown', t.key);
    on(t.root, 'paste', function (e) {
      e.preventDefault();
      t.paste(e.clipboardData.getData('text/plain'));
    });
    on(t.ta, 'input', function (e) {
      if (!e.isComposing && t.ta.value) { t.send(t.ta.value); t.ta.value = ''; }
    });
    on(t.ta, 'compositionend', function (e) { t.send(e.data); t.ta.value = ''; });
    // output follows the end unless the user scrolled back (the scroll events
    // of our own scrolling arrive later, maybe after more lines were added)
    t.stick = true;
    on(t.vp, 'scroll', function () {
      var v = t.vp;
      if (v.scrollTop !== t.setTop) t.stick = v.scrollTop + v.clientHeight >= v.scrollHeight - 2;
    });
    on(t.root, 'mouseup', function () {
      if (getSelection().isCollapsed) t.focus();
    });
  }

  var P = Term.prototype;

  // ---- public --------------------------------------------------------------

  P.write = function (data) {
    this.feed(typeof data === 'string' ? data : this.dec.decode(data, {stream: true}));
    this.schedule();
  };

  P.focus = function () { this.ta.focus({preventScroll: true}); };

  P.text = function () {
    return this.buf.lines.map(function (l) { return l.c.join('').trimEnd(); }).join('\n');
  };

  P.paste = function (s) {
    s = s.replace(/\r?\n/g, '\r');
    // no escape may end the bracket early and smuggle keys in
    if (this.bp) s = '\x1b[200~' + s.replace(/\x1b/g, '') + '\x1b[201~';
    this.send(s);
  };

  P.fit = function () {
    var r = this.probe.getBoundingClientRect(), w = r.width / 40, h = r.height;
    if (!w || !h) return;
    var cols = Math.max(2, Math.floor(this.vp.clientWidth / w)),
      rows = Math.max(1, Math.floor(this.vp.clientHeight / h));
    if (cols === this.cols && rows === this.rows) return;
    var first = !this.cols;
    this.resize(cols, rows);
    if (!first && this.onResize) this.onResize(cols, rows);
  };

  P.dispose = function () {
    this.ro.disconnect();
    cancelAnimationFrame(this.raf);
    this.root.remove();
    this.onData = this.onResize = null;
  };

  // ---- state -----------------------------------------------------------------

  P.reset = function () {
    this.x = this.y = 0;
    this.lc = false;                // the xterm "pending wrap" flag
    this.pen = DEF;
    this.top = 0;
    this.bot = Math.max(0, this.rows - 1);
    this.app = this.om = this.irm = this.bp = false;
    this.awm = this.curOn = true;
    this.g = ['B', 'B'];
    this.gl = 0;
    this.st = 0;                    // parser state
    this.last = ' ';
    this.tabs = [];
    for (var i = 0; i < 1000; i += 8) this.tabs[i] = true;
  };

  P.resize = function (cols, rows) {
    var t = this;
    t.cols = cols;
    t.rows = rows;
    [t.main, t.alt].forEach(function (b) {
      var y = b === t.buf ? t.y : b.saved ? b.saved.y : 0;
      b.lines.forEach(function (l) {
        l.c.length = l.p.length = Math.min(l.c.length, cols);
        while (l.c.length < cols) { l.c.push(' '); l.p.push(DEF); }
        t.mark(l);
      });
      while (b.lines.length > rows) {
        var last = b.lines[b.lines.length - 1];
        if (y < b.lines.length - 1 && !last.c.join('').trim()) {
          t.drop(b.lines.pop());
        } else {
          t.retire(b, b.lines.shift());
          y--;
        }
      }
      while (b.lines.length < rows) b.el.appendChild(t.blank(b.lines, b.lines.length, DEF).d);
      if (b === t.buf) t.y = Math.max(0, y);
    });
    t.top = 0;
    t.bot = rows - 1;
    t.x = Math.min(t.x, cols - 1);
    t.y = Math.min(t.y, rows - 1);
    t.lc = false;
  };

  // ---- rendering ---------------------------------------------------------------

  P.mark = function (l) {
    this.dirty.add(l);
    this.schedule();
  };

  P.schedule = function () {
    var t = this;
    if (!t.raf) t.raf = requestAnimationFrame(function () { t.raf = 0; t.render(); });
  };

  P.render = function () {
    var cur = this.curOn ? this.buf.lines[this.y] : null, cx = this.x;
    if (this.curLine !== cur || this.curX !== cx) {
      if (this.curLine) this.dirty.add(this.curLine);
      if (cur) this.dirty.add(cur);
      this.curLine = cur;
      this.curX = cx;
    }
    var t = this;
    this.dirty.forEach(function (l) { t.draw(l, l === cur ? cx : -1); });
    this.dirty.clear();
    if (this.stick) this.bottom();
  };

  P.bottom = function () {
    this.vp.scrollTop = this.vp.scrollHeight;
    this.stick = true;
    this.setTop = this.vp.scrollTop;
  };

  function plain(p) { return p.b < 0 && !(p.m & (INVERSE | UNDER | STRIKE)); }

  P.draw = function (l, cx) {
    var c = l.c, p = l.p, end = c.length, out = [];
    while (end > 0 && c[end - 1] === ' ' && plain(p[end - 1])) end--;
    if (cx >= end) end = cx + 1;
    for (var i = 0; i < end;) {
      var q = p[i], s = c[i] || '', j = i + 1;
      if (i !== cx) while (j < end && j !== cx && p[j] === q) s += c[j++];
      out.push(i === cx || q !== DEF ? span(s, q, i === cx) : s);
      i = j;
    }
    l.d.replaceChildren.apply(l.d, out);
  };

  function span(s, q, cursor) {
    var e = document.createElement('span'), f = q.f < 0 ? 256 : q.f, b = q.b < 0 ? 257 : q.b, cl = [], t;
    // the cursor is drawn as inverse video
    if (!(q.m & INVERSE) !== !cursor) { t = f; f = b; b = t; }
    if (cursor) cl.push('tC');
    if (f < 16 || f === 257) cl.push('tf' + f); else if (f !== 256) e.style.color = colour(f);
    if (b < 16 || b === 256) cl.push('tb' + b); else if (b !== 257) e.style.background = colour(b);
    ['tB', 'tD', 'tI', 'tU', 0, 'tH', 'tS'].forEach(function (n, k) { if (n && q.m & 1 << k) cl.push(n); });
    e.className = cl.join(' ');
    e.textContent = s;
    return e;
  }

  // ---- screen operations -----------------------------------------------------

  // a blank line in lines[at] (background of the current pen: xterm's BCE)
  P.blank = function (lines, at, p) {
    var l = new Line(this.cols, p);
    lines.splice(at, 0, l);
    return l;
  };

  P.bpen = function () { return this.pen.b < 0 ? DEF : pen(-1, this.pen.b, 0); };

  P.drop = function (l) { l.d.remove(); this.dirty.delete(l); };

  // a line leaving the top of a screen: main-screen lines become history
  P.retire = function (b, l) {
    if (b !== this.main) return this.drop(l);
    // the oldest goes, from the DOM and from the lines waiting to be painted
    if (b.hist.push(l) > HISTORY) this.drop(b.hist.shift());
  };

  // scroll lines top..bot by n: up if n > 0, down if n < 0
  P.scroll = function (top, bot, n) {
    var b = this.buf, L = b.lines, k = Math.min(Math.abs(n), bot - top + 1), l;
    while (k--) {
      if (n > 0) {
        l = L.splice(top, 1)[0];
        if (top === 0) this.retire(b, l); else this.drop(l);
        l = this.blank(L, bot, this.bpen());
        b.el.insertBefore(l.d, L[bot + 1] ? L[bot + 1].d : null);
      } else {
        this.drop(L.splice(bot, 1)[0]);
        l = this.blank(L, top, this.bpen());
        b.el.insertBefore(l.d, L[top + 1] ? L[top + 1].d : null);
      }
      this.mark(l);
    }
  };

  // erase cells [a, z) of row y
  P.erase = function (y, a, z) {
    var l = this.buf.lines[y], p = this.bpen();
    for (var i = Math.max(a, 0); i < z && i < this.cols; i++) { l.c[i] = ' '; l.p[i] = p; }
    this.mark(l);
  };

  P.index = function () {
    if (this.y === this.bot) this.scroll(this.top, this.bot, 1);
    else if (this.y < this.rows - 1) this.y++;
    this.lc = false;
  };

  P.rindex = function () {
    if (this.y === this.top) this.scroll(this.top, this.bot, -1);
    else if (this.y > 0) this.y--;
    this.lc = false;
  };

  // moves within the scroll region when the cursor is inside it
  P.vmove = function (y) {
    var inside = this.y >= this.top && this.y <= this.bot;
    this.y = Math.max(inside ? this.top : 0, Math.min(inside ? this.bot : this.rows - 1, y));
    this.lc = false;
  };

  P.goto = function (x, y) {
    if (this.om) { y += this.top; this.y = Math.max(this.top, Math.min(this.bot, y)); } else this.y = Math.max(0, Math.min(this.rows - 1, y));
    this.x = Math.max(0, Math.min(this.cols - 1, x));
    this.lc = false;
  };

  P.put = function (ch) {
    var cp = ch.codePointAt(0), w = width(cp), L = this.buf.lines, l;
    if (this.g[this.gl] === '0' && cp >= 0x60 && cp < 0x7f) ch = DEC[cp - 0x60];
    if (!w) {
      // combining mark: joins the cell before the cursor
      var x = this.lc ? this.x : this.x - 1;
      l = L[this.y];
      if (x >= 0) { l.c[x] += ch; this.mark(l); }
      return;
    }
    if (this.lc || (w === 2 && this.x === this.cols - 1)) {
      if (this.awm) { this.x = 0; this.index(); } else if (w === 2) return;
    }
    l = L[this.y];
    var c = l.c, p = l.p, x0 = this.x;
    if (this.irm) {
      for (var k = 0; k < w; k++) { c.splice(x0, 0, ' '); p.splice(x0, 0, DEF); }
      c.length = p.length = this.cols;
    }
    // overwriting half of a wide character blanks its other half
    if (c[x0] === '' && x0 > 0) c[x0 - 1] = ' ';
    if (c[x0 + w] === '') c[x0 + w] = ' ';
    c[x0] = ch;
    p[x0] = this.pen;
    if (w === 2) { c[x0 + 1] = ''; p[x0 + 1] = this.pen; }
    this.last = ch;
    this.x += w;
    if (this.x >= this.cols) { this.x = this.cols - 1; this.lc = this.awm; }
    this.mark(l);
  };

  P.save = function () {
    this.buf.saved = {x: this.x, y: this.y, lc: this.lc, pen: this.pen, om: this.om, g: this.g.slice(), gl: this.gl};
  };

  P.restore = function () {
    var s = this.buf.saved || {x: 0, y: 0, lc: false, pen: DEF, om: false, g: ['B', 'B'], gl: 0};
    this.x = Math.min(s.x, this.cols - 1);
    this.y = Math.min(s.y, this.rows - 1);
    this.lc = s.lc;
    this.pen = s.pen;
    this.om = s.om;
    this.g = s.g.slice();
    this.gl = s.gl;
  };

  P.altScreen = function (on, clear) {
    var b = on ? this.alt : this.main;
    if (b === this.buf) return;
    if (clear) this.alt.lines.forEach(this.clearLine, this);
    this.buf.el.style.display = 'none';
    b.el.style.display = '';
    this.buf = b;
    this.lc = false;
    this.mark(b.lines[this.y]);
  };

  P.clearLine = function (l) {
    l.c.fill(' ');
    l.p.fill(DEF);
    this.mark(l);
  };

  // ---- input from the user -------------------------------------------------------

  P.send = function (s) {
    this.bottom();
    if (this.onData && s) this.onData(s);
  };

  // The asynchronous clipboard exists in secure contexts only (https,
  // localhost); elsewhere the copy command copies the selection.
  P.copy = function (g) {
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(g.toString());
    else document.execCommand('copy');
  };

  var CUR = {ArrowUp: 'A', ArrowDown: 'B', ArrowRight: 'C', ArrowLeft: 'D', Home: 'H', End: 'F'};
  var SS3 = {F1: 'P', F2: 'Q', F3: 'R', F4: 'S'};
  var TILDE = {Insert: 2, Delete: 3, PageUp: 5, PageDown: 6, F5: 15, F6: 17, F7: 18, F8: 19, F9: 20, F10: 21, F11: 23, F12: 24};
  var CTRL_SYM = {' ': 0, '2': 0, '@': 0, '3': 27, '4': 28, '5': 29, '6': 30, '7': 31, '8': 127, '/': 31, '_': 31, '?': 127};

  P.key = function (e) {
    var k = e.key, ctrl = e.ctrlKey && !e.getModifierState('AltGraph'), alt = e.altKey && !e.getModifierState('AltGraph'),
      mod = (e.shiftKey ? 1 : 0) + (alt ? 2 : 0) + (ctrl ? 4 : 0), s, g = getSelection(),
      sel = !g.isCollapsed && this.root.contains(g.anchorNode);
    if (e.isComposing || e.keyCode === 229 || e.metaKey) return;
    var K = k.length === 1 ? k.toUpperCase() : k;
    // Ctrl+C copies a selection (^C otherwise); Ctrl+Shift+C and Ctrl+Insert always copy
    if (ctrl && !alt && ((K === 'C' && (sel || e.shiftKey)) || (K === 'Insert' && sel))) {
      e.preventDefault();
      return this.copy(g);
    }
    // the browser pastes, and the paste event follows
    if ((ctrl && !alt && K === 'V') || (e.shiftKey && k === 'Insert')) return;
    if (e.shiftKey && (k === 'PageUp' || k === 'PageDown')) {
      this.vp.scrollTop += (k === 'PageUp' ? -1 : 1) * this.vp.clientHeight;
      return e.preventDefault();
    }
    if (CUR[k]) s = mod ? '\x1b[1;' + (mod + 1) + CUR[k] : (this.app ? '\x1bO' : '\x1b[') + CUR[k];
    else if (SS3[k]) s = mod ? '\x1b[1;' + (mod + 1) + SS3[k] : '\x1bO' + SS3[k];
    else if (TILDE[k]) s = '\x1b[' + TILDE[k] + (mod ? ';' + (mod + 1) : '') + '~';
    else if (k === 'Tab') s = e.shiftKey ? '\x1b[Z' : '\t';
    else {
      s = {Enter: '\r', Backspace: ctrl ? '\b' : '\x7f', Escape: '\x1b'}[k];
      if (!s && [...k].length === 1) {
        s = k;
        if (ctrl) {
          var u = k.toUpperCase().charCodeAt(0);
          if (u >= 64 && u <= 95) s = String.fromCharCode(u - 64);
          else if (k in CTRL_SYM) s = String.fromCharCode(CTRL_SYM[k]);
          else return;
        }
      }
      if (!s) return;
      if (alt) s = '\x1b' + s;
    }
    e.preventDefault();
    if (sel) g.removeAllRanges();
    if (document.activeElement !== this.ta) this.focus();
    this.send(s);
  };

  // ---- the output parser -------------------------------------------------------

  P.feed = function (s) {
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i), st = this.st;
      if (st === 0 && c >= 32 && c !== 127) {
        // C1 controls arrive as code points in UTF-8: not drawn
        if (c < 0x80 || c >= 0xa0) this.put(c >= 0xd800 && c < 0xdc00 ? s.slice(i, ++i + 1) : s[i]);
      } else if (st === 3) {
        // OSC, DCS, APC, PM, SOS strings: ignored up to BEL or ESC \ (ST)
        if (c === 7) this.st = 0; else if (c === 27) this.st = 1;
      } else if (c === 27) {
        this.st = 1;
      } else if (c < 32 || c === 127) {
        if (c === 24 || c === 26) this.st = 0; else this.control(c);
      } else if (st === 1) {
        this.esc(s[i]);
      } else if (st === 2) {
        if (c < 0x30 && c >= 0x20) this.ic += s[i];
        else if (c < 0x40) this.ps += s[i];
        else { this.st = 0; this.csi(s[i]); }
      } else if (st === 4) {
        // the final byte of ESC ( X and the other two-byte designations
        if (this.ic >= '(' && this.ic <= '+') this.g[this.ic.charCodeAt(0) - 40] = s[i];
        else if (this.ic === '#' && s[i] === '8') this.align();
        this.st = 0;
      }
    }
  };

  P.control = function (c) {
    switch (c) {
      case 8: if (this.x > 0) this.x--; this.lc = false; break;
      case 9: this.tab(1); break;
      case 10: case 11: case 12: this.index(); break;
      case 13: this.x = 0; this.lc = false; break;
      case 14: this.gl = 1; break;
      case 15: this.gl = 0; break;
    }
  };

  P.tab = function (n) {
    var x = this.x;
    while (n > 0 && x < this.cols - 1) { if (this.tabs[++x]) n--; }
    while (n < 0 && x > 0) { if (this.tabs[--x]) n++; }
    this.x = x;
    this.lc = false;
  };

  P.esc = function (ch) {
    this.st = 0;
    switch (ch) {
      case '[': this.st = 2; this.ps = this.ic = ''; break;
      case ']': case 'P': case 'X': case '^': case '_': this.st = 3; break;
      case '(': case ')': case '*': case '+': case '#': case '%': case ' ': this.st = 4; this.ic = ch; break;
      case '7': this.save(); break;
      case '8': this.restore(); break;
      case 'D': this.index(); break;
      case 'E': this.x = 0; this.index(); break;
      case 'M': this.rindex(); break;
      case 'H': this.tabs[this.x] = true; break;
      case 'c': this.hardReset(); break;
    }
  };

  P.hardReset = function () {
    this.altScreen(false);
    this.reset();
    var t = this;
    this.main.lines.forEach(function (l) { t.clearLine(l); });
  };

  // DECALN: the screen filled with E (alignment test)
  P.align = function () {
    var t = this;
    this.buf.lines.forEach(function (l) { l.c.fill('E'); l.p.fill(DEF); t.mark(l); });
    this.top = 0;
    this.bot = this.rows - 1;
    this.goto(0, 0);
  };

  P.reply = function (s) { if (this.onData) this.onData(s); };

  P.csi = function (f) {
    var pre = /^[<=>?]/.test(this.ps) ? this.ps[0] : '', raw = pre ? this.ps.slice(1) : this.ps,
      a = raw.split(';').map(function (v) { return parseInt(v, 10) || 0; }),
      n = a[0] || 1, y = this.y, x = this.x, i, L = this.buf.lines, l = L[y];
    if (this.ic) {
      // DECSTR, the soft reset (cursor styles, ' q', and the rest are ignored)
      if (this.ic === '!' && f === 'p') {
        this.pen = DEF; this.top = 0; this.bot = this.rows - 1; this.app = this.om = this.irm = false;
        this.awm = this.curOn = true; this.g = ['B', 'B']; this.gl = 0; this.buf.saved = null;
      }
      return;
    }
    // private forms: DEC modes, selective erase, DECXCPR, and DA2 (CSI > c)
    if (pre && !(pre === '?' ? 'hlJKn' : 'c').includes(f)) return;
    switch (f) {
      case '@': // ICH
        l.c.splice(x, 0, ...new Array(Math.min(n, this.cols - x)).fill(' '));
        l.p.splice(x, 0, ...new Array(Math.min(n, this.cols - x)).fill(this.bpen()));
        l.c.length = l.p.length = this.cols;
        this.lc = false;
        this.mark(l);
        break;
      case 'A': this.vmove(y - n); break;
      case 'B': case 'e': this.vmove(y + n); break;
      case 'C': case 'a': this.x = Math.min(this.cols - 1, x + n); this.lc = false; break;
      case 'D': this.x = Math.max(0, x - n); this.lc = false; break;
      case 'E': this.vmove(y + n); this.x = 0; break;
      case 'F': this.vmove(y - n); this.x = 0; break;
      case 'G': case '`': this.x = Math.min(n, this.cols) - 1; this.lc = false; break;
      case 'H': case 'f': this.goto((a[1] || 1) - 1, n - 1); break;
      case 'd': this.goto(x, n - 1); break;
      case 'I': this.tab(n); break;
      case 'Z': this.tab(-n); break;
      case 'J':
        if (a[0] === 3) { this.main.hist.splice(0).forEach(this.drop, this); break; }
        if (a[0] !== 1) { this.erase(y, x, this.cols); for (i = y + 1; i < this.rows; i++) this.erase(i, 0, this.cols); }
        if (a[0] !== 0) { this.erase(y, 0, x + 1); for (i = 0; i < y; i++) this.erase(i, 0, this.cols); }
        break;
      case 'K':
        this.erase(y, a[0] === 0 ? x : 0, a[0] === 1 ? x + 1 : this.cols);
        break;
      case 'L': case 'M': // IL, DL: only inside the scroll region, which then starts here
        if (y >= this.top && y <= this.bot) this.scroll(y, this.bot, f === 'M' ? n : -n);
        this.x = 0;
        this.lc = false;
        break;
      case 'P': // DCH
        l.c.splice(x, Math.min(n, this.cols - x));
        l.p.splice(x, Math.min(n, this.cols - x));
        while (l.c.length < this.cols) { l.c.push(' '); l.p.push(this.bpen()); }
        this.lc = false;
        this.mark(l);
        break;
      case 'S': this.scroll(this.top, this.bot, n); break;
      case 'T': if (a.length < 2) this.scroll(this.top, this.bot, -n); break;
      case 'X': this.erase(y, x, x + n); this.lc = false; break;
      case 'b': for (i = 0; i < n && i < 65536; i++) this.put(this.last); break;
      case 'c': if (!a[0]) this.reply(pre === '>' ? '\x1b[>0;10;0c' : '\x1b[?1;2c'); break;
      case 'g': if (a[0] === 3) this.tabs = []; else if (!a[0]) this.tabs[x] = false; break;
      case 'h': case 'l': this.modes(pre, a, f === 'h'); break;
      case 'm': if (!pre) this.sgr(raw); break;
      case 'n':
        if (a[0] === 5) this.reply('\x1b[0n');
        if (a[0] === 6) this.reply('\x1b[' + pre + (y + 1 - (this.om ? this.top : 0)) + ';' + (x + 1) + 'R');
        break;
      case 'r':
        if (!pre) {
          var top = n - 1, bot = (a[1] || this.rows) - 1;
          if (bot > this.rows - 1) bot = this.rows - 1;
          if (top < bot) { this.top = top; this.bot = bot; this.goto(0, 0); }
        }
        break;
      case 's': this.save(); break;
      case 'u': this.restore(); break;
    }
  };

  P.modes = function (pre, a, on) {
    for (var i = 0; i < a.length; i++) {
      var m = a[i];
      if (!pre) {
        if (m === 4) this.irm = on;
        continue;
      }
      switch (m) {
        case 1: this.app = on; break;
        case 6: this.om = on; this.goto(0, 0); break;
        case 7: this.awm = on; if (!on) this.lc = false; break;
        case 25: this.curOn = on; break;
        case 2004: this.bp = on; break;
        case 47: this.altScreen(on, false); break;
        case 1047: if (!on && this.buf === this.alt) this.alt.lines.forEach(this.clearLine, this); this.altScreen(on, false); break;
        case 1048: if (on) this.save(); else this.restore(); break;
        case 1049:
          if (on) { this.save(); this.altScreen(true, true); } else { this.altScreen(false); this.restore(); }
          break;
      }
    }
  };

  P.sgr = function (raw) {
    var a = raw.split(';'), f = this.pen.f, b = this.pen.b, m = this.pen.m;
    for (var i = 0; i < a.length; i++) {
      var sub = a[i].split(':'), n = parseInt(sub[0], 10) || 0, v = -2;
      if (n === 0) { f = b = -1; m = 0; }
      else if (n < 10) m |= SGR_ON[n];
      else if (n === 21) m |= UNDER;
      else if (n >= 22 && n <= 29) m &= ~[BOLD | DIM, ITALIC, UNDER, 0, 0, INVERSE, HIDDEN, STRIKE][n - 22];
      else if (n >= 30 && n <= 37) f = n - 30;
      else if (n === 39) f = -1;
      else if (n >= 40 && n <= 47) b = n - 40;
      else if (n === 49) b = -1;
      else if (n >= 90 && n <= 97) f = n - 82;
      else if (n >= 100 && n <= 107) b = n - 92;
      else if (n === 38 || n === 48 || n === 58) {
        // 38;5;N and 38;2;R;G;B, or the colon forms 38:5:N, 38:2:R:G:B, 38:2:CS:R:G:B
        var colon = sub.length > 1, q = colon ? sub : a.slice(i, i + 5), k = colon && q.length > 5 ? 3 : 2;
        if (q[1] === '5') { v = q[2] & 255; if (!colon) i += 2; }
        else if (q[1] === '2') {
          v = 0x1000000 | (q[k] & 255) << 16 | (q[k + 1] & 255) << 8 | (q[k + 2] & 255);
          if (!colon) i += 4;
        }
        if (v >= 0) { if (n === 38) f = v; else if (n === 48) b = v; }
      }
    }
    this.pen = pen(f, b, m);
  };

  window.Term = Term;
})();
