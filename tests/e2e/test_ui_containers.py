"""The web UI's container screens in Debian's Chromium against the real
dockerd, through the gateway: the list with its search, filter and bulk
actions; the create form; and the detail tabs (logs of ordinary and TTY
containers, live stats, files up and down byte-exact, console, export). A
`read` user sees no write controls; an operator's policy refusal names its
rule and field; the keyboard reaches everything; a phone-sized list."""

import io
import json
import os
import re
import tarfile

from playwright.sync_api import expect

# Prints a numbered line every 0.2 s on stdout, and a coloured one on stderr.
TICKER = ('trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo "tick $i"; '
          'printf "\\033[32mgreen\\033[0m err $i\\n" >&2; sleep 0.2; done')
# Runs until stopped, and stops at once (sh as PID 1 ignores SIGTERM otherwise).
IDLE = 'trap "exit 0" TERM; while true; do sleep 0.1; done'


def row(page, name):
    return page.locator('tr[data-name="%s"]' % name)


def run(docker_direct, image, name, *args, cmd=IDLE):
    return docker_direct.out("run", "-d", "--name", name, *args, image, "sh", "-c", cmd)


def inspect(docker_direct, name):
    return json.loads(docker_direct.out("inspect", name))[0]


def test_create_form_builds_the_body(ui, busybox_image, docker_direct, uniq):
    """Every field of the form lands where dockerd expects it (created, not
    started: the private dockerd has no bridge to publish ports on)."""
    name = uniq("form")
    page = ui.goto("#/create")
    form = page.locator("#create-form")
    form.get_by_label("Image").fill(busybox_image)
    form.get_by_label("Name").fill(name)
    form.get_by_label("Command").fill("""sh -c 'echo "a b"; sleep 1' "two words" """)
    form.get_by_label("Environment").fill("A=1\nB=two words\n")
    form.get_by_label("Ports").fill("8080:80\n127.0.0.1:5353:53/udp\n9000")
    form.get_by_label("Binds and volumes").fill("/data\nnamed-%s:/named:ro" % name)
    form.get_by_label("Restart policy").select_option("unless-stopped")
    form.get_by_label("Network").select_option("none")
    form.get_by_label("Labels").fill("com.example.k=v=w\nflag")
    form.get_by_label("Memory limit").fill("64m")
    form.get_by_label("CPUs").fill("0.5")
    form.get_by_label("TTY (-t)").check()
    form.get_by_label("Keep stdin open (-i)").check()
    form.get_by_label("Start after create").uncheck()
    ui.shot("containers-create")
    form.get_by_role("button", name="Create").click()
    expect(row(page, name)).to_be_visible()
    expect(row(page, name).locator(".badge")).to_have_text("created")

    c = inspect(docker_direct, name)
    cfg, hc = c["Config"], c["HostConfig"]
    assert cfg["Cmd"] == ["sh", "-c", 'echo "a b"; sleep 1', "two words"]
    assert {"A=1", "B=two words"} <= set(cfg["Env"])
    assert cfg["Labels"] == {"com.example.k": "v=w", "flag": ""}
    assert cfg["Tty"] is True and cfg["OpenStdin"] is True
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp", "9000/tcp"}
    assert hc["PortBindings"]["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert hc["PortBindings"]["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "5353"}]
    assert hc["Binds"] == ["named-%s:/named:ro" % name]
    assert "/data" in cfg["Volumes"]
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    assert hc["NetworkMode"] == "none"
    assert hc["Memory"] == 64 << 20 and hc["NanoCpus"] == 500_000_000
    docker_direct.run("rm", "-f", "-v", name)
    docker_direct.run("volume", "rm", "named-" + name, check=False)


