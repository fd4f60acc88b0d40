// Containers: the list (#/containers), the create form (#/create) and the
// actions both the list and the detail screen (container.js) offer.
(() => {
  const STATES = ['running', 'paused', 'restarting', 'created', 'exited', 'dead'];
  const live = s => s === 'running' || s === 'paused' || s === 'restarting';
  // [action, label, offered in state s]
  const ACTIONS = [
    ['start', 'Start', s => !live(s)],
    ['stop', 'Stop', live],
    ['restart', 'Restart', s => s !== 'removing'],
    ['pause', 'Pause', s => s === 'running'],
    ['unpause', 'Unpause', s => s === 'paused'],
    ['kill', 'Kill', live],
    ['remove', 'Remove', () => true],
  ];

  // Runs an action on targets [{id, name}] (all at once: a bulk stop waits
  // for each container's stop timeout). Remove asks first, with its options.
  // Resolves false when the user cancelled; each failure is a notice.
  async function perform(action, targets) {
    const what = targets.length === 1 ? targets[0].name : targets.length + ' containers';
    let q = null;
    if (action === 'remove') {
      const answer = await confirmDialog('Remove ' + what + '?', 'Remove', 'Force (kill it if running)', 'Remove its anonymous volumes');
      if (!answer) return false;
      q = {force: answer.options[0] ? 1 : null, v: answer.options[1] ? 1 : null};
    }
    const results = await Promise.allSettled(targets.map(t => api('/containers/' + t.id + (action === 'remove' ? '' : '/' + action),
      {method: action === 'remove' ? 'DELETE' : 'POST', query: q})));
    let failed = 0;
    results.forEach((r, i) => {
      // 304: already in that state (a bulk start of running containers)
      if (r.status !== 'rejected' || r.reason.status === 304) return;
      failed++;
      if (targets.length > 1) r.reason.message = targets[i].name + ': ' + r.reason.message;
      notify(r.reason, 'error');
    });
    if (!failed) notify(action + ': ' + what);
    return true;
  }

  // The action buttons for a container in state `state` (all of them when
  // state is null: the bulk bar). targets() gives [{id, name}] at click
  // time; after() runs once the actions are done. None for a read role.
  function containerActions(state, targets, after) {
    if (!canWrite()) return null;
    return ACTIONS.filter(([, , offered]) => state === null || offered(state)).map(([action, label]) =>
      h('button', {type: 'button', class: action === 'remove' ? 'danger' : null, 'data-action': action, text: label,
        onclick: e => act(e.currentTarget, async () => {
          const t = targets();
          if (!t.length) return notify('Select containers first.', 'error');
          if (await perform(action, t)) after(action);
        })}));
  }
  window.containerActions = containerActions;

  const nameOf = c => (c.Names && c.Names[0] || '').replace(/^\//, '') || shortId(c.Id);

  // "8080→80/tcp", once per port (dockerd lists IPv4 and IPv6 bindings apart).
  function ports(c) {
    const seen = new Set((c.Ports || []).map(p => (p.PublicPort ? p.PublicPort + '→' : '') + p.PrivatePort + '/' + p.Type));
    return [...seen].join(', ');
  }

  route('containers', async (view, params, signal, search) => {
    if (params.length) return window.containerDetail(view, params, signal, search);
    let list = await api('/containers/json', {query: {all: 1}, signal});
    const selected = new Set();
    const q = h('input', {type: 'search', id: 'ctr-search', placeholder: 'Search name, image, ID', 'aria-label': 'Search containers', value: search.get('q') || ''});
    const stateSel = h('select', {id: 'ctr-state', 'aria-label': 'State'}, h('option', {value: '', text: 'All states'}),
      STATES.map(s => h('option', {value: s, text: s})));
    stateSel.value = search.get('state') || '';
    const count = h('span', {class: 'muted', 'aria-live': 'polite'});
    const body = h('div');
    const liveNote = h('p', {class: 'muted'});
    let shownCount = 0;
    const counted = () => {
      count.textContent = shownCount + ' of ' + list.length + (selected.size ? ', ' + selected.size + ' selected' : '');
    };
    const pick = (id, on) => (on ? selected.add(id) : selected.delete(id));

    const shown = () => {
      const words = q.value.trim().toLowerCase();
      return list.filter(c => (!stateSel.value || c.State === stateSel.value) &&
        (!words || [nameOf(c), c.Image, c.Id, c.Status].join(' ').toLowerCase().includes(words)));
    };
    const targets = () => list.filter(c => selected.has(c.Id)).map(c => ({id: c.Id, name: nameOf(c)}));
    const draw = () => {
      const rows = shown();
      for (const id of selected) if (!list.some(c => c.Id === id)) selected.delete(id);
      shownCount = rows.length;
      counted();
      // Redrawing replaces the rows: the keyboard focus stays on the same
      // control of the same row.
      const focused = document.activeElement;
      const focusRow = focused && focused.closest('tr[data-id]');
      const focusAt = focusRow && [...focusRow.querySelectorAll('a,button,input')].indexOf(focused);
      const all = writable(h('input', {type: 'checkbox', 'aria-label': 'Select all shown',
        checked: rows.length > 0 && rows.every(c => selected.has(c.Id)),
        onchange: e => { for (const c of rows) pick(c.Id, e.target.checked); draw(); }}));
      fill(body, table([
        ...(canWrite() ? [[all, c => h('input', {type: 'checkbox', 'aria-label': 'Select ' + nameOf(c), checked: selected.has(c.Id),
          onchange: e => { pick(c.Id, e.target.checked); counted(); }})]] : []),
        ['State', c => h('span', {class: 'badge state-' + c.State, text: c.State})],
        ['Name', c => h('a', {href: '#/containers/' + c.Id, text: nameOf(c)})],
        ['Image', c => c.Image],
        ['Ports', ports],
        ['Status', c => [c.Status, h('br'), h('span', {class: 'muted', text: 'created ' + ago(c.Created)})]],
        ...(canWrite() ? [['Actions', c => h('div', {class: 'toolbar row-actions'},
          containerActions(c.State, () => [{id: c.Id, name: nameOf(c)}], refresh))]] : []),
      ], rows, list.length ? 'No container matches.' : 'No containers.', c => ({'data-id': c.Id, 'data-name': nameOf(c)})));
      const row = focusRow && body.querySelector('tr[data-id="' + focusRow.dataset.id + '"]');
      if (row) {
        const controls = row.querySelectorAll('a,button,input');
        controls[Math.min(focusAt, controls.length - 1)].focus();
      }
    };
    // The filter is kept in the address (without a new history entry), so
    // a reload or a shared link shows the same rows.
    const filtered = () => {
      history.replaceState(null, '', '#/containers' + query({q: q.value.trim(), state: stateSel.value}));
      draw();
    };
    q.addEventListener('input', filtered);
    stateSel.addEventListener('change', filtered);

    let pending = null;
    async function refresh() {
      clearTimeout(pending);
      try {
        list = await api('/containers/json', {query: {all: 1}, signal});
        draw();
      } catch (e) {
        if (!signal.aborted) notify(e, 'error');
      }
    }
    // Docker's event stream says when a container changes (here or
    // elsewhere): the list follows it without polling.
    ndjson('/events', {signal, query: {filters: {type: ['container'], event: ['create', 'start', 'die', 'destroy', 'pause', 'unpause', 'rename']}}}, () => {
      clearTimeout(pending);
      pending = setTimeout(refresh, 250);
    }).catch(e => { if (!signal.aborted) liveNote.textContent = 'Live updates stopped: ' + describe(e); });
    signal.addEventListener('abort', () => clearTimeout(pending));

    draw();
    fill(view,
      h('h1', {tabindex: '-1', text: 'Containers'}),
      h('div', {class: 'toolbar'},
        writable(h('a', {class: 'button primary', href: '#/create', id: 'ctr-create', text: 'Create'})),
        q, stateSel,
        h('button', {type: 'button', text: 'Refresh', onclick: e => act(e.currentTarget, refresh)}), count),
      canWrite() ? h('div', {class: 'toolbar bulk', role: 'group', 'aria-label': 'Selected containers'},
        h('span', {class: 'muted', text: 'Selected:'}), containerActions(null, targets, () => { selected.clear(); refresh(); })) : null,
      body, liveNote);
  }, 'Containers');

  // --- create and run --------------------------------------------------------

  const lines = s => s.split('\n').map(l => l.trim()).filter(Boolean);

  // "512m", "1.5 GiB", "1048576" → bytes (powers of 1024, as docker -m).
  function memory(s) {
    if (!s.trim()) return 0;
    const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
    if (!m) throw new Error('Memory: "' + s + '" is not a size such as 256m or 1g');
    return Math.round(Number(m[1]) * 1024 ** ' kmgt'.indexOf(m[2].toLowerCase() || ' '));
  }

  // "[ip:][hostPort:]containerPort[/proto]" → ["80/tcp", {HostIp, HostPort}];
  // the IP may be IPv6 in brackets, so the host part splits at its last colon.
  function port(line) {
    const m = /^(?:(.*):)?(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(line);
    const host = m && m[1] || '', colon = host.lastIndexOf(':');
    const hostPort = host.slice(colon + 1);
    if (!m || !/^(\d+(-\d+)?)?$/.test(hostPort)) {
      throw new Error('Ports: "' + line + '" is not [ip:][host port:]container port[/tcp|udp|sctp]');
    }
    const ip = colon < 0 ? '' : host.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    return [m[2] + '/' + (m[3] || 'tcp').toLowerCase(), {HostIp: ip, HostPort: hostPort}];
  }

  // The /containers/create body from the form's fields; fields left empty
  // stay out of it (the gateway's policy passes zero values).
  function createBody(f) {
    const body = {Image: f.image.trim(), Tty: f.tty, OpenStdin: f.interactive, HostConfig: {}};
    const hc = body.HostConfig;
    if (f.cmd.trim()) body.Cmd = shellSplit(f.cmd);
    if (lines(f.env).length) body.Env = lines(f.env);
    for (const l of lines(f.labels)) {
      const i = l.indexOf('=');
      (body.Labels = body.Labels || {})[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
    }
    for (const l of lines(f.ports)) {
      const [key, binding] = port(l);
      (body.ExposedPorts = body.ExposedPorts || {})[key] = {};
      ((hc.PortBindings = hc.PortBindings || {})[key] = hc.PortBindings[key] || []).push(binding);
    }
    // "/host:/path[:ro]" and "volume:/path" are binds; a lone "/path" is an
    // anonymous volume.
    for (const l of lines(f.volumes)) {
      if (l.includes(':')) (hc.Binds = hc.Binds || []).push(l);
      else if (l.startsWith('/')) (body.Volumes = body.Volumes || {})[l] = {};
      else throw new Error('Volumes: "' + l + '" is neither source:/path nor an absolute /path');
    }
    if (f.restart) hc.RestartPolicy = {Name: f.restart, MaximumRetryCount: 0};
    if (f.network) hc.NetworkMode = f.network;
    const mem = memory(f.memory);
    if (mem) hc.Memory = mem;
    if (f.cpus.trim()) {
      const cpus = Number(f.cpus);
      if (!(cpus > 0)) throw new Error('CPUs: "' + f.cpus + '" is not a positive number such as 0.5');
      hc.NanoCpus = Math.round(cpus * 1e9);
    }
    return body;
  }

  route('create', async (view, params, signal) => {
    if (!canWrite()) return fill(view, h('h1', {text: 'Create a container'}), h('p', {class: 'muted', text: 'Your role can only read.'}));
    const none = () => [];
    const [images, networks] = await Promise.all([
      api('/images/json', {signal}).catch(none), api('/networks', {signal}).catch(none)]);
    const tags = images.flatMap(i => i.RepoTags || []).filter(t => t !== '<none>:<none>').sort();
    const field = (name, label, input, hint) => [h('label', {for: 'c-' + name, text: label}),
      h('div', {}, Object.assign(input, {id: 'c-' + name, name}), hint ? h('div', {class: 'muted hint', text: hint}) : null)];
    const area = placeholder => h('textarea', {rows: 2, placeholder, spellcheck: 'false'});
    const msg = h('div', {class: 'full', 'aria-live': 'assertive'});
    const submit = h('button', {class: 'primary', text: 'Create'});
    const form = h('form', {class: 'grid card', id: 'create-form'},
      field('image', 'Image', h('input', {required: true, list: 'c-images', autofocus: true, autocomplete: 'off', placeholder: 'busybox:latest'})),
      h('datalist', {id: 'c-images'}, tags.map(t => h('option', {value: t}))),
      field('name', 'Name', h('input', {autocomplete: 'off', placeholder: 'optional'})),
      field('cmd', 'Command', h('input', {autocomplete: 'off', placeholder: 'image default; quotes work: sh -c "echo hi"'})),
      field('env', 'Environment', area('NAME=value, one per line')),
      field('ports', 'Ports', area('8080:80/tcp, one per line')),
      field('volumes', 'Binds and volumes', area('/host/dir:/path[:ro], volume:/path or /path, one per line')),
      field('restart', 'Restart policy', h('select', {},
        [['', 'no'], ['always', 'always'], ['unless-stopped', 'unless stopped'], ['on-failure', 'on failure']].map(([v, t]) => h('option', {value: v, text: t})))),
      field('network', 'Network', h('select', {}, h('option', {value: '', text: 'default'}),
        networks.map(n => n.Name).sort().map(n => h('option', {value: n, text: n})))),
      field('labels', 'Labels', area('key=value, one per line')),
      field('memory', 'Memory limit', h('input', {autocomplete: 'off', placeholder: 'e.g. 256m, 1g'})),
      field('cpus', 'CPUs', h('input', {inputmode: 'decimal', autocomplete: 'off', placeholder: 'e.g. 0.5'})),
      h('div', {class: 'full toolbar'}, checkbox('c-tty', 'TTY (-t)'), checkbox('c-interactive', 'Keep stdin open (-i)'),
        checkbox('c-start', 'Start after create', true)),
      msg,
      h('div', {class: 'full toolbar'}, submit, h('a', {href: '#/containers', text: 'Cancel'})));
    form.addEventListener('submit', e => {
      e.preventDefault();
      const f = Object.fromEntries(new FormData(form));
      const on = id => form.querySelector('#c-' + id).checked;
      act(submit, async () => {
        fill(msg);
        let id = null;
        try {
          const body = createBody(Object.assign(f, {tty: on('tty'), interactive: on('interactive')}));
          const created = await api('/containers/create', {method: 'POST', query: {name: f.name.trim()}, json: body});
          id = created.Id;
          if (on('start')) await api('/containers/' + id + '/start', {method: 'POST'});
        } catch (err) {
          // Shown by the form (not only as a notice), next to the fields
          // the policy's rule and field name.
          fill(msg, errorBox(err), id ? h('p', {}, 'The container was created but not started: ',
            h('a', {href: '#/containers/' + id, text: shortId(id)})) : null);
          msg.scrollIntoView({block: 'nearest'});
          return;
        }
        notify('Created ' + (f.name.trim() || shortId(id)));
        go('#/containers');
      });
    });
    fill(view, h('h1', {tabindex: '-1', text: 'Create a container'}), form);
  });
})();
