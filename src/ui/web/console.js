/* The console panel: a Term wired to a WebSocket into a container.
 *
 *   openConsole(el, {container, mode: 'exec' | 'attach', cmd: 'sh', onExit(code, reason)})
 *
 * exec: dockermand's own console (binary frames both ways, JSON text frames
 * for resize and the exit code). attach: dockerd's attach/ws, resized with
 * POST /containers/{id}/resize. opts.server (default: this page's origin)
 * names another gateway, which must list this origin in cors_origins and be
 * open: its sessions' bindings are its own pages' alone.
 * Returns {close(), term}. Classic script; exposes window.openConsole only. */
(function () {
  'use strict';

  window.openConsole = function (el, opts) {
    var server = (opts.server || location.origin).replace(/\/$/, ''),
      id = encodeURIComponent(opts.container), attach = opts.mode === 'attach',
      box = el.appendChild(document.createElement('div')),
      screen = box.appendChild(document.createElement('div')),
      status = box.appendChild(document.createElement('div')),
      term = new Term(screen), enc = new TextEncoder(), done = false, exitCode = null, ws, url,
      creds = opts.server ? 'include' : 'same-origin',
      // the page's half of its login session's secret (core.js); a
      // WebSocket cannot carry it, so a ticket asked for with it stands in
      binding = opts.server ? null : localStorage.getItem('dockermand-binding'),
      headers = binding ? {'X-Dockermand-Binding': binding} : {};
    box.className = 'console';
    status.className = 'console-status';
    // CSSOM, not style attributes: the panel fills el, the terminal takes what the status line leaves
    box.style.cssText = 'display:flex;flex-direction:column;height:100%';
    screen.style.cssText = 'flex:1;min-height:0';
    // one line, empty or not, so the terminal keeps its size when the text goes
    status.style.minHeight = '1.4em';

    var cmd = [].concat(opts.cmd || 'sh');
    if (attach) {
      url = '/containers/' + id + '/attach/ws?stream=1&stdin=1&stdout=1&stderr=1';
    } else {
      // the first size goes in the query, so the shell starts with it
      url = '/_dockermand/containers/' + id + '/console?tty=1&cols=' + term.cols + '&rows=' + term.rows +
        cmd.map(function (c) { return '&cmd=' + encodeURIComponent(c); }).join('');
    }
    status.textContent = 'Connecting…';

    var sent = attach ? null : [term.cols, term.rows];
    function resize(cols, rows) {
      if (!ws || ws.readyState !== 1 || (sent && sent[0] === cols && sent[1] === rows)) return;
      sent = [cols, rows];
      if (attach) {
        fetch(server + '/containers/' + id + '/resize?h=' + rows + '&w=' + cols,
          {method: 'POST', credentials: creds, headers: headers}).catch(function () {});
      } else {
        ws.send(JSON.stringify({type: 'resize', cols: cols, rows: rows}));
      }
    }

    // without a ticket (an open gateway, another gateway's page), the
    // WebSocket goes as it is
    fetch(server + '/_dockermand/ticket', {method: 'POST', credentials: creds, headers: headers})
      .then(function (r) { return r.ok ? r.json() : {}; })
      .catch(function () { return {}; })
      .then(function (t) { connect(t.ticket); });

    function connect(ticket) {
      if (done) return;
      ws = new WebSocket(server.replace(/^http/, 'ws') + url + (ticket ? '&ticket=' + encodeURIComponent(ticket) : ''));
      ws.binaryType = 'arraybuffer';

      ws.onopen = function () {
        status.textContent = '';
        resize(term.cols, term.rows);
        term.focus();
      };
      ws.onmessage = function (e) {
        if (typeof e.data !== 'string') return term.write(new Uint8Array(e.data));
        // dockerd's attach/ws sends output as text frames; ours sends control messages
        if (attach) return term.write(e.data);
        try {
          var m = JSON.parse(e.data);
          if (m.type === 'exit') exitCode = m.exit_code;
        } catch (err) { /* not ours to interpret */ }
      };
      ws.onclose = function (e) {
        if (done) return;
        done = true;
        if (attach) {
          // attach/ws just ends, often before dockerd has recorded the exit:
          // wait a little for the container to stop (a detach leaves it running)
          var stop = new AbortController();
          setTimeout(function () { stop.abort(); }, 3000);
          fetch(server + '/containers/' + id + '/wait?condition=not-running',
            {method: 'POST', credentials: creds, headers: headers, signal: stop.signal})
            .then(function (r) { return r.json(); })
            .then(function (w) { end(w.StatusCode, 'exit ' + w.StatusCode); }, function () { end(null, 'detached'); });
        } else {
          end(exitCode, e.reason || (e.code === 1006 ? 'connection failed' : 'closed (' + e.code + ')'));
        }
      };
    }

    function end(code, reason) {
      status.textContent = code === null ? 'Console ended: ' + reason : 'Process exited with code ' + code;
      if (opts.onExit) opts.onExit(code, reason);
    }

    term.onData = function (d) { if (ws && ws.readyState === 1) ws.send(enc.encode(d)); };
    term.onResize = resize;

    return {
      term: term,
      close: function () {
        done = true;
        if (ws) ws.close(1000);
        term.dispose();
        box.remove();
      }
    };
  };
})();
