"""The web UI's terminal (``src/ui/web/term.js``) and console panel
(``src/ui/web/console.js``) in Debian's Chromium, driven by Playwright.

Two layers:

* the emulator alone: a test page (served by Python's ``http.server`` with a
  content security policy that forbids inline scripts and styles, as the
  UI's) loads ``term.js``; byte sequences are written to it and the screen's
  text, the rendered cells' computed styles, the replies and what the user's
  keys, pastes and selections produce are checked;
* real programs: the same page opens ``console.js`` consoles through a
  gateway (no credentials, the page's origin in ``cors_origins``) into
  containers of the private dockerd, and busybox ``vi``, ``top``, ``printf``
  with colours, ``stty size`` after a resize, a paste, and dockerd's own
  ``attach/ws`` are checked on the screen.

Every test saves a screenshot in target/e2e-artifacts. Nothing sleeps to
synchronise: the tests wait for conditions in the page (a rendered frame, a
screen that shows something, an exit reported).
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading

import pytest

import helpers

ARTIFACTS = helpers.REPO / "target" / "e2e-artifacts"
WEB = helpers.REPO / "src" / "ui" / "web"
WAIT_MS = 20000

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>term test</title>
<link rel="stylesheet" href="page.css">
<div id="box"></div>
<script src="term.js"></script>
<script src="console.js"></script>
<script src="page.js"></script>
"""

PAGE_CSS = "body { margin: 0 } #box { width: 800px; height: 420px }"

# Test helpers in the page: a terminal recording what it sends and its
# resizes, the rendered cell at (row, col) of the visible screen with its
# computed style, and a promise for the next painted frame.
PAGE_JS = r"""
window.violations = [];
document.addEventListener('securitypolicyviolation', e => violations.push(e.violatedDirective + ' ' + e.blockedURI));
const box = document.getElementById('box');
window.make = () => {
  window.t = new Term(box);
  window.got = [];
  window.sizes = [];
  t.onData = d => got.push(d);
  t.onResize = (c, r) => sizes.push([c, r]);
};
window.frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
window.rowEl = r => {
  const b = [...document.querySelectorAll('.term-vp > div')].find(d => d.style.display !== 'none');
  return b.children[b.children.length - t.rows + r];
};
window.cell = (r, c) => {
  let n = 0;
  for (const node of rowEl(r).childNodes) {
    const chars = [...node.textContent];
    if (c < n + chars.length) {
      const el = node.nodeType === 1 ? node : node.parentElement, cs = getComputedStyle(el);
      return {ch: chars[c - n], cls: node.nodeType === 1 ? el.className : '', color: cs.color,
              bg: cs.backgroundColor, weight: cs.fontWeight, italic: cs.fontStyle, deco: cs.textDecorationLine};
    }
    n += chars.length;
  }
  return null;
};
"""

# the terminal's default colours (--tfg, --tbg)
FG = "rgb(208, 208, 208)"
BG = "rgb(17, 17, 17)"
NO_BG = "rgba(0, 0, 0, 0)"  # a cell on the terminal's own background


# ---------------------------------------------------------------------------
# the page server and the browser


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        # as strict as the UI's own policy; the consoles may reach the
        # gateway on another port of 127.0.0.1
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; connect-src 'self' ws://127.0.0.1:* http://127.0.0.1:*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


class PageServer:
    def __init__(self, root):
        for name in ("term.js", "console.js"):
            shutil.copy(WEB / name, root / name)
        (root / "index.html").write_text(PAGE)
        (root / "page.css").write_text(PAGE_CSS)
        (root / "page.js").write_text(PAGE_JS)
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.origin = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def page_server(tmp_path_factory):
    s = PageServer(tmp_path_factory.mktemp("uiterm"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def term_context(browser, page_server):
    """A context of the session's Chromium (uilib) that may use the clipboard."""
    ctx = browser.new_context()
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=page_server.origin)
    yield ctx
    ctx.close()


@pytest.fixture
def page(term_context, page_server, request):
    pg = term_context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.goto(page_server.origin + "/index.html")
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / ("test_ui_terminal-%s.png" % request.node.name)
    try:
        pg.screenshot(path=str(shot))
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print("screenshot of the failure: %s\n--- screen ---\n%s" % (shot, pg.evaluate("window.t ? t.text() : ''")))
        violations = pg.evaluate("violations")
    finally:
        pg.close()
    assert violations == [], "the content security policy blocked: %s" % violations


@pytest.fixture
def term(page):
    page.evaluate("make()")
    return page


def snapshot(page, name):
    """A screenshot of a moment inside a test (the fixture takes the last one)."""
    page.evaluate("frame()")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / ("test_ui_terminal-%s.png" % name)))


