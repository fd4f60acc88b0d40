"""The web UI's overview, images, networks, volumes and events screens in a
real browser against the real dockerd."""

from __future__ import annotations

import os
import re
import tarfile
import uuid

import pytest
from helpers import tar_bytes, wait_until
from playwright.sync_api import expect
from registrylib import Layer, Registry, random_layer


pytestmark = pytest.mark.timeout(180)


def start_build(ui_factory, tmp_path, files: dict[str, bytes], tag: str | None = None):
    """Builds from a context tar of ``files`` through the Build form; returns
    the UI and the job card."""
    context = tmp_path / "context.tar"
    context.write_bytes(tar_bytes(files))
    ui = ui_factory()
    page = ui.page
    ui.goto("#/images")
    page.get_by_role("button", name="Build").click()
    page.get_by_label("Context").set_input_files(context)
    if tag:
        page.get_by_label("Tag", exact=True).fill(tag)
    page.get_by_role("form", name="Build an image").get_by_role("button", name="Build").click()
    return ui, page.locator(".job").first


def big_image(docker_direct, tmp_path, name):
    """Imports ``name``: one layer holding 16 MiB that gzip cannot shrink."""
    layer = tmp_path / "layer.tar"
    layer.write_bytes(tar_bytes({"big.bin": os.urandom(16 << 20)}))
    docker_direct.run("import", layer, name)


def image_exists(docker_direct, name) -> bool:
    return docker_direct.run("image", "inspect", name, check=False).returncode == 0


def test_overview_shows_engine_counts_and_disk_bars(ui_factory, docker_direct, busybox_image):
    ui = ui_factory()
    page = ui.page
    ui.goto("#/overview")
    version = docker_direct.out("version", "--format", "{{.Server.Version}}")
    expect(page.locator(".card", has_text="Engine")).to_contain_text(version)
    expect(page.locator(".df-row")).to_have_count(4)
    expect(page.locator(".df-row").first).to_contain_text("Images")
    # The menu's order is fixed, whichever screens this build has.
    menu = page.get_by_role("navigation", name="Screens").get_by_role("link").all_inner_texts()
    assert [m for m in menu if m != "Containers"] == ["Overview", "Images", "Networks", "Volumes", "Events"], menu
    assert "Containers" not in menu or menu.index("Containers") == 1, menu
    ui.shot("overview")


def test_load_image_tar_shows_progress_then_the_image(ui_factory, docker_direct, busybox_image, uniq, tmp_path):
    name = uniq("load") + ":v1"
    docker_direct.run("tag", busybox_image, name)
    tar = tmp_path / "image.tar"
    docker_direct.run("save", "-o", tar, name)
    docker_direct.run("rmi", name)
    ui = ui_factory()
    page = ui.page
    ui.goto("#/images")
    page.get_by_role("button", name="Load").click()
    page.get_by_label("Image tar").set_input_files(tar)
    page.get_by_role("form", name="Load images from a tar").get_by_role("button", name="Load").click()
    job = page.locator(".job").first
    expect(job.locator(".log")).to_contain_text("Loaded image: " + name)
    expect(job.locator(".info")).to_contain_text("Loaded image: " + name)
    # The bar measured the upload: its maximum is the tar's size, and it is full.
    bar = job.locator("progress").first
    assert int(bar.get_attribute("max")) == tar.stat().st_size
    assert bar.evaluate("b => b.value === b.max")
    expect(page.locator("table")).to_contain_text(name)
    assert image_exists(docker_direct, name)
    ui.shot("images-load")


def test_load_cancel_cuts_the_upload_and_loads_nothing(ui_factory, docker_direct, uniq, tmp_path):
    # The tar of a 16 MiB image, sent by a browser held to 256 KiB/s: the
    # upload is still running a minute later, whenever Cancel comes.
    name = uniq("bigload") + ":v1"
    big_image(docker_direct, tmp_path, name)
    tar = tmp_path / "image.tar"
    docker_direct.run("save", "-o", tar, name)
    docker_direct.run("rmi", name)
    ui = ui_factory()
    page = ui.page
    ui.throttle(up=256 * 1024)
    ui.goto("#/images")
    page.get_by_role("button", name="Load").click()
    page.get_by_label("Image tar").set_input_files(tar)
    page.get_by_role("form", name="Load images from a tar").get_by_role("button", name="Load").click()
    job = page.locator(".job").first
    # The upload's size is known: bytes and percent.
    expect(job.locator(".info")).to_have_text(re.compile(r"^\d+(\.\d)? [KM]iB of 16\.\d MiB \(\d+%\)$"))
    ui.cancel(job)
    # dockerd read a cut tar (save writes manifest.json last): no image.
    assert "Loaded image" not in job.inner_text()
    assert not image_exists(docker_direct, name)


