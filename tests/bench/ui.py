#!/usr/bin/env python3
"""The web UI's speed in a browser: Debian's chromium (never a downloaded
one), driven by Playwright for Python, with the CPU throttled through the
Chrome DevTools Protocol. bench.py runs this with the Python that has
Playwright (tests/bench/run.sh sets it up) and reads one JSON line per visit
from its standard output.

A visit is a fresh page in a signed-in browser context:

  1. CDP: Emulation.setCPUThrottlingRate (default 4), and
     Network.setCacheDisabled for the first visit (the repeat visit uses the
     cache an untimed visit filled: the hashed assets are immutable);
  2. navigate to /_dockermand/ui/#/containers;
  3. once the list's rows are rendered, type a container's name into the
     search field: the init script below focuses the field the moment the
     rows are there and tells Playwright, which inserts the text with a
     real input event (CDP Input.insertText), as a paste would;
  4. "interactive" is performance.now() (milliseconds from navigation
     start) at the moment the rows are filtered, taken in the page by a
     MutationObserver that an init script installed before any of the
     page's own scripts ran.

Also recorded: first contentful paint, the long tasks (> 50 ms) until that
moment, and the bytes the UI's own files took (Resource and Navigation
Timing: transferSize, encodedBodySize; the API's replies are not counted).
The moment includes the automation's own reaction time (a round trip from
the page to Playwright and back before the text arrives), so it is an upper
bound of what a user would see.

    ui.py --origin http://127.0.0.1:PORT --user NAME --password-file F \
          --search NAME [--runs N] [--throttle 4] [--shots DIR]
"""

import argparse
import json
import os
import sys
import time

CHROMIUM = "/usr/bin/chromium"
# The flags the e2e tests launch it with.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# What the containers screen renders: the screen, its rows (one per
# container), and the search field that filters them.
SCREEN = ".screen-containers"
ROWS = ".screen-containers table tbody tr"
SEARCH = ".screen-containers input[type=search]"
ROUTE = "/_dockermand/ui/#/containers"
# Files of the UI itself, as opposed to the API calls the page makes.
UI_PREFIX = "/_dockermand/ui/"

# Installed before the page's own scripts: paint and long-task observers,
# and a MutationObserver that notes when all rows are there (and focuses the
# search field then), then when the search has filtered them.
WATCH = """
(() => {
  const ROWS = %(rows)s, SEARCH = %(search)s, TERM = %(term)s;
  const ALL = %(all)d, SHOWN = %(shown)d;
  const m = window.__dmbench = {rowsAt: null, filteredAt: null, fcp: null, longtasks: [], onRows: null};
  try {
    new PerformanceObserver(l => { for (const e of l.getEntries()) m.longtasks.push([e.startTime, e.duration]); })
      .observe({type: 'longtask', buffered: true});
  } catch (e) { m.longtasks = null; }
  try {
    new PerformanceObserver(l => { for (const e of l.getEntries()) if (e.name === 'first-contentful-paint') m.fcp = e.startTime; })
      .observe({type: 'paint', buffered: true});
  } catch (e) { /* fcp stays null */ }
  const seen = () => {
    const rows = document.querySelectorAll(ROWS);
    const q = document.querySelector(SEARCH);
    if (m.rowsAt === null && rows.length === ALL) {
      m.rowsAt = performance.now();
      if (q) q.focus();
      if (m.onRows) m.onRows();
    }
    if (m.rowsAt === null || m.filteredAt !== null) return;
    if (q && q.value === TERM && rows.length === SHOWN && [...rows].every(r => r.textContent.includes(TERM))) {
      m.filteredAt = performance.now();
      watch.disconnect();
    }
  };
  const watch = new MutationObserver(seen);
  watch.observe(document, {childList: true, subtree: true, characterData: true});
})();
"""

# Resolves once the rows are there (true), or after `timeout` ms (false).
WAIT_ROWS = """
(timeout) => new Promise((resolve, reject) => {
  const m = window.__dmbench;
  if (!m) return reject(new Error('the watcher is not installed'));
  if (m.rowsAt !== null) return resolve(true);
  m.onRows = () => resolve(true);
  setTimeout(() => resolve(false), timeout);
})
"""

# The measurements, read once the rows are filtered.
READ = """
(prefix) => {
  const m = window.__dmbench;
  const nav = performance.getEntriesByType('navigation')[0];
  const mine = [nav, ...performance.getEntriesByType('resource')]
    .filter(e => e && new URL(e.name).pathname.startsWith(prefix));
  const sum = k => mine.reduce((a, e) => a + (e[k] || 0), 0);
  const long = (m.longtasks || []).filter(([start]) => start <= m.filteredAt);
  return {
    rows_ms: m.rowsAt, interactive_ms: m.filteredAt, fcp_ms: m.fcp,
    longtasks: m.longtasks === null ? null : long.length,
    longtask_ms: long.reduce((a, [, d]) => a + d, 0),
    transfer_bytes: sum('transferSize'), encoded_bytes: sum('encodedBodySize'),
    decoded_bytes: sum('decodedBodySize'),
    files: mine.map(e => [new URL(e.name).pathname, e.transferSize, e.encodedBodySize]),
    // The API calls until then: [path, start, end] (ms; end 0 for a stream still open).
    api: performance.getEntriesByType('resource').filter(e => !mine.includes(e) && e.startTime <= m.filteredAt)
      .map(e => [new URL(e.name).pathname, Math.round(e.startTime), Math.round(e.responseEnd)]),
  };
}
"""