def write(page, data, frame=True):
    """Writes a string, or bytes as one Uint8Array, then waits for the repaint."""
    if isinstance(data, bytes):
        page.evaluate("b => t.write(new Uint8Array(b))", list(data))
    else:
        page.evaluate("s => t.write(s)", data)
    if frame:
        page.evaluate("frame()")


def screen(page) -> list[str]:
    return page.evaluate("t.text()").split("\n")


def cell(page, row, col) -> dict:
    return page.evaluate("([r, c]) => cell(r, c)", [row, col])


def cursor(page) -> tuple[int, int]:
    """(row, col), 1-based, from the terminal's own cursor position report."""
    reply = page.evaluate("got.length = 0; t.write('\\x1b[6n'); got.splice(0).join('')")
    assert reply.startswith("\x1b[") and reply.endswith("R"), repr(reply)
    row, col = reply[2:-1].split(";")
    return int(row), int(col)


def sent(page) -> str:
    """What the terminal sent since the last call."""
    return page.evaluate("got.splice(0).join('')")


# ---------------------------------------------------------------------------
# the emulator


def test_cursor_motion_erasing_and_replies(term):
    p = term
    cols, rows = p.evaluate("[t.cols, t.rows]")
    assert cols >= 80 and rows >= 20, (cols, rows)
    # CUP, then relative moves (CUU, CUF, CUD, CUB), CHA, VPA, HVP, CNL, CPL
    write(p, "\x1b[3;5HX\x1b[AY\x1b[3CZ\x1b[2BW\x1b[4DV\x1b[20GU\x1b[8dT\x1b[2;2fS\x1b[2EQ\x1b[FR")
    s = screen(p)
    assert s[1] == " S   Y   Z"
    assert s[2] == "R   X"
    assert s[3] == "Q      V  W        U"
    assert s[7] == " " * 20 + "T"
    # the cursor sits after R; DSR 6 reports it, DA answers as a VT100 with AVO
    assert cursor(p) == (3, 2)
    p.evaluate("t.write('\\x1b[c')")
    assert sent(p) == "\x1b[?1;2c"
    p.evaluate("t.write('\\x1b[5n')")
    assert sent(p) == "\x1b[0n"
    # moves stop at the edges
    write(p, "\x1b[99;999H")
    assert cursor(p) == (rows, cols)
    write(p, "\x1b[999A\x1b[999D")
    assert cursor(p) == (1, 1)
    # DECSC/DECRC (ESC 7 / ESC 8) keep position and pen; CSI s / u too
    write(p, "\x1b[6;3H\x1b[31m\x1b7\x1b[0m\x1b[H\x1b8r\x1b[0m\x1b[10;10H\x1b[s\x1b[Hq\x1b[ur")
    assert screen(p)[5] == "  r"
    assert screen(p)[9] == " " * 9 + "r"
    assert "tf1" in cell(p, 5, 2)["cls"]
    assert cell(p, 9, 9)["cls"] == ""
    # tabs every 8 columns, CHT, CBT, BS, CR
    write(p, "\x1b[12;1Ha\tb\tc\x1b[2Id\x1b[2Ze\rf\bg\x08\x08h")
    assert screen(p)[11] == "h       b       c       e       d"
    # erasing: EL 0/1/2, ECH, ED 0/1/2
    write(p, "\x1b[14;1H0123456789\x1b[14;4H\x1b[K\x1b[15;1H0123456789\x1b[15;4H\x1b[1K"
             "\x1b[16;1H0123456789\x1b[2K\x1b[17;1H0123456789\x1b[17;3H\x1b[3X")
    s = screen(p)
    assert s[13:17] == ["012", "    456789", "", "01   56789"]
    write(p, "\x1b[15;6H\x1b[J")
    s = screen(p)
    assert s[14] == "    4" and s[15:] == [""] * (rows - 15) and s[2] == "R   X"
    write(p, "\x1b[3;6H\x1b[1J")
    s = screen(p)
    assert s[:2] == ["", ""] and s[2] == "" and s[14] == "    4"
    write(p, "\x1b[2J")
    assert screen(p) == [""] * rows
    # the cursor is drawn (inverse) where it is, and DECTCEM hides it
    write(p, "\x1b[4;7H")
    c = cell(p, 3, 6)
    assert "tC" in c["cls"] and c["bg"] == FG and c["color"] == BG, c
    write(p, "\x1b[?25l")
    assert p.evaluate("document.querySelectorAll('.tC').length") == 0
    write(p, "\x1b[?25h")
    assert p.evaluate("document.querySelectorAll('.tC').length") == 1