def test_pull_without_a_registry_shows_dockerds_error(ui_factory, dockerd):
    ui = ui_factory()
    page = ui.page
    ui.goto("#/images")
    # Keyboard: the button opens its form with the focus in it, Escape
    # closes it and gives the focus back, Enter submits.
    pull = page.get_by_role("button", name="Pull")
    pull.focus()
    pull.press("Enter")
    field = page.get_by_role("textbox", name="Image", exact=True)
    expect(field).to_be_focused()
    field.press("Escape")
    expect(field).to_have_count(0)
    expect(pull).to_be_focused()
    expect(pull).to_have_attribute("aria-expanded", "false")
    pull.click()
    field.fill("127.0.0.1:9/nothing/here:1")
    field.press("Enter")
    error = page.locator(".job .error")
    expect(error).to_contain_text("127.0.0.1:9")
    assert "undefined" not in page.locator("main").inner_text()
    ui.shot("images-pull-error")


@pytest.fixture
def registry_factory():
    """``registry_factory(images)``: a stand-in registry (see registrylib),
    closed (and every stalled blob released) at the end of the test."""
    made = []

    def make(images):
        r = Registry(images)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


BIG = 4 << 20


def three_layers(rootfs_tar, stall_at):
    """The busybox rootfs with a marker file, a small layer, and a big one of
    random bytes sent in paced chunks that stops after ``stall_at`` bytes
    until released. Fresh content each time: dockerd has none of it."""
    marker = uuid.uuid4().hex
    base = Layer(tar_bytes({"etc/dmtest-pull": marker.encode() + b"\n"}, base=rootfs_tar))
    small = Layer(tar_bytes({"etc/motd": b"pulled through the web UI " + os.urandom(8).hex().encode()}))
    big = random_layer("data/big.bin", BIG, stall_at=stall_at, chunk=32 << 10, pace=0.01)
    return marker, [base, small, big]


def start_pull(ui, ref):
    page = ui.goto("#/images")
    page.get_by_role("button", name="Pull").click()
    field = page.get_by_role("textbox", name="Image", exact=True)
    field.fill(ref)
    field.press("Enter")
    return page.locator(".job").first


def layer_row(job, layer):
    return job.locator(".layer", has_text=layer.short)


def mib(n: int) -> str:
    return "%.1f MiB" % (n / 1048576)