def test_run_from_the_form_and_follow_its_logs(ui, busybox_image, docker_direct, uniq):
    """Enter submits the form; the container runs and shows in the list; its
    logs follow new lines, stderr marked and ANSI colours as classes, and
    download as decoded text."""
    name = uniq("ticker")
    page = ui.goto("#/create")
    form = page.locator("#create-form")
    form.get_by_label("Image").fill(busybox_image)
    form.get_by_label("Name").fill(name)
    form.get_by_label("Command").fill("sh -c '%s'" % TICKER)
    form.get_by_label("Command").press("Enter")
    expect(row(page, name).locator(".badge")).to_have_text("running")
    ui.shot("containers-list")

    row(page, name).get_by_role("link", name=name).click()
    page.get_by_role("tab", name="Logs").click()
    log = page.locator("#log")
    expect(log).to_contain_text("tick 3")
    # new lines arrive while following
    last = int(log.locator("div", has_text="tick").last.inner_text().split()[-1])
    expect(log).to_contain_text("tick %d" % (last + 5))
    err = log.locator("div.stderr").first
    expect(err).to_contain_text("green err")
    expect(err.locator("span.fg2")).to_have_text("green")
    assert "\x1b" not in log.inner_text()
    ui.shot("container-logs")

    # search: only the matching lines stay
    page.locator("#log-search").fill("tick 2")
    page.locator("#log-only").check()
    expect(log.locator("div:visible").first).to_contain_text("tick 2")
    assert all("tick 2" in t for t in log.locator("div:visible").all_inner_texts())

    with page.expect_download() as dl:
        page.locator("#log-download").click()
    text = open(dl.value.path(), "rb").read()
    assert text.startswith(b"tick 1\n") or b"\ntick 1\n" in text, text[:200]
    assert b"\x01\x00\x00\x00" not in text and b"\x02\x00\x00\x00" not in text, "frame headers in the file"
    assert b"\x1b[32mgreen\x1b[0m err 1\n" in text


def test_tty_container_logs_are_shown(ui, busybox_image, docker_direct, uniq):
    """A container started with -t has a raw log stream, not frames
    (luci-app-dockerman shows it empty)."""
    name = uniq("tty")
    run(docker_direct, busybox_image, name, "-t", cmd='echo "tty hello"; printf "\\033[1;31mred\\033[0m\\n"; ' + IDLE)
    page = ui.goto("#/containers/%s/logs" % name)
    log = page.locator("#log")
    expect(log).to_have_attribute("data-tty", "true")
    expect(log).to_contain_text("tty hello")
    expect(log.locator("span.fg1.b")).to_have_text("red")
    ui.shot("container-logs-tty")


def samples_at_least(page, chart, n):
    # a function, not an expression: the page's CSP forbids eval
    page.wait_for_function("([id, n]) => (document.getElementById(id)?.dataset.samples || 0) >= n",
                           arg=["chart-" + chart, n], timeout=30000)


def test_stats_charts_move(ui, busybox_image, docker_direct, uniq):
    name = uniq("stats")
    run(docker_direct, busybox_image, name, cmd=TICKER)
    page = ui.goto("#/containers/%s/stats" % name)
    for chart in ("cpu", "mem", "net", "io"):
        samples_at_least(page, chart, 3)
    expect(page.locator("#stats-text")).to_contain_text("CPU")
    expect(page.locator("#stats-text")).to_contain_text("network none")
    before = int(page.locator("#chart-cpu").get_attribute("data-samples"))
    samples_at_least(page, "cpu", before + 1)
    ui.shot("container-stats")