def test_insert_and_delete(term):
    p = term
    rows = p.evaluate("t.rows")
    # ICH, DCH, REP
    write(p, "abcdefgh\x1b[1;3H\x1b[2@")
    assert screen(p)[0] == "ab  cdefgh"
    write(p, "\x1b[1;2H\x1b[3P")
    assert screen(p)[0] == "acdefgh"
    write(p, "\x1b[2;1Hx\x1b[4b")
    assert screen(p)[1] == "xxxxx"
    # IRM (insert mode) pushes the rest of the line right
    write(p, "\x1b[1;2H\x1b[4hZY\x1b[4lW")
    assert screen(p)[0] == "aZYWdefgh"
    # IL and DL, inside the whole screen
    write(p, "\x1b[H\x1b[2J" + "".join("\x1b[%d;1Hline%d" % (i + 1, i) for i in range(6)))
    write(p, "\x1b[3;5H\x1b[2L")
    assert screen(p)[:8] == ["line0", "line1", "", "", "line2", "line3", "line4", "line5"]
    assert cursor(p) == (3, 1)
    write(p, "\x1b[1;1H\x1b[3M")
    assert screen(p)[:6] == ["", "line2", "line3", "line4", "line5", ""]
    # lines pushed off the bottom by IL are gone
    write(p, "\x1b[%d;1Hbottom\x1b[1;1H\x1b[L" % rows)
    assert "bottom" not in p.evaluate("t.text()")


def test_deferred_wrap(term):
    p = term
    cols = p.evaluate("t.cols")
    # a full line leaves the cursor on its last column, wrap pending
    write(p, "A" * cols)
    assert cursor(p) == (1, cols)
    # CR LF then does not leave an empty line (what vi and top rely on)
    write(p, "\r\nnext")
    assert screen(p)[:2] == ["A" * cols, "next"]
    # the next character wraps
    write(p, "\x1b[3;1H" + "B" * cols + "C")
    assert screen(p)[2:4] == ["B" * cols, "C"]
    # a move cancels the pending wrap
    write(p, "\x1b[5;1H" + "D" * cols + "\x1b[5;%dHE" % cols)
    assert screen(p)[4] == "D" * (cols - 1) + "E" and screen(p)[5] == ""
    # without DECAWM the last column is overwritten
    write(p, "\x1b[?7l\x1b[7;1H" + "F" * cols + "GH\x1b[?7h")
    assert screen(p)[6] == "F" * (cols - 1) + "H" and screen(p)[7] == ""
    # writing at the bottom-right corner does not scroll until the next character
    rows = p.evaluate("t.rows")
    write(p, "\x1b[%d;1H" % rows + "G" * cols)
    assert screen(p)[0] == "A" * cols and screen(p)[-1] == "G" * cols
    write(p, "g")
    assert screen(p)[0] == "next" and screen(p)[-2:] == ["G" * cols, "g"]


def test_scroll_regions(term):
    p = term
    rows = p.evaluate("t.rows")
    fill = "".join("\x1b[%d;1Hrow%d" % (i + 1, i) for i in range(rows))
    # DECSTBM rows 3..6 (the cursor goes home); LF at the bottom margin scrolls only them
    write(p, fill + "\x1b[3;6r")
    assert cursor(p) == (1, 1)
    write(p, "\x1b[6;1H\nnew")
    s = screen(p)
    assert s[:7] == ["row0", "row1", "row3", "row4", "row5", "new", "row6"], s[:7]
    assert s[-1] == "row%d" % (rows - 1)
    # RI (ESC M) at the top margin scrolls the region down
    write(p, "\x1b[3;1H\x1bMtop")
    assert screen(p)[:7] == ["row0", "row1", "top", "row3", "row4", "row5", "row6"]
    # SU and SD move the region's content, nothing else
    write(p, "\x1b[2S")
    assert screen(p)[:7] == ["row0", "row1", "row4", "row5", "", "", "row6"]
    write(p, "\x1b[T")
    assert screen(p)[:7] == ["row0", "row1", "", "row4", "row5", "", "row6"]
    # IND (ESC D) and NEL (ESC E) at the bottom margin scroll the region too
    write(p, "\x1b[6;4H\x1bDx\x1bEy")
    assert screen(p)[:7] == ["row0", "row1", "row5", "", "   x", "y", "row6"]
    # a line below the region: LF at the screen's bottom does not scroll the region
    write(p, "\x1b[%d;1H\nLASTLINE!" % rows)
    assert screen(p)[-1] == "LASTLINE!" and screen(p)[6] == "row6" and screen(p)[0] == "row0"
    # origin mode: CUP counts from the top margin and stays in the region
    write(p, "\x1b[?6h\x1b[1;1HO\x1b[99;1HP\x1b[?6l")
    assert screen(p)[2] == "Oow5" and screen(p)[5] == "P"
    # the full screen again; lines scrolled off the top become history
    write(p, "\x1b[r\x1b[%d;1H\n\n" % rows)
    assert screen(p)[0] == "Oow5"
    hist = p.evaluate("document.querySelector('.term-vp > div').children.length - t.rows")
    assert hist == 2
    assert p.evaluate("[...document.querySelector('.term-vp > div').children].slice(0, 2)"
                      ".map(d => d.textContent)") == ["row0", "row1"]
    # history keeps the last 1000 lines; ED 3 clears it
    write(p, "\r\n".join("h%d" % i for i in range(1200)))
    assert p.evaluate("document.querySelector('.term-vp > div').children.length") == 1000 + rows
    assert p.evaluate("document.querySelector('.term-vp > div').firstChild.textContent") == "h%d" % (1200 - rows - 1000)
    write(p, "\x1b[3J")
    assert p.evaluate("document.querySelector('.term-vp > div').children.length") == rows
    assert screen(p)[-1] == "h1199"