def test_pull_shows_a_progress_bar_per_layer(ui_factory, docker_direct, registry_factory, rootfs_tar):
    marker, layers = three_layers(rootfs_tar, stall_at=BIG // 3)
    base, small, big = layers
    reg = registry_factory({"test/layers:v1": layers})
    ref = reg.host + "/test/layers:v1"
    ui = ui_factory()
    page = ui.page
    job = start_pull(ui, ref)
    # One bar per layer, named by the short digest dockerd uses as its id.
    expect(job.locator(".layer")).to_have_count(3)
    for l in layers:
        expect(layer_row(job, l).locator("progress")).to_have_count(1)
    # The big blob stops a third of the way: its bar shows what the stream
    # said so far, in bytes and percent, not only the end.
    assert big.stalled.wait(60), "dockerd never fetched the big blob"
    row = layer_row(job, big)
    expect(row.locator("span")).to_have_text(
        re.compile(r"^Downloading \d+(\.\d)? [KM]i?B / %s \((\d|[1-9]\d)%%\)$" % re.escape(mib(big.size))))
    value, maximum, text = row.evaluate(
        "r => [r.querySelector('progress').value, r.querySelector('progress').max, r.querySelector('span').textContent]")
    assert maximum == big.size, (maximum, big.size)
    assert 0 < value <= big.stall_at, (value, big.stall_at)
    assert text.endswith("(%d%%)" % (100 * value // maximum)), (text, value, maximum)
    # The job's own bar adds up the layers whose size dockerd told.
    expect(job.locator(".progress .info")).to_contain_text("%")
    assert "undefined" not in page.locator("main").inner_text()
    ui.shot("images-pull-progress")
    assert not image_exists(docker_direct, ref)

    big.release.set()
    expect(job.locator(".progress .info")).to_contain_text("Downloaded newer image for " + ref)
    for l in layers:
        expect(layer_row(job, l).locator("span")).to_have_text(re.compile(r"^Pull complete"))
        assert layer_row(job, l).locator("progress").evaluate("b => b.value === b.max")
    expect(page.locator("table")).to_contain_text(ref.rsplit(":", 1)[0])
    assert ref in docker_direct.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    # Every layer landed: the image runs and holds the first layer's marker.
    assert docker_direct.out("run", "--rm", ref, "cat", "/etc/dmtest-pull") == marker
    assert big.requests == 1


def test_pull_cancel_stops_dockerds_download(ui_factory, docker_direct, registry_factory, rootfs_tar):
    _, layers = three_layers(rootfs_tar, stall_at=BIG // 2)
    big = layers[2]
    reg = registry_factory({"test/layers:v1": layers})
    ref = reg.host + "/test/layers:v1"
    ui = ui_factory()
    job = start_pull(ui, ref)
    assert big.stalled.wait(60), "dockerd never fetched the big blob"
    expect(layer_row(job, big).locator("span")).to_contain_text("Downloading")
    job.get_by_role("button", name="Cancel").click()
    expect(job.locator(".progress")).to_contain_text("cancelled")
    expect(job.get_by_role("button", name="Cancel")).to_have_count(0)
    # The browser's request went, so the gateway's to dockerd went, and
    # dockerd cancelled the pull: once the blob flows again it hangs up
    # instead of reading the rest (dockerd 20.10 closes a download only
    # when its read of the body returns, so the stall is released first).
    big.release.set()
    wait_until(big.aborted.is_set, 30, "dockerd to hang up on the cancelled blob download")
    assert not big.completed.is_set()
    assert not image_exists(docker_direct, ref)
    assert big.requests == 1
    # Nothing half-done is left behind: the same pull now completes.
    docker_direct.run("pull", "-q", ref, timeout=120)
    assert image_exists(docker_direct, ref)


def open_image(ui, name):
    """The detail screen of the image tagged `name` (its heading names the image's first tag)."""
    page = ui.goto("#/images")
    page.get_by_role("searchbox", name="Filter images").fill(name)
    page.locator("tbody tr", has_text=name).get_by_role("link").click()
    expect(page.locator(".tags")).to_contain_text(name)


def test_image_detail_inspect_history_tag_save_remove(ui_factory, docker_direct, rootfs_tar, uniq, tmp_path):
    # An image of its own: the forced remove takes every tag of its ID.
    name = uniq("img") + ":v1"
    docker_direct.run("import", rootfs_tar, name)
    image_id = docker_direct.out("image", "inspect", "--format", "{{.Id}}", name)
    ui = ui_factory()
    page = ui.page
    open_image(ui, name)
    expect(page.get_by_role("tabpanel")).to_contain_text(image_id)
    ui.shot("image-inspect")

    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("tabpanel").locator("tbody tr").first).to_be_visible()
    ui.shot("image-history")

    # Tag: Enter submits the form; the new name shows among the tags.
    repo = uniq("tagged")
    page.get_by_role("button", name="Tag", exact=True).click()
    page.get_by_label("Repository").fill(repo)
    page.get_by_label("Tag", exact=True).fill("t2")
    page.get_by_label("Tag", exact=True).press("Enter")
    expect(page.locator(".tags")).to_contain_text(repo + ":t2")
    assert docker_direct.out("image", "inspect", "--format", "{{.Id}}", repo + ":t2") == image_id

    # Save: a download with the image's name, a tar holding the manifest.
    with page.expect_download() as info:
        page.get_by_role("button", name="Save").click()
    download = info.value
    assert download.suggested_filename.endswith(".tar")
    path = tmp_path / "saved.tar"
    download.save_as(path)
    with tarfile.open(path) as tf:
        assert "manifest.json" in tf.getnames()
    expect(page.locator(".job .info")).to_contain_text("saved as")

    # Remove, forced: the image has several tags.
    page.get_by_role("button", name="Remove", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Force").check()
    dialog.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Images")
    assert not image_exists(docker_direct, name)
    assert not image_exists(docker_direct, repo + ":t2")


def test_save_cancel_stops_the_download(ui_factory, docker_direct, uniq, tmp_path):
    # 16 MiB that gzip cannot shrink, read by a browser held to 256 KiB/s:
    # the download is still running a minute later, whenever Cancel comes.
    name = uniq("big") + ":v1"
    big_image(docker_direct, tmp_path, name)
    ui = ui_factory()
    page = ui.page
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    ui.throttle(down=256 * 1024)
    open_image(ui, name)
    page.get_by_role("button", name="Save").click()
    job = page.locator(".job").first
    # Bytes arrive and show (save's reply has no length, so no percent).
    expect(job.locator(".info")).to_have_text(re.compile(r"^\d+(\.\d)? [KM]iB$"))
    ui.cancel(job)
    assert downloads == []
    assert "saved as" not in job.inner_text()


def test_remove_refused_without_force_shows_dockerds_reason(ui_factory, docker_direct, busybox_image, uniq):
    name = uniq("busy") + ":v1"
    docker_direct.run("tag", busybox_image, name)
    container = docker_direct.out("create", "--name", uniq("user"), name, "true")
    ui = ui_factory()
    page = ui.page
    ui.goto("#/images")
    page.get_by_role("searchbox", name="Filter images").fill(name)
    row = page.locator("tbody tr", has_text=name)
    expect(row).to_contain_text(container and "dmtest-user")
    row.get_by_role("button", name="Remove").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("#notices .error")).to_contain_text("conflict")
    assert image_exists(docker_direct, name)


def test_build_from_an_uploaded_context(ui_factory, docker_direct, busybox_image, uniq, tmp_path):
    tag = uniq("built") + ":v1"
    ui, job = start_build(ui_factory, tmp_path, {
        "Dockerfile": ("FROM %s\nLABEL made.by=dockermand-ui\nCOPY hello.txt /hello.txt\n" % busybox_image).encode(),
        "hello.txt": b"hello from the build context\n",
    }, tag)
    page = ui.page
    expect(job.locator(".info")).to_contain_text("built " + tag)
    expect(job.locator(".log")).to_contain_text("Successfully tagged " + tag)
    assert docker_direct.out("image", "inspect", "--format", '{{index .Config.Labels "made.by"}}', tag) == "dockermand-ui"
    assert docker_direct.out("run", "--rm", tag, "cat", "/hello.txt") == "hello from the build context"
    expect(page.locator("table")).to_contain_text(tag)
    ui.shot("images-build")


def test_build_error_is_shown(ui_factory, busybox_image, tmp_path):
    _, job = start_build(ui_factory, tmp_path, {"Dockerfile": b"FROM scratch\nCOPY missing.txt /\n"})
    expect(job.locator(".error")).to_contain_text("missing.txt")


def test_prune_dangling_images(ui_factory, docker_direct, rootfs_tar, busybox_image):
    dangling = docker_direct.out("import", rootfs_tar)
    ui = ui_factory()
    page = ui.page
    ui.goto("#/images")
    page.get_by_role("button", name="Prune").click()
    page.get_by_role("dialog").get_by_role("button", name="Prune").click()
    expect(page.locator("#notices .ok", has_text="reclaimed")).to_be_visible()
    assert not image_exists(docker_direct, dangling)
    assert image_exists(docker_direct, busybox_image)


def remove_on_detail(page, listing: str):
    """Removes what the detail screen shows; the browser is back at the list."""
    page.get_by_role("button", name="Remove").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(listing)


def test_network_create_inspect_remove(ui_factory, docker_direct, uniq):
    name = uniq("net")
    ui = ui_factory()
    page = ui.page
    ui.goto("#/networks")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Subnet").fill("172.31.250.0/24")
    page.get_by_label("Internal").check()
    page.get_by_role("form").get_by_role("button", name="Create").click()
    row = page.locator("tbody tr", has_text=name)
    expect(row).to_contain_text("172.31.250.0/24")
    assert docker_direct.out("network", "inspect", "--format", "{{.Internal}}", name) == "true"
    ui.shot("networks")
    row.get_by_role("link", name=name).click()
    expect(page.locator("details.json").first).to_contain_text("172.31.250.0/24")
    ui.shot("network-inspect")
    remove_on_detail(page, "Networks")
    expect(page.locator("tbody")).not_to_contain_text(name)
    assert docker_direct.run("network", "inspect", name, check=False).returncode != 0


def test_volume_create_inspect_remove_prune(ui_factory, docker_direct, uniq):
    name, spare = uniq("vol"), uniq("spare")
    docker_direct.run("volume", "create", spare)
    ui = ui_factory()
    page = ui.page
    ui.goto("#/volumes")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Labels").fill("owner=ui\nkind=test")
    page.get_by_role("form").get_by_role("button", name="Create").click()
    row = page.locator("tbody tr", has_text=name)
    expect(row).to_contain_text("owner=ui")
    ui.shot("volumes")
    row.get_by_role("link", name=name).click()
    expect(page.locator("details.json").first).to_contain_text("/_data")
    ui.shot("volume-inspect")
    remove_on_detail(page, "Volumes")
    assert docker_direct.run("volume", "inspect", name, check=False).returncode != 0
    # Since API 1.42 named volumes go only with the option; before, always.
    page.get_by_role("button", name="Prune").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    if dialog.get_by_label("Named volumes too").count():
        dialog.get_by_label("Named volumes too").check()
    dialog.get_by_role("button", name="Prune").click()
    expect(page.locator("#notices .ok", has_text="reclaimed")).to_be_visible()
    assert docker_direct.run("volume", "inspect", spare, check=False).returncode != 0


def test_events_show_a_live_container_event(ui_factory, docker_direct, busybox_image, uniq):
    name = uniq("ev")
    ui = ui_factory()
    page = ui.page
    ui.goto("#/events?type=container")
    expect(page.get_by_role("combobox", name="Type")).to_have_value("container")
    expect(page.get_by_role("status")).to_contain_text("Live")
    docker_direct.run("create", "--name", name, busybox_image, "true")
    row = page.locator("tbody tr", has_text=name)
    expect(row).to_contain_text("create")
    # A filter on another name leaves it out.
    page.get_by_role("textbox", name="Container").fill("no-such-container")
    page.get_by_role("textbox", name="Container").press("Enter")
    expect(page).to_have_url(re.compile(r"container=no-such-container"))
    expect(page.get_by_role("status")).to_contain_text("waiting")
    expect(page.locator("tbody tr")).to_have_count(0)
    ui.goto("#/events")
    expect(row).to_be_visible()
    ui.shot("events")


def test_reader_sees_no_write_controls(ui_factory, docker_direct, busybox_image):
    ui = ui_factory("reader")
    page = ui.page
    for screen in ("Overview", "Images", "Networks", "Volumes", "Events"):
        ui.goto("#/" + screen.lower())
        # A screen shows once its data is in (the overview's disk use comes after).
        expect(page.locator("main h1")).to_have_text(screen)
        labels = page.locator("main button").all_inner_texts()
        assert not [b for b in labels if b != "Apply"], (screen, labels)
        ui.shot("read-" + screen.lower())
    image_id = docker_direct.out("image", "inspect", "--format", "{{.Id}}", busybox_image)
    ui.goto("#/images/" + image_id)
    expect(page.get_by_role("tabpanel")).to_contain_text(image_id)
    assert page.locator("main button").count() == 0


def test_screens_fit_a_phone(ui_factory, busybox_image):
    ui = ui_factory("admin", viewport={"width": 360, "height": 740})
    page = ui.page
    for screen in ("Overview", "Images", "Networks", "Volumes", "Events"):
        ui.goto("#/" + screen.lower())
        expect(page.locator("main h1")).to_have_text(screen)
        if screen == "Overview":
            expect(page.locator(".df-row")).to_have_count(4)
        # Tables stack and toolbars wrap: nothing scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, screen
        ui.shot("phone-" + screen.lower())


def test_build_runs_and_cancel_stops_it(ui_factory, docker_direct, busybox_image, uniq, tmp_path):
    tag = uniq("slow") + ":v1"
    ui, job = start_build(ui_factory, tmp_path, {
        "Dockerfile": ("FROM %s\nRUN echo step-ran && sleep 120\n" % busybox_image).encode()}, tag)
    page = ui.page
    expect(job.locator(".log")).to_contain_text("step-ran")
    job.get_by_role("button", name="Cancel").click()
    expect(job).to_contain_text("cancelled")
    # dockerd saw the connection go and stopped the step's container.
    wait_until(lambda: "sleep 120" not in docker_direct.out("ps", "--no-trunc", "--format", "{{.Command}}"),
               30, "the cancelled build's container to stop")
    assert not image_exists(docker_direct, tag)


def test_policy_refusal_shows_its_rule_and_field(ui_factory, docker_direct, uniq):
    name = uniq("mac")
    ui = ui_factory("operator")
    page = ui.page
    ui.goto("#/networks")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Driver").select_option("macvlan")
    page.get_by_role("form").get_by_role("button", name="Create").click()
    refusal = page.locator("#notices .error")
    expect(refusal.locator(".rule")).to_have_text("network_driver")
    expect(refusal.locator(".field")).not_to_be_empty()
    # The form stays, filled in, for a correction.
    expect(page.get_by_label("Name")).to_have_value(name)
    ui.shot("networks-policy-refusal")
    assert docker_direct.run("network", "inspect", name, check=False).returncode != 0
