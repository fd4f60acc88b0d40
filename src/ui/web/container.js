// One container (#/containers/<id>/<tab>): a header with its actions, and
// the tabs inspect, logs, stats, processes, changes, files, console, export.
// The list screen (containers.js) hands the route's params here.
(() => {
  const ctrPath = c => '/containers/' + c.Id;

  // Long work with a progress line (with its cancel button) in `where`;
  // leaving the screen cancels it too, as the line goes with the screen.
  function longWork(where, signal, label, work) {
    const p = progress(label, signal);
    where.append(p.el);
    return work(p).catch(e => p.fail(e));
  }

  // --- logs ------------------------------------------------------------------

  // Splits a logs reply into lines: onLine(text, isStderr). A container
  // with a TTY sends its raw output; the others send frames (a header of
  // stream type, 3 zero bytes and a big-endian length, then the payload)
  // that chunks may split anywhere, so the header is gathered across them.
  function logReader(tty, onLine) {
    const decoders = [new TextDecoder(), new TextDecoder()];
    const partial = ['', ''];
    const text = (i, data) => {
      const parts = (partial[i] + decoders[i].decode(data, {stream: true})).split('\n');
      partial[i] = parts.pop();
      for (const l of parts) onLine(l.replace(/\r$/, ''), i === 1);
    };
    const head = new Uint8Array(8);
    let have = 0, left = 0, kind = 0;
    const push = chunk => {
      if (tty) return text(0, chunk);
      for (let at = 0; at < chunk.length;) {
        const n = Math.min(left || 8 - have, chunk.length - at);
        if (left) {
          text(kind, chunk.subarray(at, at + n));
          left -= n;
        } else {
          head.set(chunk.subarray(at, at + n), have);
          have += n;
          if (have === 8) {
            kind = head[0] === 2 ? 1 : 0;
            left = new DataView(head.buffer).getUint32(4);
            have = 0;
          }
        }
        at += n;
      }
    };
    push.end = () => partial.forEach((_, i) => {
      const rest = partial[i] + decoders[i].decode();
      partial[i] = '';
      if (rest) onLine(rest, i === 1);
    });
    return push;
  }

  // CSI (SGR when it ends in m), OSC, two-byte and charset escapes, and
  // other control characters but tab.
  const ESCAPES = /\x1b(?:\[([0-9;:?<=>]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()*+][0-9A-Za-z]|[@-Z\\-_])|[\x00-\x08\x0a-\x1f\x7f]/g;

  // A log line as text and spans: SGR colours 30-37 and 90-97 become
  // classes fg0-fg15, bold is class b; every other escape is dropped.
  // `st` ({fg, bold}) carries the attributes over to the next line.
  function ansi(line, st) {
    const out = [];
    let last = 0, m;
    const put = text => {
      if (!text) return;
      const cls = [st.fg !== null && 'fg' + st.fg, st.bold && 'b'].filter(Boolean).join(' ');
      out.push(cls ? h('span', {class: cls, text}) : text);
    };
    ESCAPES.lastIndex = 0;
    while ((m = ESCAPES.exec(line))) {
      put(line.slice(last, m.index));
      last = ESCAPES.lastIndex;
      if (m[2] !== 'm') continue;
      const codes = (m[1] || '0').split(/[;:]/).map(Number);
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i];
        if (c === 0) { st.fg = null; st.bold = false; }
        else if (c === 1) st.bold = true;
        else if (c === 22) st.bold = false;
        else if (c === 39) st.fg = null;
        else if (c >= 30 && c <= 37) st.fg = c - 30;
        else if (c >= 90 && c <= 97) st.fg = c - 82;
        else if (c === 38 || c === 48) i += codes[i + 1] === 5 ? 2 : 4; // 256 or RGB colour: skip its arguments
      }
    }
    put(line.slice(last));
    return out;
  }

  const MAX_LINES = 5000;

  function logsTab(panel, signal, c) {
    const tty = c.Config.Tty;
    const name = c.Name.replace(/^\//, '');
    const out = h('div', {class: 'log', id: 'log', role: 'log', tabindex: '0', 'data-tty': String(tty)});
    const tail = h('input', {type: 'number', id: 'log-tail', min: 0, value: 200, class: 'narrow', 'aria-label': 'Lines from the end (empty for all)'});
    const followL = checkbox('log-follow', 'Follow', true), follow = followL.control;
    const stampsL = checkbox('log-ts', 'Timestamps', false), stamps = stampsL.control;
    const onlyL = checkbox('log-only', 'Only matches', false), only = onlyL.control;
    const find = h('input', {type: 'search', id: 'log-search', placeholder: 'Search', 'aria-label': 'Search the log'});
    const pause = h('button', {type: 'button', id: 'log-pause', 'aria-pressed': 'false', text: 'Pause'});
    const status = h('span', {class: 'muted', id: 'log-status', 'aria-live': 'polite'});
    const work = h('div');

    // Search marks matching lines (class hit) and may hide the others.
    const mark = el => {
      const q = find.value.toLowerCase();
      const hit = !!q && el.textContent.toLowerCase().includes(q);
      el.classList.toggle('hit', hit);
      el.hidden = !!q && only.checked && !hit;
    };
    const remark = () => {
      for (const el of out.children) mark(el);
      status.textContent = find.value ? out.querySelectorAll('.hit').length + ' matching lines' : '';
    };
    find.addEventListener('input', remark);
    only.addEventListener('change', remark);

    // Lines are added once per frame, and not at all while paused.
    let queue = [], frame = 0, paused = false, ctl = null;
    const flush = () => {
      frame = 0;
      if (paused) return;
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      append(out, queue);
      queue = [];
      while (out.childElementCount > MAX_LINES) out.firstChild.remove();
      out.dataset.lines = out.childElementCount;
      if (atEnd) out.scrollTop = out.scrollHeight;
    };
    pause.addEventListener('click', () => {
      paused = !paused;
      pause.textContent = paused ? 'Resume' : 'Pause';
      pause.setAttribute('aria-pressed', String(paused));
      if (!paused) flush();
    });

    const logQuery = all => ({stdout: 1, stderr: 1, timestamps: stamps.checked ? 1 : null,
      tail: all || tail.value === '' ? 'all' : tail.value});
    function start() {
      if (ctl) ctl.abort();
      ctl = new AbortController();
      out.replaceChildren();
      queue = [];
      const st = {fg: null, bold: false};
      const read = logReader(tty, (text, err) => {
        const el = h('div', {class: err ? 'stderr' : null}, ansi(text, st));
        mark(el);
        queue.push(el);
        if (queue.length > MAX_LINES) queue.splice(0, queue.length - MAX_LINES);
        if (!frame) frame = requestAnimationFrame(flush);
      });
      status.textContent = follow.checked ? 'following' : '';
      stream(ctrPath(c) + '/logs', {signal: anySignal(signal, ctl.signal),
        query: Object.assign(logQuery(), {follow: follow.checked ? 1 : null})}, read)
        .then(() => { read.end(); status.textContent = follow.checked ? 'the log ended (container stopped)' : ''; })
        .catch(e => { if (e.name !== 'AbortError') fill(status, errorBox(e)); });
    }
    for (const el of [tail, follow, stamps]) el.addEventListener('change', start);
    signal.addEventListener('abort', () => cancelAnimationFrame(frame));

    // The downloaded file is the decoded text (frames would otherwise
    // be interleaved with the lines), so it is read whole, without follow.
    const save = h('button', {type: 'button', id: 'log-download', text: 'Download', onclick: () =>
      longWork(work, signal, 'Log of ' + name, p => download(ctrPath(c) + '/logs', name + '.log', p, logQuery(true), async blob => {
        const lines = [];
        const read = logReader(tty, text => lines.push(text + '\n'));
        read(new Uint8Array(await blob.arrayBuffer()));
        read.end();
        return new Blob(lines, {type: 'text/plain'});
      }))});
    fill(panel, h('div', {class: 'toolbar'}, h('label', {for: 'log-tail', text: 'Tail'}), tail, followL, stampsL, pause,
      find, onlyL, save, status), work, out);
    start();
  }

  // --- stats -------------------------------------------------------------------

  const POINTS = 180; // about three minutes at dockerd's one sample a second
  const COLOURS = ['#1565c0', '#c62828'];

  // A live line chart of the last POINTS samples of one or two series,
  // with their current values as text. data-samples counts samples drawn.
  function chart(id, title, labels, fmt) {
    const canvas = h('canvas', {'aria-hidden': 'true'});
    const now = h('span', {class: 'now'});
    const el = h('figure', {class: 'chart', id, 'data-samples': '0'},
      h('figcaption', {}, h('b', {text: title}), ' ', now), canvas);
    const data = labels.map(() => []);
    const draw = () => {
      const w = canvas.clientWidth, ht = canvas.clientHeight, r = window.devicePixelRatio || 1;
      if (!w) return;
      canvas.width = w * r;
      canvas.height = ht * r;
      const g = canvas.getContext('2d');
      g.scale(r, r);
      const max = Math.max(...data.flat(), 1) * 1.15;
      g.lineWidth = 1.5;
      data.forEach((d, i) => {
        g.strokeStyle = COLOURS[i];
        g.beginPath();
        d.forEach((v, j) => g[j ? 'lineTo' : 'moveTo'](w - (d.length - 1 - j) * w / (POINTS - 1), ht - 2 - v / max * (ht - 4)));
        g.stroke();
      });
      g.fillStyle = '#667085';
      g.font = '11px sans-serif';
      g.fillText(fmt(max / 1.15), 4, 12);
      el.dataset.samples = data[0].length;
    };
    return {el, push(...values) {
      values.forEach((v, i) => { data[i].push(v); if (data[i].length > POINTS) data[i].shift(); });
      fill(now, labels.map((l, i) => h('span', {class: 'series' + i, text: (l ? l + ' ' : '') + fmt(values[i])})));
      draw();
    }};
  }

  const rate = n => bytes(n) + '/s';

  function statsTab(panel, signal, c) {
    if (!c.State.Running) return fill(panel, h('p', {class: 'muted', text: 'The container is not running.'}));
    const cpu = chart('chart-cpu', 'CPU', [''], v => v.toFixed(1) + ' %');
    const mem = chart('chart-mem', 'Memory', [''], bytes);
    const net = chart('chart-net', 'Network', ['rx', 'tx'], rate);
    const io = chart('chart-io', 'Block I/O', ['read', 'write'], rate);
    const totals = h('p', {class: 'muted', id: 'stats-text'});
    const end = h('div');
    fill(panel, totals, h('div', {class: 'charts'}, cpu.el, mem.el, net.el, io.el), end);
    let prev = null;
    // One JSON object a second while the container runs.
    ndjson(ctrPath(c) + '/stats', {signal, query: {stream: 1}}, s => {
      const t = Date.parse(s.read) / 1000;
      const cs = s.cpu_stats || {}, ps = s.precpu_stats || {};
      const use = x => (x.cpu_usage && x.cpu_usage.total_usage) || 0;
      // As the docker CLI: the container's share of the host's CPU time
      // since the previous sample, times the CPUs online.
      const cpuDelta = use(cs) - use(ps), sysDelta = (cs.system_cpu_usage || 0) - (ps.system_cpu_usage || 0);
      const online = cs.online_cpus || ((cs.cpu_usage || {}).percpu_usage || []).length || 1;
      const pct = cpuDelta > 0 && sysDelta > 0 ? cpuDelta / sysDelta * online * 100 : 0;
      // Memory without the page cache: cgroup v2 inactive_file, v1 cache.
      const m = s.memory_stats || {}, ms = m.stats || {};
      const used = Math.max(0, (m.usage || 0) - (ms.inactive_file ?? ms.cache ?? 0));
      const sum = (list, pick) => list.reduce((a, x) => [a[0] + pick(x, 0), a[1] + pick(x, 1)], [0, 0]);
      const nets = sum(Object.values(s.networks || {}), (n, i) => (i ? n.tx_bytes : n.rx_bytes) || 0);
      const blk = sum((s.blkio_stats || {}).io_service_bytes_recursive || [],
        (e, i) => (String(e.op).toLowerCase() === (i ? 'write' : 'read') ? e.value : 0));
      const dt = prev ? t - prev.t : 0;
      const per = (now, was, i) => (dt > 0 ? Math.max(0, (now[i] - was[i]) / dt) : 0);
      cpu.push(pct);
      mem.push(used);
      net.push(per(nets, prev && prev.nets, 0), per(nets, prev && prev.nets, 1));
      io.push(per(blk, prev && prev.blk, 0), per(blk, prev && prev.blk, 1));
      prev = {t, nets, blk};
      totals.textContent = 'CPU ' + pct.toFixed(1) + ' % of ' + online + ' CPUs · memory ' + bytes(used) +
        (m.limit ? ' of ' + bytes(m.limit) + ' (' + (100 * used / m.limit).toFixed(1) + ' %)' : '') +
        ' · network ' + (s.networks ? 'rx ' + bytes(nets[0]) + ', tx ' + bytes(nets[1]) : 'none') +
        ' · block I/O read ' + bytes(blk[0]) + ', written ' + bytes(blk[1]);
    }).then(() => fill(end, h('p', {class: 'muted', text: 'Stats ended: the container stopped.'})),
      e => { if (!signal.aborted) fill(end, errorBox(e)); });
  }

  // --- processes and changes -------------------------------------------------------

  async function topTab(panel, signal, c) {
    if (!c.State.Running) return fill(panel, h('p', {class: 'muted', text: 'The container is not running.'}));
    const list = h('div');
    const load = async () => {
      const top = await api(ctrPath(c) + '/top', {signal});
      fill(list, table((top.Titles || []).map((t, i) => [t, p => p[i]]), top.Processes || [], 'No processes.'));
    };
    await load();
    fill(panel, h('div', {class: 'toolbar'}, h('button', {type: 'button', text: 'Refresh', onclick: e => act(e.currentTarget, load)})), list);
  }

  async function changesTab(panel, signal, c) {
    const changes = await api(ctrPath(c) + '/changes', {signal}) || [];
    fill(panel, table([['Kind', ch => ['changed', 'added', 'deleted'][ch.Kind]], ['Path', ch => h('code', {text: ch.Path})]],
      changes, 'No changes to the image’s files.'));
  }

  // --- files --------------------------------------------------------------------------

  const enc = new TextEncoder();
  const dec = new TextDecoder();

  // A streaming tar reader (ustar, GNU long names, pax paths): push(chunk)
  // calls onEntry({name, type, size, mode, mtime, link, data}) for each
  // entry; data only for entries want(entry) asks for, others are skipped.
  function tarReader(onEntry, want = () => false) {
    let buf = new Uint8Array(0), skip = 0, entry = null, longName = null, ended = false;
    const str = (b, at, n) => dec.decode(b.subarray(at, at + n)).replace(/\0.*$/s, '');
    const num = (b, at, n) => {
      if (b[at] & 0x80) { // GNU base-256 for large sizes
        let v = 0;
        for (let i = at + 1; i < at + n; i++) v = v * 256 + b[i];
        return v;
      }
      return parseInt(str(b, at, n).trim() || '0', 8);
    };
    const padded = n => Math.ceil(n / 512) * 512;
    return chunk => {
      if (ended) return;
      const joined = new Uint8Array(buf.length + chunk.length);
      joined.set(buf);
      joined.set(chunk, buf.length);
      buf = joined;
      for (;;) {
        if (skip) {
          const n = Math.min(skip, buf.length);
          skip -= n;
          buf = buf.subarray(n);
          if (skip) return;
        }
        if (entry) {
          if (buf.length < padded(entry.size)) return;
          const data = buf.slice(0, entry.size);
          buf = buf.subarray(padded(entry.size));
          const e = entry;
          entry = null;
          if (e.type === 'L') longName = dec.decode(data).replace(/\0+$/, '');
          else if (e.type === 'x') {
            const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(dec.decode(data));
            if (path) longName = path[1];
          } else if (e.type !== 'g' && e.type !== 'K') onEntry(Object.assign(e, {data}));
          continue;
        }
        if (buf.length < 512) return;
        const b = buf.subarray(0, 512);
        buf = buf.subarray(512);
        if (b.every(x => x === 0)) { ended = true; return; }
        const prefix = str(b, 257, 6) === 'ustar' ? str(b, 345, 155) : '';
        const e = {
          name: longName || (prefix ? prefix + '/' : '') + str(b, 0, 100),
          mode: num(b, 100, 8), size: num(b, 124, 12), mtime: num(b, 136, 12),
          type: String.fromCharCode(b[156] || 48), link: str(b, 157, 100),
        };
        if ('LxgK'.includes(e.type)) { entry = e; continue; }
        longName = null;
        if (want(e)) entry = e;
        else { onEntry(e); skip = padded(e.size); }
      }
    };
  }

  // A one-file ustar archive for PUT archive: a pax header first when the
  // name is longer than ustar's 100 bytes, then the file's header, its
  // bytes padded to 512, and the two zero blocks that end an archive.
  function tarOf(file) {
    if (file.size >= 8 ** 11) throw new Error(file.name + ' is too large to upload (8 GiB at most)');
    const mtime = Math.floor(file.lastModified / 1000) || 0;
    const header = (name, size, type) => {
      const b = new Uint8Array(512);
      const put = (at, s) => b.set(enc.encode(s), at);
      b.set(name.subarray(0, 100));
      put(100, '0000644\0');
      put(108, '0000000\0');
      put(116, '0000000\0');
      put(124, size.toString(8).padStart(11, '0') + '\0');
      put(136, mtime.toString(8).padStart(11, '0') + '\0');
      put(148, '        '); // the checksum counts its own field as spaces
      put(156, type);
      put(257, 'ustar\x0000');
      put(148, b.reduce((a, x) => a + x, 0).toString(8).padStart(6, '0') + '\0 ');
      return b;
    };
    const pad = n => new Uint8Array((512 - n % 512) % 512);
    const name = enc.encode(file.name);
    const parts = [];
    if (name.length > 100) {
      // "<length> path=<name>\n", the length counting its own digits
      const body = ' path=' + file.name + '\n';
      const n = enc.encode(body).length;
      let len = n + String(n).length;
      len = n + String(len).length;
      const pax = enc.encode(len + body);
      parts.push(header(enc.encode('PaxHeader'), pax.length, 'x'), pax, pad(pax.length));
    }
    parts.push(header(name, file.size, '0'), file, pad(file.size), new Uint8Array(1024));
    return new Blob(parts, {type: 'application/x-tar'});
  }

  const join = (dir, name) => (dir.replace(/\/+$/, '') + '/' + name).replace(/^\/*/, '/');
  const baseName = path => path.replace(/\/+$/, '').split('/').pop() || 'root';
  const TYPES = {0: 'file', 1: 'link', 2: 'symlink', 5: 'dir', 3: 'char', 4: 'block', 6: 'fifo'};
  function modeString(e) {
    const t = {5: 'd', 2: 'l', 3: 'c', 4: 'b', 6: 'p'}[e.type] || '-';
    return t + [6, 3, 0].map(s => ['r', 'w', 'x'].map((c, i) => (e.mode >> s & 4 >> i ? c : '-')).join('')).join('');
  }

  // Browsing reads GET archive?path=DIR, a tar of the whole subtree, through
  // the header reader, keeping the direct children. It needs nothing inside
  // the container (an exec of ls would need a shell, an ls, and a running
  // container) and works on stopped containers too. The price is that the
  // subtree travels: the listing shows progress, can be cancelled, and
  // file contents are skipped, never kept. HEAD archive (the
  // X-Docker-Container-Path-Stat header) would only describe the path itself.
  function filesTab(panel, signal, c, search) {
    const dir = search.get('path') || '/';
    const href = path => '#/containers/' + c.Id + '/files' + query({path});
    const work = h('div');
    const list = h('div');
    const file = h('input', {type: 'file', id: 'upload-file', 'aria-label': 'File to upload'});
    const up = h('form', {class: 'toolbar', id: 'upload-form'}, file,
      h('button', {class: 'primary', text: 'Upload to ' + dir}));
    up.addEventListener('submit', e => {
      e.preventDefault();
      const f = file.files[0];
      if (!f) return notify('Choose a file to upload.', 'error');
      longWork(work, signal, 'Uploading ' + f.name, async p => {
        await upload(ctrPath(c) + '/archive', tarOf(f), p, {q: {path: dir}, headers: {'Content-Type': 'application/x-tar'}});
        p.finish(bytes(f.size) + ' uploaded to ' + join(dir, f.name));
        file.value = '';
        browse();
      });
    });
    const pathInput = h('input', {id: 'files-path', value: dir});
    const pathForm = h('form', {class: 'toolbar', id: 'path-form'},
      h('label', {for: 'files-path', text: 'Path'}), pathInput, h('button', {text: 'Open'}));
    pathForm.addEventListener('submit', e => { e.preventDefault(); location.hash = href(pathInput.value || '/'); });

    // A file comes out of its tar in the browser, so the user gets the
    // file itself; folders (and links, devices) stay tars.
    const save = (path, entry) => longWork(work, signal, 'Downloading ' + path, p =>
      download(ctrPath(c) + '/archive', entry && entry.type === '0' ? baseName(path) : baseName(path) + '.tar', p, {path},
        entry && entry.type === '0' ? async blob => {
          let found = null;
          tarReader(e => { found = found || e; }, e => e.type === '0')(new Uint8Array(await blob.arrayBuffer()));
          if (!found) throw new Error('no file in the archive');
          return new Blob([found.data]);
        } : null));

    let browsing = null;
    function browse() {
      if (browsing) browsing.abort();
      browsing = new AbortController();
      const p = progress('Reading ' + dir, signal);
      work.append(p.el);
      const found = [];
      let root = null, size = 0;
      const read = tarReader(e => {
        // the first entry is the directory itself; its children follow
        const name = e.name.replace(/\/+$/, '');
        if (root === null) root = name;
        else if (name.startsWith(root + '/') && !name.slice(root.length + 1).includes('/')) found.push(Object.assign(e, {base: name.slice(root.length + 1)}));
      });
      stream(ctrPath(c) + '/archive', {query: {path: dir}, signal: anySignal(p.signal, browsing.signal)}, chunk => {
        size += chunk.length;
        p.text(found.length + ' entries, ' + bytes(size) + ' read');
        read(chunk);
      }).then(() => {
        p.el.remove();
        found.sort((a, b) => (b.type === '5') - (a.type === '5') || a.base.localeCompare(b.base));
        fill(list, dir !== '/' ? h('p', {}, h('a', {href: href(dir.replace(/\/?[^/]+\/*$/, '') || '/'), text: '⬑ parent directory'})) : null,
          table([
            ['Name', e => (e.type === '5' ? h('a', {href: href(join(dir, e.base)), text: e.base + '/'}) : [e.base, e.type === '2' ? ' → ' + e.link : ''])],
            ['Type', e => TYPES[e.type] || e.type],
            ['Size', e => (e.type === '0' ? bytes(e.size) : '')],
            ['Mode', e => h('code', {text: modeString(e)})],
            ['Modified', e => ago(e.mtime)],
            ['', e => h('div', {class: 'toolbar row-actions'},
              h('button', {type: 'button', text: e.type === '0' ? 'Download' : 'Download .tar', onclick: () => save(join(dir, e.base), e)}),
              e.type === '0' ? h('button', {type: 'button', text: '.tar', 'aria-label': 'Download ' + e.base + ' as a tar', onclick: () => save(join(dir, e.base))}) : null)],
          ], found, 'Empty directory.', e => ({'data-name': e.base})));
      }, e => (signal.aborted || browsing.signal.aborted ? p.el.remove() : p.fail(e)));
    }

    fill(panel, pathForm, up, h('div', {class: 'toolbar'},
      h('button', {type: 'button', text: 'Download ' + dir + ' as .tar', onclick: () => save(dir)})), work, list);
    browse();
  }

  // --- console and export ----------------------------------------------------

  function consoleTab(panel, signal, c) {
    if (!c.State.Running) return fill(panel, h('p', {class: 'muted', text: 'Start the container to open a console.'}));
    const mode = h('select', {id: 'console-mode', name: 'mode', 'aria-label': 'Console type'},
      h('option', {value: 'exec', text: 'Run a command (exec)'}), h('option', {value: 'attach', text: 'Attach to its main process'}));
    const cmd = h('input', {id: 'console-cmd', name: 'cmd', value: 'sh', 'aria-label': 'Command'});
    const status = h('span', {class: 'muted', id: 'console-status', 'aria-live': 'polite'});
    const term = h('div', {class: 'console-host', id: 'console'});
    const form = h('form', {class: 'toolbar', id: 'console-form'}, mode, cmd, h('button', {class: 'primary', text: 'Connect'}), status);
    mode.addEventListener('change', () => { cmd.hidden = mode.value !== 'exec'; });
    let open = null;
    form.addEventListener('submit', e => {
      e.preventDefault();
      let argv;
      try { argv = shellSplit(cmd.value || 'sh'); } catch (err) { return fill(status, errorBox(err)); }
      if (open) open.close();
      term.replaceChildren();
      status.textContent = 'connected';
      const mine = open = openConsole(term, {container: c.Id, mode: mode.value, cmd: argv, onExit(code, reason) {
        if (open === mine) open = null;
        status.textContent = 'exited' + (code != null ? ' with code ' + code : '') + (reason ? ': ' + reason : '');
      }});
    });
    signal.addEventListener('abort', () => open && open.close());
    fill(panel, form, term);
  }

  function exportTab(panel, signal, c) {
    const name = c.Name.replace(/^\//, '') + '.tar';
    const work = h('div');
    fill(panel, h('p', {text: 'The container’s file system as a tar (without its volumes).'}),
      h('button', {type: 'button', class: 'primary', id: 'export', text: 'Export as ' + name,
        onclick: () => longWork(work, signal, 'Exporting ' + name, p => download(ctrPath(c) + '/export', name, p))}), work);
  }

  // --- the screen ------------------------------------------------------------------

  window.containerDetail = async (view, [id, tab], signal, search) => {
    const c = await api('/containers/' + encodeURIComponent(id) + '/json', {signal});
    const name = c.Name.replace(/^\//, '');
    const state = c.State.Status;
    const t = (key, label, render, write) => (write && !canWrite() ? [] : [[key, label, p => render(p, signal, c, search)]]);
    fill(view,
      h('p', {}, h('a', {href: '#/containers', text: '← Containers'})),
      h('h1', {tabindex: '-1'}, name, ' ', h('span', {class: 'badge state-' + state, id: 'ctr-state', text: state})),
      h('p', {class: 'muted'}, 'Image ', h('code', {text: c.Config.Image}), ' · ', shortId(c.Id), ' · created ', ago(c.Created)),
      h('div', {class: 'toolbar'}, containerActions(state, () => [{id: c.Id, name}],
        action => go(action === 'remove' ? '#/containers' : location.hash))),
      tabs('#/containers/' + id, [
        ...t('inspect', 'Inspect', p => fill(p, jsonTree(c, 1))),
        ...t('logs', 'Logs', logsTab),
        ...t('stats', 'Stats', statsTab),
        ...t('processes', 'Processes', topTab),
        ...t('changes', 'Changes', changesTab),
        ...t('files', 'Files', filesTab, true),
        ...t('console', 'Console', consoleTab, true),
        ...t('export', 'Export', exportTab, true),
      ], tab, signal));
  };
})();
