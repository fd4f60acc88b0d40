// Overview: the engine, the host, containers by state, counts, and disk use
// as bars. /system/df walks every layer (slow on a router's flash), so it
// fills its section after the rest of the screen is shown.
(() => {
  const card = (title, ...body) => h('div', {class: 'card'}, h('h2', {text: title}), body);
  const line = (label, value) => h('div', {}, h('span', {class: 'muted', text: label + ': '}), value == null || value === '' ? '–' : value);
  const sum = (list, size) => list.reduce((n, x) => n + Math.max(0, size(x) || 0), 0);

  // Total and reclaimable bytes per kind, counted as `docker system df` does.
  function diskUse(df) {
    const images = df.Images || [], containers = df.Containers || [], volumes = df.Volumes || [], cache = df.BuildCache || [];
    const imagesUsed = sum(images.filter(i => i.Containers > 0), i => i.Size - Math.max(0, i.SharedSize));
    const volSize = v => v.UsageData && v.UsageData.Size;
    return [
      ['Images', images.length, df.LayersSize || 0, Math.max(0, (df.LayersSize || 0) - imagesUsed)],
      ['Containers (writable layers)', containers.length, sum(containers, c => c.SizeRw),
        sum(containers.filter(c => c.State !== 'running'), c => c.SizeRw)],
      ['Volumes', volumes.length, sum(volumes, volSize), sum(volumes.filter(v => v.UsageData && v.UsageData.RefCount === 0), volSize)],
      ['Build cache', cache.length, sum(cache.filter(b => !b.Shared), b => b.Size), sum(cache.filter(b => !b.InUse && !b.Shared), b => b.Size)],
    ];
  }

  function bars(df) {
    const rows = diskUse(df);
    const scale = Math.max(1, ...rows.map(r => r[2]));
    const pct = n => (100 * n / scale).toFixed(2) + '%';
    return h('div', {class: 'df'}, rows.map(([label, count, total, reclaim]) => {
      const used = h('span'), free = h('span', {class: 'reclaim'});
      used.style.width = pct(total - reclaim);
      free.style.width = pct(reclaim);
      const text = bytes(total) + (reclaim ? ', ' + bytes(reclaim) + ' reclaimable' : '');
      return h('div', {class: 'df-row'}, h('span', {text: label + ' (' + count + ')'}),
        h('div', {class: 'bar', role: 'img', 'aria-label': label + ': ' + text}, used, free), h('span', {class: 'muted', text}));
    }));
  }

  route('overview', async (view, params, signal) => {
    const [version, info, containers, networks, volumes] = await Promise.all([
      api('/version', {signal}), api('/info', {signal}), api('/containers/json', {query: {all: 1}, signal}),
      api('/networks', {signal}), api('/volumes', {signal})]);
    const states = {};
    for (const c of containers) states[c.State] = (states[c.State] || 0) + 1;
    const disk = h('div', {}, h('p', {class: 'muted', text: 'Measuring disk use…'}));
    fill(view, h('h1', {tabindex: '-1', text: 'Overview'}),
      h('div', {class: 'cards'},
        card('Engine', line('Docker', version.Version), line('API', version.ApiVersion),
          line('Storage driver', info.Driver), line('Root', h('code', {text: info.DockerRootDir || ''}))),
        card('Host', line('Name', info.Name), line('OS', info.OperatingSystem),
          line('Kernel', info.KernelVersion), line('Architecture', info.Architecture)),
        card('CPU and memory', line('CPUs', info.NCPU), line('Memory', bytes(info.MemTotal))),
        card('Containers', h('a', {href: '#/containers', text: containers.length + ' in all'}), h('div', {class: 'states'},
          Object.entries(states).sort().map(([s, n]) => h('span', {class: 'badge state-' + s, text: s + ' ' + n})))),
        card('Images, volumes, networks',
          line('Images', h('a', {href: '#/images', text: String(info.Images)})),
          line('Volumes', h('a', {href: '#/volumes', text: String((volumes.Volumes || []).length)})),
          line('Networks', h('a', {href: '#/networks', text: String(networks.length)})))),
      h('h2', {text: 'Disk use'}), disk);
    api('/system/df', {signal}).then(df => fill(disk, bars(df)), e => { if (!signal.aborted) fill(disk, errorBox(e)); });
  }, 'Overview');
})();