def test_alternate_screen(term):
    p = term
    write(p, "main one\r\nmain two\x1b[2;5H")
    # 1049: cursor saved, alternate screen entered and cleared
    write(p, "\x1b[?1049h")
    assert set(screen(p)) == {""}
    write(p, "\x1b[HALT\x1b[5;5H\x1b[32mgreen")
    assert screen(p)[0] == "ALT" and "main" not in p.evaluate("t.text()")
    assert p.evaluate("getComputedStyle(document.querySelector('.term-vp > div')).display") == "none"
    # leaving restores the main screen and the cursor
    write(p, "\x1b[?1049l")
    assert screen(p)[:2] == ["main one", "main two"]
    assert cursor(p) == (2, 5)
    assert "ALT" not in p.evaluate("document.querySelector('.term-vp').innerText.replace(/\\s/g, '')")
    # entering again starts blank
    write(p, "\x1b[?1049h")
    assert set(screen(p)) == {""}
    write(p, "\x1b[?1049l")
    # 47 keeps the alternate screen's content, 1047 clears it when leaving
    write(p, "\x1b[?47hkept\x1b[?47l")
    assert screen(p)[1].startswith("main")
    write(p, "\x1b[?47h")
    assert "kept" in p.evaluate("t.text()")
    write(p, "\x1b[?1047l\x1b[?1047h")
    assert set(screen(p)) == {""}
    write(p, "\x1b[?1047l")
    assert screen(p)[:2] == ["main one", "main two"]
    # the alternate screen keeps no history
    rows = p.evaluate("t.rows")
    write(p, "\x1b[?1049h" + "x\r\n" * (rows * 2) + "\x1b[?1049l")
    assert p.evaluate("document.querySelectorAll('.term-vp > div')[1].children.length") == rows


def test_colours_16_256_and_truecolor(term):
    p = term
    write(p, "\x1b[31mR\x1b[0m\x1b[1;94mB\x1b[0m\x1b[42mG\x1b[0m\x1b[103mY\x1b[0m"
             "\x1b[38;5;196mX\x1b[48;5;21mZ\x1b[0m\x1b[38;5;244mg\x1b[0m\x1b[38;5;3mo\x1b[0m"
             "\x1b[38;2;1;2;3mT\x1b[48;2;250;128;0mU\x1b[0m\x1b[38:2::10:20:30mV\x1b[38:5:46mW\x1b[0m"
             "\x1b[7mI\x1b[27m\x1b[31;7mJ\x1b[0m\x1b[3;4mK\x1b[24;23mk\x1b[9mS\x1b[0m\x1b[2mD\x1b[22mN\x1b[39mn")
    c = [cell(p, 0, i) for i in range(18)]
    assert [x["ch"] for x in c] == list("RBGYXZgoTUVWIJKkSD")
    # 16 colours are classes
    assert c[0]["cls"] == "tf1" and c[0]["color"] == "rgb(205, 0, 0)"
    assert set(c[1]["cls"].split()) == {"tf12", "tB"} and c[1]["color"] == "rgb(92, 92, 255)"
    assert int(c[1]["weight"]) >= 600
    assert c[2]["cls"] == "tb2" and c[2]["bg"] == "rgb(0, 205, 0)" and c[2]["color"] == FG
    assert c[3]["cls"] == "tb11" and c[3]["bg"] == "rgb(255, 255, 0)"
    # 256 colours: the cube, the grey ramp, and the first 16 as classes
    assert c[4]["color"] == "rgb(255, 0, 0)" and c[4]["bg"] == NO_BG
    assert c[5]["color"] == "rgb(255, 0, 0)" and c[5]["bg"] == "rgb(0, 0, 255)"
    assert c[6]["color"] == "rgb(128, 128, 128)"
    assert c[7]["cls"] == "tf3" and c[7]["color"] == "rgb(205, 205, 0)"
    # truecolor, with semicolons and with colons
    assert c[8]["color"] == "rgb(1, 2, 3)"
    assert c[9]["color"] == "rgb(1, 2, 3)" and c[9]["bg"] == "rgb(250, 128, 0)"
    assert c[10]["color"] == "rgb(10, 20, 30)"
    assert c[11]["color"] == "rgb(0, 255, 0)"
    # inverse swaps the colours, the defaults included
    assert c[12]["color"] == BG and c[12]["bg"] == FG
    assert c[13]["color"] == BG and c[13]["bg"] == "rgb(205, 0, 0)"
    # italic and underline, each switched off alone; strike-through; dim
    assert c[14]["italic"] == "italic" and c[14]["deco"] == "underline"
    assert c[15]["italic"] == "normal" and c[15]["deco"] == "none"
    assert c[16]["deco"] == "line-through"
    assert "tD" in c[17]["cls"]
    assert cell(p, 0, 18)["cls"] == "" and cell(p, 0, 19)["color"] == FG
    # erasing fills with the current background (as xterm does)
    write(p, "\x1b[3;1H\x1b[44m\x1b[K\x1b[0m")
    assert cell(p, 2, 10)["bg"] == "rgb(0, 0, 238)"