# A fixed amount of script work, timed in the page: the throttle check.
SPIN = """(n) => { const t = performance.now(); let x = 0; for (let i = 0; i < n; i++) x = (x + i * 7) % 1000003;
  return [performance.now() - t, x]; }"""


def throttle_seen(page, cdp, rate):
    """How much longer the same script work takes with the throttle on than
    off, on one page (fastest of three each way): about `rate` when the
    throttle takes."""
    def spin(n):
        return min(page.evaluate(SPIN, n)[0] for _ in range(3))
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    n = 1_000_000
    while spin(n) < 30 and n < 1e9:  # about 30 ms unthrottled
        n *= 2
    base = spin(n)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    return spin(n) / base


def emit(obj):
    print(json.dumps(obj), flush=True)


def log(msg):
    print(f"[ui.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--origin", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--search", required=True, help="a container name to type into the search field")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--throttle", type=float, default=4.0)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds a visit may take")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds of pause before a timed visit")
    ap.add_argument("--shots", help="directory for a screenshot of the last visit")
    a = ap.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"ui.py: {CHROMIUM} is missing (tests/bench/run.sh installs Debian's chromium)")
    password = open(a.password_file).read().strip()

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            run(browser, a, password)
        finally:
            browser.close()


def run(browser, a, password):
    origin = a.origin.rstrip("/")
    timeout_ms = a.timeout * 1000
    seen = None
    for r in range(a.runs):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(timeout_ms)
        try:
            # Signed in through the API request context, which shares the
            # browser context's cookies (dockermand_session); the page gets
            # the other half of the session's secret where the UI keeps it.
            res = ctx.request.post(origin + "/_dockermand/login", headers={"Origin": origin},
                                   data={"username": a.user, "password": password})
            if res.status != 200:
                sys.exit(f"ui.py: sign-in: {res.status} {res.text()[:300]}")
            binding = res.json()["binding"]
            ctx.add_init_script("localStorage.setItem('dockermand-binding', %s)" % json.dumps(binding))
            res = ctx.request.get(origin + "/containers/json?all=1", headers={"X-Dockermand-Binding": binding})
            if res.status != 200:
                sys.exit(f"ui.py: /containers/json: {res.status} {res.text()[:300]}")
            names = [((c.get("Names") or [""])[0]).lstrip("/") for c in res.json()]
            shown = sum(1 for n in names if a.search in n)
            if not shown:
                sys.exit(f"ui.py: no container is named like {a.search!r}: {names[:10]}")
            script = WATCH % {"rows": json.dumps(ROWS), "search": json.dumps(SEARCH),
                              "term": json.dumps(a.search), "all": len(names), "shown": shown}
            # first: no cache; then an untimed visit fills the cache; repeat: with it.
            for visit, timed, cache in (("first", True, False), ("fill", False, True), ("repeat", True, True)):
                if timed:
                    # The browser's own work left from the page before
                    # (closing it, caching the script it compiled) settles.
                    time.sleep(a.settle)
                page = ctx.new_page()
                cdp = ctx.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": not cache})
                if timed:
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": a.throttle})
                page.add_init_script(script)
                page.goto(origin + ROUTE, wait_until="commit")
                try:
                    if not page.evaluate(WAIT_ROWS, timeout_ms):
                        raise TimeoutError("no rows")
                    page.keyboard.insert_text(a.search)
                    page.wait_for_function("() => window.__dmbench.filteredAt !== null", timeout=timeout_ms)
                except Exception:
                    state = page.evaluate("() => [window.__dmbench, document.querySelectorAll(%s).length]"
                                          % json.dumps(ROWS))
                    sys.exit(f"ui.py: the rows were not filtered ({len(names)} containers, {shown} to "
                             f"show for {a.search!r}): {state}")
                if timed:
                    m = page.evaluate(READ, UI_PREFIX)
                    if seen is None:  # checked once, after the first measure
                        seen = throttle_seen(page, cdp, a.throttle)
                    m.update(run=r + 1, visit=visit, containers=len(names), shown=shown,
                             throttle=a.throttle, throttle_seen=seen)
                    emit(m)
                    log(f"run {r + 1} {visit}: interactive {m['interactive_ms']:.0f} ms, rows "
                        f"{m['rows_ms']:.0f} ms, fcp {m['fcp_ms'] or 0:.0f} ms, {m['transfer_bytes']} B, "
                        f"{m['longtasks']} long tasks; throttle seen x{m['throttle_seen']:.1f}")
                    if a.shots and r == a.runs - 1:
                        os.makedirs(a.shots, exist_ok=True)
                        page.screenshot(path=os.path.join(a.shots, f"ui-containers-{visit}.png"))
                cdp.detach()
                page.close()
        finally:
            ctx.close()


if __name__ == "__main__":
    main()