# Chromium reports a background tab through document.hidden and a
# visibilitychange event; the page reacts to the event alone.
SET_HIDDEN = """(hidden) => {
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
    document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_a_hidden_tab_stops_its_streams(ui, ui_gw, busybox_image, docker_direct, uniq):
    name = uniq("hidden")
    cid = run(docker_direct, busybox_image, name, cmd=TICKER)
    page = ui.goto("#/containers/%s/stats" % name)
    samples_at_least(page, "cpu", 1)
    # hidden: the stats stream ends (the gateway logs a stream when it ends)
    page.evaluate(SET_HIDDEN, True)
    ui_gw.gw.wait_for_line(r'"GET /containers/%s/stats\?stream=1" 200' % cid, timeout=20)
    # shown again: the screen is rebuilt and streams anew
    with page.expect_request(lambda r: "/containers/%s/stats" % cid in r.url):
        page.evaluate(SET_HIDDEN, False)
    samples_at_least(page, "cpu", 1)


def test_processes_changes_inspect(ui, busybox_image, docker_direct, uniq):
    name = uniq("top")
    run(docker_direct, busybox_image, name, cmd="touch /made-here; " + IDLE)
    page = ui.goto("#/containers/%s/processes" % name)
    expect(page.locator(".tab-panel table")).to_contain_text("sh -c touch")
    ui.shot("container-processes")
    page.get_by_role("tab", name="Changes").click()
    expect(page.locator(".tab-panel")).to_contain_text("/made-here")
    ui.shot("container-changes")
    page.get_by_role("tab", name="Inspect").click()
    expect(page.locator(".tab-panel details.json").first).to_contain_text('"/%s"' % name)
    ui.shot("container-inspect")


def test_upload_then_download_is_byte_exact(ui, busybox_image, docker_direct, uniq, tmp_path):
    """A file goes up as a tar built in the browser and comes back extracted
    from the tar by the browser, with the same bytes; a name longer than
    ustar's 100 bytes travels in a pax header."""
    name = uniq("files")
    run(docker_direct, busybox_image, name)
    data = bytes(range(256)) * 300 + os.urandom(12345)
    short = "up-%s.bin" % name
    long = "long-" + "x" * 110 + ".bin"
    page = ui.goto("#/containers/%s/files?path=%%2Ftmp" % name)
    for fname in (short, long):
        page.locator("#upload-file").set_input_files(files=[{"name": fname, "mimeType": "application/octet-stream", "buffer": data}])
        page.get_by_role("button", name="Upload to /tmp").click()
        expect(row(page, fname)).to_be_visible()
        assert docker_direct.run("exec", name, "cat", "/tmp/" + fname).stdout == data
    expect(row(page, short)).to_contain_text("-rw-r--r--")
    ui.shot("container-files")

    with page.expect_download() as dl:
        row(page, short).get_by_role("button", name="Download", exact=True).click()
    assert dl.value.suggested_filename == short
    assert open(dl.value.path(), "rb").read() == data

    with page.expect_download() as dl:
        row(page, long).get_by_role("button", name="Download", exact=True).click()
    assert open(dl.value.path(), "rb").read() == data

    # a folder comes as a tar
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download /tmp as .tar").click()
    with tarfile.open(dl.value.path()) as tf:
        assert tf.extractfile("tmp/" + short).read() == data

    # browsing: a directory link opens it, the parent link goes back
    page.goto(ui.gw.origin + "/_dockermand/ui/#/containers/%s/files" % name)
    row(page, "bin").get_by_role("link").click()
    expect(row(page, "busybox")).to_be_visible()
    expect(row(page, "sh")).to_contain_text("→ busybox")


def test_export_with_progress(ui, busybox_image, docker_direct, uniq):
    name = uniq("export")
    run(docker_direct, busybox_image, name)
    page = ui.goto("#/containers/%s/export" % name)
    with page.expect_download() as dl:
        page.locator("#export").click()
    assert dl.value.suggested_filename == name + ".tar"
    expect(page.locator(".progress")).to_contain_text("saved as " + name + ".tar")
    ui.shot("container-export")
    with tarfile.open(dl.value.path()) as tf:
        assert "bin/busybox" in tf.getnames()