def test_utf8_split_wide_and_line_drawing(term):
    p = term
    euro, smile = "€".encode(), "😀".encode()
    # multi-byte sequences split across writes
    write(p, b"a" + euro[:1], frame=False)
    write(p, euro[1:] + smile[:2], frame=False)
    write(p, smile[2:] + "é中b".encode())
    assert screen(p)[0] == "a€😀é中b"
    # wide characters take two cells
    assert cursor(p) == (1, 9)
    # combining marks join their character
    write(p, "\r\ne\u0301x")
    assert screen(p)[1] == "e\u0301x" and cursor(p) == (2, 3)
    # DEC special graphics through ESC ( 0, and through SO/SI with G1
    write(p, "\r\n\x1b(0lqqk\x1b(B x\r\n\x1b)0\x0emjx\x0fq")
    assert screen(p)[2:4] == ["┌──┐ x", "└┘│q"]


def test_resize(term):
    p = term
    cols, rows = p.evaluate("[t.cols, t.rows]")
    # onResize is called once at first with the initial size
    p.wait_for_function("() => sizes.length === 1")
    assert p.evaluate("sizes") == [[cols, rows]]
    write(p, "first line\r\nsecond")
    p.evaluate("box.style.width = '500px'; box.style.height = '210px'")
    p.wait_for_function("() => sizes.length === 2")
    c2, r2 = p.evaluate("sizes[1]")
    assert p.evaluate("[t.cols, t.rows]") == [c2, r2]
    assert c2 < cols and r2 < rows, (c2, r2)
    # the element's size in cells: as many as fit
    w = p.evaluate("document.querySelector('.term-probe').getBoundingClientRect().width / 40")
    h = p.evaluate("document.querySelector('.term-probe').getBoundingClientRect().height")
    vp = p.evaluate("[document.querySelector('.term-vp').clientWidth, document.querySelector('.term-vp').clientHeight]")
    assert c2 == int(vp[0] // w) and r2 == int(vp[1] // h), (c2, r2, vp, w, h)
    assert screen(p)[:2] == ["first line", "second"]
    assert len(screen(p)) == r2
    # shrinking below the cursor keeps the cursor's line: the top goes to history
    write(p, "\x1b[%d;1Hbottom" % r2)
    p.evaluate("box.style.height = '105px'")
    p.wait_for_function("() => sizes.length === 3")
    r3 = p.evaluate("t.rows")
    assert screen(p)[-1] == "bottom" and cursor(p) == (r3, 7)
    # a narrower screen truncates lines, a wider one brings blank columns
    write(p, "\x1b[H" + "x" * c2)
    p.evaluate("box.style.width = '300px'")
    p.wait_for_function("() => sizes.length === 4")
    c4 = p.evaluate("t.cols")
    assert screen(p)[0] == "x" * c4
    p.evaluate("box.style.width = '800px'; box.style.height = '420px'")
    p.wait_for_function("() => sizes.length === 5")
    assert p.evaluate("sizes[4]") == [cols, rows]
    assert screen(p)[0] == "x" * c4


def _paste_event(page, text):
    page.evaluate("""s => {
        const dt = new DataTransfer();
        dt.setData('text/plain', s);
        document.activeElement.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
    }""", text)


def test_paste(term):
    p = term
    p.evaluate("t.focus()")
    _paste_event(p, "echo one\necho two")
    # line feeds become carriage returns, as the Enter key sends
    assert sent(p) == "echo one\recho two"
    # bracketed paste mode wraps it, and no escape inside can end it early
    write(p, "\x1b[?2004h")
    _paste_event(p, "ls\x1b[201~rm\n")
    assert sent(p) == "\x1b[200~ls[201~rm\r\x1b[201~"
    write(p, "\x1b[?2004l")
    # the real clipboard and the keyboard's paste
    p.evaluate("navigator.clipboard.writeText('from the clipboard')")
    p.keyboard.press("Control+V")
    p.wait_for_function("() => got.length > 0")
    assert sent(p) == "from the clipboard"
    p.keyboard.press("Shift+Insert")
    p.wait_for_function("() => got.length > 0")
    assert sent(p) == "from the clipboard"


KEYS = [
    ("ArrowUp", "\x1b[A"), ("ArrowDown", "\x1b[B"), ("ArrowRight", "\x1b[C"), ("ArrowLeft", "\x1b[D"),
    ("Home", "\x1b[H"), ("End", "\x1b[F"), ("PageUp", "\x1b[5~"), ("PageDown", "\x1b[6~"),
    ("Insert", "\x1b[2~"), ("Delete", "\x1b[3~"),
    ("F1", "\x1bOP"), ("F4", "\x1bOS"), ("F5", "\x1b[15~"), ("F10", "\x1b[21~"), ("F12", "\x1b[24~"),
    ("Tab", "\t"), ("Shift+Tab", "\x1b[Z"), ("Backspace", "\x7f"), ("Enter", "\r"), ("Escape", "\x1b"),
    ("Control+A", "\x01"), ("Control+C", "\x03"), ("Control+D", "\x04"), ("Control+Z", "\x1a"),
    ("Control+BracketLeft", "\x1b"), ("Control+Backslash", "\x1c"), ("Control+Space", "\x00"),
    ("Alt+x", "\x1bx"), ("Alt+Backspace", "\x1b\x7f"), ("Control+ArrowLeft", "\x1b[1;5D"),
    ("Shift+F5", "\x1b[15;2~"), ("a", "a"), ("Shift+A", "A"), ("7", "7"), ("Shift+Digit7", "&"),
]


def test_keys(term):
    p = term
    p.evaluate("t.focus()")
    for key, want in KEYS:
        p.keyboard.press(key)
        assert sent(p) == want, key
    p.keyboard.type("héllo wörld")
    assert sent(p) == "héllo wörld"
    # application cursor keys (DECCKM), as vi and less ask for
    write(p, "\x1b[?1h")
    for key, want in [("ArrowUp", "\x1bOA"), ("ArrowLeft", "\x1bOD"), ("Home", "\x1bOH"), ("End", "\x1bOF"),
                      ("Shift+ArrowUp", "\x1b[1;2A")]:
        p.keyboard.press(key)
        assert sent(p) == want, key
    write(p, "\x1b[?1l")
    p.keyboard.press("ArrowUp")
    assert sent(p) == "\x1b[A"


def test_copy_selection(term):
    p = term
    write(p, "first line here\r\nsecond line\r\n\x1b[31mthird\x1b[0m line")
    # drag the mouse from the start of "line" on row 0 to the end of row 2's "third"
    box0 = p.evaluate("(() => { const r = rowEl(0).getBoundingClientRect(); return [r.x, r.y, r.height]; })()")
    cw = p.evaluate("document.querySelector('.term-probe').getBoundingClientRect().width / 40")
    x0, y0, h = box0
    p.mouse.move(x0 + 6 * cw + 1, y0 + h / 2)
    p.mouse.down()
    p.mouse.move(x0 + 3 * cw, y0 + h * 1.5, steps=5)
    p.mouse.move(x0 + 5 * cw, y0 + h * 2.5, steps=5)
    p.mouse.up()
    assert p.evaluate("getSelection().toString()") == "line here\nsecond line\nthird"
    # Ctrl+C copies a selection instead of sending ^C
    p.evaluate("navigator.clipboard.writeText('')")
    p.keyboard.press("Control+C")
    p.wait_for_function("() => (navigator.clipboard.readText().then(s => window.clip = s), window.clip)")
    assert p.evaluate("navigator.clipboard.readText()") == "line here\nsecond line\nthird"
    assert sent(p) == ""
    # Ctrl+Shift+C copies too (where the browser would open its inspector)
    p.evaluate("navigator.clipboard.writeText(''); window.clip = ''")
    p.keyboard.press("Control+Shift+C")
    p.wait_for_function("() => (navigator.clipboard.readText().then(s => window.clip = s), window.clip)")
    assert p.evaluate("window.clip") == "line here\nsecond line\nthird"
    assert sent(p) == ""
    # a click puts the focus back to typing; without a selection Ctrl+C is ^C
    p.mouse.click(x0 + 2, y0 + h * 5)
    assert p.evaluate("getSelection().isCollapsed")
    p.keyboard.press("Control+C")
    assert sent(p) == "\x03"


# ---------------------------------------------------------------------------
# real programs through the gateway


@pytest.fixture
def open_gw(gateway_factory, dockerd, tmp_path, page_server):
    """No credentials (anonymous admin on loopback); the test page's origin may
    open WebSockets and make requests."""
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"cors_origins": [page_server.origin]}))
    return gateway_factory(upstream=dockerd.url, args=["--config", str(path)])


