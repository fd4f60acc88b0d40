// Networks and volumes share one shape: a list with create and prune, and a
// detail screen with inspect and remove. Each kind only says what differs.
(() => {
  const input = (name, props) => h('input', Object.assign({name, autocomplete: 'off'}, props));
  const joinLabels = labels => Object.entries(labels || {}).map(([k, v]) => k + '=' + v).join(', ');

  // kind: {name (API path and route), title, one (singular), list(signal),
  // key(row), label(row), fixed(row) (cannot be removed), columns,
  // fields() → [[label, input]], body(form values) → JSON,
  // prune: {confirm() → the prune query once confirmed (else null), done(reply) → message}}
  function resource(kind) {
    const path = row => '/' + kind.name + '/' + encodeURIComponent(kind.key(row));

    async function remove(row) {
      if (!(await confirmDialog('Remove ' + kind.one + ' ' + kind.label(row) + '?', 'Remove'))) return false;
      await api(path(row), {method: 'DELETE'});
      notify('Removed ' + kind.one + ' ' + kind.label(row));
      return true;
    }

    async function list(view, signal) {
      const shown = h('div');
      const columns = [['Name', r => h('a', {href: '#' + path(r), text: kind.label(r)})], ...kind.columns];
      if (canWrite()) {
        columns.push(['Actions', r => (kind.fixed && kind.fixed(r) ? '' : h('button', {type: 'button', class: 'danger',
          text: 'Remove', 'aria-label': 'Remove ' + kind.label(r),
          onclick: e => act(e.target, async () => { if (await remove(r)) await refresh(); })}))]);
      }
      const refresh = async () => fill(shown, table(columns, await kind.list(signal), 'No ' + kind.name + '.'));
      const createForm = close => formGrid('Create a ' + kind.one, kind.fields(), 'Create', async form => {
        const values = Object.fromEntries(new FormData(form));
        const out = await api('/' + kind.name + '/create', {method: 'POST', json: kind.body(values)});
        close();
        notify('Created ' + kind.one + ' ' + (values.name || out.Name || ''));
        if (out && out.Warning) notify(out.Warning, 'error');
        await refresh();
      });
      const prune = h('button', {type: 'button', text: 'Prune', onclick: e => act(e.target, async () => {
        const q = await kind.prune.confirm();
        if (!q) return;
        notify(kind.prune.done(await api('/' + kind.name + '/prune', {method: 'POST', query: q})));
        await refresh();
      })});
      fill(view, h('h1', {tabindex: '-1', text: kind.title}), canWrite() ? actions([['Create', createForm]], prune) : null, shown);
      await refresh();
    }

    async function detail(view, key, signal) {
      const row = await api('/' + kind.name + '/' + encodeURIComponent(key), {signal});
      fill(view, h('p', {}, h('a', {href: '#/' + kind.name, text: '← ' + kind.title})),
        h('h1', {tabindex: '-1', text: kind.label(row)}),
        canWrite() && !(kind.fixed && kind.fixed(row)) ? h('div', {class: 'toolbar'}, h('button', {type: 'button',
          class: 'danger', text: 'Remove', onclick: e => act(e.target, async () => { if (await remove(row)) go('#/' + kind.name); })})) : null,
        h('h2', {text: 'Inspect'}), jsonTree(row, 2));
    }

    route(kind.name, (view, [key], signal) => (key ? detail(view, key, signal) : list(view, signal)), kind.title);
  }

  resource({
    name: 'networks', title: 'Networks', one: 'network',
    list: async signal => (await api('/networks', {signal})).sort((a, b) => a.Name.localeCompare(b.Name)),
    key: n => n.Id, label: n => n.Name,
    fixed: n => ['bridge', 'host', 'none'].includes(n.Name),
    columns: [
      ['ID', n => h('code', {text: shortId(n.Id)})],
      ['Driver', n => n.Driver],
      ['Scope', n => n.Scope],
      ['Subnet', n => ((n.IPAM && n.IPAM.Config) || []).map(c => c.Subnet).filter(Boolean).join(', ') || '–'],
      ['Internal', n => (n.Internal ? 'yes' : 'no')],
      ['Created', n => ago(n.Created)],
    ],
    fields: () => [
      ['Name', input('name', {required: true})],
      ['Driver', h('select', {name: 'driver'}, ['bridge', 'macvlan', 'ipvlan', 'overlay'].map(d => h('option', {text: d})))],
      ['Subnet (optional)', input('subnet', {placeholder: '172.30.0.0/24'})],
      ['Gateway (optional)', input('gateway', {placeholder: '172.30.0.1'})],
      ['Parent interface (macvlan, ipvlan)', input('parent', {placeholder: 'eth0'})],
      ['Internal (no outside access)', input('internal', {type: 'checkbox'})],
    ],
    body: v => ({
      Name: v.name, Driver: v.driver, Internal: !!v.internal,
      IPAM: v.subnet ? {Config: [{Subnet: v.subnet, Gateway: v.gateway || undefined}]} : undefined,
      Options: v.parent ? {parent: v.parent} : undefined,
    }),
    prune: {
      confirm: async () => (await confirmDialog('Remove every network that no container uses?', 'Prune')) && {},
      done: out => 'Removed ' + (out.NetworksDeleted || []).length + ' networks',
    },
  });

  resource({
    name: 'volumes', title: 'Volumes', one: 'volume',
    list: async signal => ((await api('/volumes', {signal})).Volumes || []).sort((a, b) => a.Name.localeCompare(b.Name)),
    key: v => v.Name, label: v => v.Name,
    columns: [
      ['Driver', v => v.Driver],
      ['Mount point', v => h('code', {class: 'wrap', text: v.Mountpoint || ''})],
      ['Created', v => ago(v.CreatedAt)],
      ['Labels', v => joinLabels(v.Labels) || '–'],
    ],
    fields: () => [
      ['Name (optional)', input('name')],
      ['Driver', input('driver', {value: 'local', required: true})],
      ['Labels (key=value, one a line)', h('textarea', {name: 'labels', rows: 3})],
    ],
    body: v => ({
      Name: v.name, Driver: v.driver,
      Labels: Object.fromEntries(v.labels.split('\n').map(l => l.trim()).filter(Boolean)
        .map(l => [l.split('=')[0], l.slice(l.indexOf('=') + 1 || l.length)])),
    }),
    prune: {
      confirm: async () => {
        // Before API 1.42 prune took named volumes too and knew no `all` filter.
        const [major, minor] = (await api('/version')).ApiVersion.split('.').map(Number);
        if (major === 1 && minor < 42) return (await confirmDialog('Remove every volume that no container uses?', 'Prune')) && {};
        const answer = await confirmDialog('Remove every anonymous volume that no container uses?', 'Prune', 'Named volumes too');
        return answer && {filters: answer.option ? {all: ['true']} : null};
      },
      done: out => 'Removed ' + (out.VolumesDeleted || []).length + ' volumes, reclaimed ' + bytes(out.SpaceReclaimed),
    },
  });
})();
