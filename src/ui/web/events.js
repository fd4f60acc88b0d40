// Events: dockerd's live event stream, newest first, with filters kept in
// the URL (#/events?type=container&event=start&container=web), so a
// filtered view has its own address and a change restarts the stream.
(() => {
  const MAX_ROWS = 500;
  // Shown first: the recent past, then the stream goes on live.
  const HISTORY_SECS = 600;
  const types = ['', 'container', 'image', 'network', 'volume', 'daemon'];
  const links = {container: 'containers', image: 'images', network: 'networks', volume: 'volumes'};
  // Today's events need only the time of day.
  const time = ev => {
    const d = new Date(ev.timeNano ? ev.timeNano / 1e6 : ev.time * 1000);
    return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  };

  function row(ev) {
    const actor = ev.Actor || {};
    const attrs = Object.assign({}, actor.Attributes);
    const name = (attrs.name || actor.ID || '').replace(/^sha256:([0-9a-f]{12})[0-9a-f]{52}$/, '$1');
    delete attrs.name;
    const target = links[ev.Type] && actor.ID;
    const cell = (label, ...content) => h('td', {'data-label': label}, content);
    return h('tr', {},
      cell('Time', time(ev)),
      cell('Type', ev.Type || ''),
      cell('Event', h('strong', {text: ev.Action || ev.status || ''})),
      cell('Object', target ? h('a', {href: '#/' + links[ev.Type] + '/' + encodeURIComponent(actor.ID), text: name}) : name),
      cell('Details', h('span', {class: 'muted wrap', text: Object.entries(attrs).map(([k, v]) => k + '=' + v).join(', ')})));
  }

  route('events', async (view, params, signal, search) => {
    const type = h('select', {name: 'type', 'aria-label': 'Type'},
      types.map(t => h('option', {value: t, text: t || 'all types', selected: search.get('type') === t})));
    const event = h('input', {name: 'event', placeholder: 'event, e.g. start', 'aria-label': 'Event', value: search.get('event') || ''});
    const container = h('input', {name: 'container', placeholder: 'container name', 'aria-label': 'Container', value: search.get('container') || ''});
    const form = h('form', {class: 'toolbar', 'aria-label': 'Filters'}, type, event, container,
      h('button', {class: 'primary', text: 'Apply'}));
    form.addEventListener('submit', e => {
      e.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v.trim()) q.set(k, v.trim());
      go('#/events' + (String(q) ? '?' + q : ''));
    });
    const state = h('p', {class: 'muted', role: 'status', text: 'Live: waiting for events.'});
    const body = h('tbody');
    const filters = {};
    for (const k of ['type', 'event', 'container']) if (search.get(k)) filters[k] = [search.get(k)];

    fill(view, h('h1', {tabindex: '-1', text: 'Events'}), form, state,
      h('div', {class: 'table-wrap'}, h('table', {class: 'events'},
        h('thead', {}, h('tr', {}, ['Time', 'Type', 'Event', 'Object', 'Details'].map(t => h('th', {scope: 'col', text: t})))),
        body)));
    const since = Math.floor(Date.now() / 1000) - HISTORY_SECS;
    ndjson('/events', {query: {since, filters: Object.keys(filters).length ? filters : null}, signal}, ev => {
      body.prepend(row(ev));
      if (body.rows.length > MAX_ROWS) body.lastChild.remove();
      state.textContent = 'Live: ' + body.rows.length + ' events shown (at most ' + MAX_ROWS + ').';
    }).then(() => { state.textContent = 'The event stream ended.'; },
      e => { if (!signal.aborted) fill(state, errorBox(e)); });
  }, 'Events');
})();