def open_console(page, gw, container, mode="exec"):
    page.evaluate("""([server, container, mode]) => {
        window.exited = null;
        window.con = openConsole(box, {server, container, mode, cmd: 'sh',
                                       onExit: (code, reason) => { window.exited = [code, reason]; }});
        window.t = con.term;
    }""", [gw.url, container, mode])


def wait_screen(page, predicate, arg=None, what="the screen"):
    """Waits until predicate(rows, arg) (a JS function of the screen's rows) holds."""
    try:
        page.wait_for_function("arg => (%s)(t.text().split('\\n'), arg)" % predicate, arg=arg, timeout=WAIT_MS)
    except Exception as e:
        raise AssertionError("timed out waiting for %s; screen:\n%s" % (what, page.evaluate("t.text()"))) from e


PROMPT = "rows => rows.filter(r => r).slice(-1)[0] === '/ #'"


def settle(page):
    """Makes sure busybox ash took the answer to its question.

    After each prompt ash asks the terminal where the cursor is (ESC [ 6 n),
    and keys that reach it within about 50 ms of the answer are read with it
    and dropped. A person never types that fast after a prompt, Playwright
    does. So a probe key goes first, and again if it was lost (the only wait
    here that ends by time: a lost key never shows), then Ctrl+U erases it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    wait_screen(page, PROMPT, what="the shell prompt")
    for _ in range(3):
        page.keyboard.press("x")
        try:
            page.wait_for_function("() => /^\\/ # x+$/.test(t.text().split('\\n').filter(r => r).pop())",
                                   timeout=2000)
            break
        except PlaywrightTimeout:
            continue
    else:
        raise AssertionError("the shell never echoed a key; screen:\n%s" % page.evaluate("t.text()"))
    page.keyboard.press("Control+U")
    wait_screen(page, PROMPT, what="the prompt again")


def type_line(page, line, shell=True):
    """Types a line and Enter, at the shell's prompt unless shell is False."""
    if shell:
        settle(page)
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def clear(page):
    type_line(page, "clear")
    wait_screen(page, "rows => rows[0] === '/ #' && rows.slice(1).every(r => !r)", what="a cleared screen")