def test_upload_cancel_cuts_the_upload(ui, busybox_image, docker_direct, uniq):
    # 16 MiB sent by a browser held to 256 KiB/s: the upload is still
    # running a minute later, whenever Cancel comes.
    name = uniq("upcancel")
    run(docker_direct, busybox_image, name)
    ui.throttle(up=256 * 1024)
    page = ui.goto("#/containers/%s/files?path=%%2Ftmp" % name)
    page.locator("#upload-file").set_input_files(
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": os.urandom(16 << 20)}])
    page.get_by_role("button", name="Upload to /tmp").click()
    job = page.locator(".progress", has_text="Uploading big.bin")
    expect(job.locator(".info")).to_have_text(re.compile(r"^\d+(\.\d)? [KM]iB of 16\.\d MiB \(\d+%\)$"))
    ui.cancel(job)
    assert "uploaded" not in job.inner_text()
    # dockerd extracts as the tar arrives, so it may have kept what came
    # before the cut; never the whole file.
    size = docker_direct.run("exec", name, "sh", "-c", "stat -c %s /tmp/big.bin || echo 0").stdout
    assert int(size) < 16 << 20, size


def test_export_cancel_stops_the_download(ui, busybox_image, docker_direct, uniq):
    # A container holding 16 MiB that gzip cannot shrink, read by a browser
    # held to 256 KiB/s: the export is still running a minute later.
    name = uniq("expcancel")
    run(docker_direct, busybox_image, name)
    docker_direct.run("exec", name, "dd", "if=/dev/urandom", "of=/big.bin", "bs=1048576", "count=16")
    downloads = []
    ui.page.on("download", lambda d: downloads.append(d))
    ui.throttle(down=256 * 1024)
    page = ui.goto("#/containers/%s/export" % name)
    page.locator("#export").click()
    job = page.locator(".progress", has_text="Exporting")
    expect(job.locator(".info")).to_have_text(re.compile(r"^\d+(\.\d)? [KM]iB$"))
    ui.cancel(job)
    assert downloads == []


def test_console_runs_vi_and_exits(ui, busybox_image, docker_direct, uniq):
    name = uniq("console")
    run(docker_direct, busybox_image, name)
    page = ui.goto("#/containers/%s/console" % name)
    page.locator("#console-mode").select_option("exec")
    page.locator("#console-cmd").fill("sh")
    page.get_by_role("button", name="Connect").click()
    term = page.locator("#console")
    expect(page.locator("#console-status")).to_have_text("connected")
    expect(term).to_contain_text("/ #")  # the shell's prompt: it reads what is typed now
    term.click()
    page.keyboard.type("vi /tmp/x\n")
    expect(term).to_contain_text("~")
    ui.shot("container-console-vi")
    page.keyboard.type(":q\n")
    page.keyboard.type("exit 3\n")
    expect(page.locator("#console-status")).to_contain_text("exited with code 3")


def test_bulk_stop_and_remove(ui, busybox_image, docker_direct, uniq):
    """Checkboxes, bulk stop, then bulk remove after a confirmation that
    Escape dismisses; everything created is gone."""
    tag = uniq("bulk")
    names = [tag + "-%d" % i for i in range(3)]
    for n in names:
        run(docker_direct, busybox_image, n)
    page = ui.goto("#/containers")
    page.locator("#ctr-search").fill(tag)
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Select all shown").check()
    page.locator(".bulk").get_by_role("button", name="Stop").click()
    for n in names:
        expect(row(page, n).locator(".badge")).to_have_text("exited", timeout=30000)

    page.get_by_label("Select all shown").check()
    page.locator(".bulk").get_by_role("button", name="Remove").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Remove 3 containers?")
    ui.shot("containers-remove-confirm")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(rows).to_have_count(3)

    page.locator(".bulk").get_by_role("button", name="Remove").click()
    dialog.get_by_label("Force (kill it if running)").check()
    dialog.get_by_label("Remove its anonymous volumes").check()
    dialog.get_by_role("button", name="Remove").click()
    expect(rows).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No container")
    assert docker_direct.out("ps", "-aq", "--filter", "name=" + tag) == ""


def test_row_actions_and_state_filter(ui, busybox_image, docker_direct, uniq):
    name = uniq("row")
    run(docker_direct, busybox_image, name)
    page = ui.goto("#/containers")
    r = row(page, name)
    r.get_by_role("button", name="Pause").click()
    expect(r.locator(".badge")).to_have_text("paused")
    page.locator("#ctr-state").select_option("paused")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert "state=paused" in page.url
    r.get_by_role("button", name="Unpause").click()
    expect(page.get_by_text("No container matches.")).to_be_visible()
    page.locator("#ctr-state").select_option("running")
    r.get_by_role("button", name="Remove").click()
    page.locator("dialog[open]").get_by_label("Force (kill it if running)").check()
    page.locator("dialog[open]").get_by_role("button", name="Remove").click()
    expect(r).to_have_count(0)


def test_read_role_sees_no_write_controls(ui_factory, busybox_image, docker_direct, uniq):
    name = uniq("ro")
    run(docker_direct, busybox_image, name)
    ui = ui_factory("reader")
    page = ui.goto("#/containers")
    expect(row(page, name)).to_be_visible()
    for sel in ("#ctr-create", "[data-action]", "input[type=checkbox]", ".bulk"):
        expect(page.locator("main " + sel)).to_have_count(0)
    ui.shot("containers-list-read")
    page = ui.goto("#/containers/%s/logs" % name)
    expect(page.locator("#log")).to_be_visible()
    expect(page.locator("main [data-action]")).to_have_count(0)
    for tab in ("Files", "Console", "Export"):
        expect(page.get_by_role("tab", name=tab)).to_have_count(0)
    ui.shot("container-detail-read")
    page = ui.goto("#/create")
    expect(page.locator("#create-form")).to_have_count(0)


def test_policy_refusal_shows_rule_and_field(ui_factory, busybox_image, docker_direct, uniq):
    """The operator's policy refuses a bind of the host's /: the form shows
    the rule and the field the gateway names, and nothing is created."""
    name = uniq("refused")
    ui = ui_factory("operator")
    page = ui.goto("#/create")
    form = page.locator("#create-form")
    form.get_by_label("Image").fill(busybox_image)
    form.get_by_label("Name").fill(name)
    form.get_by_label("Binds and volumes").fill("/:/host")
    form.get_by_role("button", name="Create").click()
    box = form.locator(".error")
    expect(box).to_be_visible()
    expect(box.locator("code.rule")).to_have_text("host_path")
    expect(box.locator("code.field")).to_contain_text("Binds")
    expect(box).to_be_in_viewport()
    ui.shot("containers-create-refused")
    assert docker_direct.out("ps", "-aq", "--filter", "name=" + name) == ""


def test_keyboard_reaches_search_filter_and_row_actions(ui, busybox_image, docker_direct, uniq):
    name = uniq("kbd")
    run(docker_direct, busybox_image, name)
    page = ui.goto("#/containers")
    expect(row(page, name)).to_be_visible()
    page.locator("h1").focus()
    order = []
    for _ in range(40):
        page.keyboard.press("Tab")
        order.append(page.evaluate("""() => { const e = document.activeElement;
            const r = e.closest('tr[data-name]');
            return (r ? r.dataset.name + ':' : '') + (e.id || e.dataset.action || e.type || e.tagName); }"""))
    search, state = order.index("ctr-search"), order.index("ctr-state")
    action = order.index(name + ":stop")
    assert search < state < action, order
    # the focus ring is visible on a focused control
    page.locator("#ctr-search").focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"


def test_phone_sized_list(ui_factory, busybox_image, docker_direct, uniq):
    name = uniq("phone")
    run(docker_direct, busybox_image, name)
    ui = ui_factory("admin", viewport={"width": 360, "height": 740})
    page = ui.goto("#/containers")
    expect(row(page, name)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    ui.shot("containers-list-360")