def expect_stty_size(page, what, shell=True):
    """Runs `stty size` and waits for the terminal's own size in its answer;
    returns that size, (cols, rows)."""
    cols, rows = page.evaluate("[t.cols, t.rows]")
    type_line(page, "stty size", shell)
    wait_screen(page, "(rows, s) => rows.includes(s)", "%d %d" % (rows, cols), what)
    return cols, rows


def test_vi_in_exec_console(page, open_gw, running_container):
    open_console(page, open_gw, running_container)
    wait_screen(page, PROMPT, what="the shell prompt")
    rows = page.evaluate("t.rows")
    type_line(page, "vi /tmp/x")
    # busybox vi: an empty first line, '~' down to the status line, which names the file
    wait_screen(page, """(rows, n) => rows.length === n && rows[0] === '' &&
                         rows.slice(1, n - 1).every(r => r === '~') && rows[n - 1].includes('/tmp/x')""",
                rows, "vi's screen")
    snapshot(page, "vi")
    page.keyboard.type("ihello from vi")
    wait_screen(page, "rows => rows[0] === 'hello from vi' && rows[rows.length - 1].startsWith('I ')",
                what="the typed text, in insert mode")
    # vi takes an ESC followed at once by more keys for a key's sequence: the
    # next command waits for the status line to show command mode
    page.keyboard.press("Escape")
    wait_screen(page, "rows => rows[rows.length - 1].startsWith('- ')", what="vi's command mode")
    type_line(page, ":wq", shell=False)
    wait_screen(page, PROMPT, what="the prompt after vi")
    # the output's own marker: the echoed command line holds $((40+2)), not 42
    type_line(page, "cat /tmp/x; echo =$((40+2))=")
    wait_screen(page, "rows => rows[rows.indexOf('=42=') - 1] === 'hello from vi'", what="the file's content")
    type_line(page, "exit 7")
    page.wait_for_function("() => window.exited")
    assert page.evaluate("exited") == [7, "exit 7"]
    assert page.text_content(".console-status") == "Process exited with code 7"


def test_top_in_exec_console(page, open_gw, running_container):
    open_console(page, open_gw, running_container)
    wait_screen(page, PROMPT, what="the shell prompt")
    type_line(page, "top")
    wait_screen(page, """rows => rows[0].startsWith('Mem:') && rows[1].startsWith('CPU:') &&
                         rows[2].startsWith('Load average:') && /^\\s*PID\\s+PPID\\s+USER/.test(rows[3]) &&
                         rows.some(r => / top$/.test(r))""", what="top's header and its own process")
    # the column header is drawn in inverse video
    snapshot(page, "top")
    c = cell(page, 3, 2)
    assert c["ch"] == "P" and c["bg"] == FG and c["color"] == BG, c
    page.keyboard.press("q")
    wait_screen(page, PROMPT, what="the prompt after top")
    type_line(page, "exit")
    page.wait_for_function("() => window.exited")
    assert page.evaluate("exited") == [0, "exit 0"]


def test_colours_from_the_shell(page, open_gw, running_container):
    open_console(page, open_gw, running_container)
    wait_screen(page, PROMPT, what="the shell prompt")
    clear(page)
    type_line(page, r"printf '\033[31mRED\033[0m \033[1;92mLIME\033[0m \033[38;5;208mORANGE\033[0m "
                    r"\033[48;5;27mBLUE\033[0m \033[38;2;10;200;30mTRUE\033[0m\n'")
    wait_screen(page, "rows => rows.includes('RED LIME ORANGE BLUE TRUE')", what="the colours")
    row = screen(page).index("RED LIME ORANGE BLUE TRUE")
    page.evaluate("frame()")
    assert cell(page, row, 0)["color"] == "rgb(205, 0, 0)"
    lime = cell(page, row, 4)
    assert lime["color"] == "rgb(0, 255, 0)" and int(lime["weight"]) >= 600
    assert cell(page, row, 9)["color"] == "rgb(255, 135, 0)"
    assert cell(page, row, 16)["bg"] == "rgb(0, 95, 255)"
    assert cell(page, row, 21)["color"] == "rgb(10, 200, 30)"
    assert cell(page, row, 3)["color"] == FG


def test_resize_and_paste_in_shell(page, open_gw, running_container):
    open_console(page, open_gw, running_container)
    wait_screen(page, PROMPT, what="the shell prompt")
    # the size given when the console opened
    cols, rows = expect_stty_size(page, "the first size")
    page.evaluate("box.style.width = '520px'; box.style.height = '260px'")
    page.wait_for_function("([c, r]) => t.cols !== c && t.rows !== r", arg=[cols, rows])
    clear(page)
    expect_stty_size(page, "the new size")
    # a pasted command line runs
    settle(page)
    _paste_event(page, "echo PASTED=$((6*7))\n")
    wait_screen(page, "rows => rows.includes('PASTED=42')", what="the pasted command's output")
    type_line(page, "exit 3")
    page.wait_for_function("() => window.exited")
    assert page.evaluate("exited") == [3, "exit 3"]


@pytest.fixture
def tty_container(docker_direct, busybox_image, uniq):
    cid = docker_direct.out("run", "-d", "-i", "-t", "--name", uniq("tty"), busybox_image, "sh")
    yield cid
    docker_direct.run("rm", "-f", cid, check=False)


def test_attach_console(page, open_gw, tty_container, api_direct):
    # resizes are HTTP requests beside the socket: count the answered ones
    page.evaluate("""() => {
        window.resized = 0;
        const f = window.fetch;
        window.fetch = (url, o) => f(url, o).then(r => { if (url.includes('/resize?')) resized++; return r; });
    }""")
    open_console(page, open_gw, tty_container, mode="attach")
    page.wait_for_function("() => resized === 1")
    # the shell was started before and shows no prompt yet: a line of input shows it
    type_line(page, "echo ATT=$((2*3))", shell=False)
    wait_screen(page, "rows => rows.includes('ATT=6')", what="the attached shell's output")
    # the panel resized the container's terminal to its own size
    cols, rows = expect_stty_size(page, "the attached size", shell=False)
    page.evaluate("box.style.width = '520px'; box.style.height = '260px'")
    page.wait_for_function("([c, r]) => t.cols !== c && t.rows !== r && resized === 2", arg=[cols, rows])
    expect_stty_size(page, "the new attached size", shell=False)
    # the container's shell exits: the panel reports its exit code
    type_line(page, "exit 5")
    page.wait_for_function("() => window.exited")
    assert page.evaluate("exited") == [5, "exit 5"]
    assert page.text_content(".console-status") == "Process exited with code 5"
    assert api_direct.inspect_container(tty_container)["State"]["ExitCode"] == 5
