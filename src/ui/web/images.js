// Images: the list with pull, load, build and prune; one image's detail with
// tag, save, remove, history and inspect. Pull, load, save and build are
// jobs: a card with progress and Cancel that stays after the work ends, so
// its outcome (or dockerd's error) remains readable.
(() => {
  const NONE = '<none>:<none>';
  const tags = img => (img.RepoTags || []).filter(t => t !== NONE);
  const nameOf = img => tags(img)[0] || shortId(img.Id);
  // Image names hold '/' and ':', which the API routes take literally.
  const ref = name => encodeURI(name);

  // An {error} object inside a 200 stream (pull, load, build) as an Error.
  const streamError = o => o.error || o.errorDetail
    ? new Error((o.errorDetail && o.errorDetail.message) || o.error) : null;

  // Runs long work as a card in `area`: work(p, card) resolves to the
  // closing message (or to nothing when it finished p itself, as download
  // does); a failure or Cancel is shown on the card.
  function job(area, label, signal, work) {
    const p = progress(label, signal);
    const card = h('div', {class: 'card job'}, p.el);
    area.prepend(card);
    return work(p, card).then(msg => msg && p.finish(msg), e => p.fail(e));
  }

  // Uploads a tar whose reply is NDJSON (load, build); each object that is
  // not an error goes to onObject as it arrives. An error line fails it.
  async function sendTar(path, file, p, q, onObject) {
    let seen = 0;
    let failure = null;
    const feed = jsonLines(o => {
      const err = streamError(o);
      if (err) failure = failure || err;
      else onObject(o);
    });
    const onText = text => {
      try { feed(text.slice(seen)); } catch (e) { failure = failure || e; }
      seen = text.length;
    };
    onText(await upload(path, file, p, {method: 'POST', q, headers: {'Content-Type': 'application/x-tar'}, onText}));
    feed('\n');
    if (failure) throw failure;
  }

  // The log under a load or build job: dockerd's `stream` and `status` text.
  // Its progress updates (a layer loading, a base image pulling) would
  // flood the log, so they only replace the progress line's text.
  function logTo(card, p) {
    const log = h('pre', {class: 'log short', 'aria-label': 'Output'});
    card.append(log);
    return o => {
      if (o.progress) return p.text([o.status, o.id, o.progress].filter(Boolean).join(' '));
      const text = o.stream || (o.status ? [o.status, o.id].filter(Boolean).join(' ') + '\n' : '');
      if (!text) return;
      log.append(text);
      log.scrollTop = log.scrollHeight;
    };
  }

  // 'name:tag' for the pull query; a digest reference goes whole.
  function splitRef(s) {
    if (s.includes('@')) return {fromImage: s};
    const m = /^(.*?)(?::([^:/]+))?$/.exec(s);
    return {fromImage: m[1], tag: m[2] || 'latest'};
  }

  // Pull progress: one bar per layer, the total over the layers whose size
  // is known, and the status lines without a layer (digest, final status).
  async function pull(image, p, card) {
    const layers = new Map();
    const box = h('div', {class: 'layers'});
    const notes = h('div', {class: 'muted'});
    card.append(box, notes);
    let last = '';
    await ndjson('/images/create', {method: 'POST', query: splitRef(image), signal: p.signal}, o => {
      const err = streamError(o);
      if (err) throw err;
      if (!o.id || !o.progressDetail) {
        last = [o.id, o.status].filter(Boolean).join(': ');
        notes.append(h('div', {text: last}));
        return;
      }
      let l = layers.get(o.id);
      if (!l) {
        l = {bar: h('progress', {max: 1, value: 0}), info: h('span'), current: 0, total: 0};
        layers.set(o.id, l);
        box.append(h('div', {class: 'layer'}, h('code', {text: o.id}), l.bar, l.info));
      }
      const {current, total} = o.progressDetail;
      if (total > 0) Object.assign(l, {current, total});
      const full = /complete|exists/i.test(o.status);
      if (full) l.current = l.total;
      l.bar.max = l.total || 1;
      l.bar.value = full ? l.bar.max : l.current;
      l.info.textContent = o.status + (l.total ? ' ' + bytes(l.current) + ' / ' + bytes(l.total) +
        ' (' + Math.floor(100 * l.current / l.total) + '%)' : '');
      let done = 0, size = 0;
      for (const x of layers.values()) { done += x.current; size += x.total; }
      p.set(done, size);
    });
    return last || 'pulled';
  }

  async function remove(img, back) {
    const answer = await confirmDialog('Remove image ' + nameOf(img) + '?', 'Remove',
      'Force: remove every tag, even if stopped containers use it');
    if (!answer) return false;
    const out = await api('/images/' + ref(img.Id), {method: 'DELETE', query: {force: answer.option ? 1 : null}}) || [];
    notify('Removed ' + nameOf(img) + ': ' + out.filter(x => x.Deleted).length + ' deleted, ' +
      out.filter(x => x.Untagged).length + ' untagged');
    if (back) go('#/images');
    return true;
  }

  const fileInput = () => h('input', {type: 'file', required: true, accept: '.tar,.tar.gz,.tgz,application/x-tar,application/gzip'});

  async function list(view, signal) {
    const jobs = h('div', {class: 'jobs'});
    const shown = h('div');
    const filter = h('input', {type: 'search', placeholder: 'Filter', 'aria-label': 'Filter images'});
    let rows = [];
    const columns = [
      ['Image', r => [h('a', {href: '#/images/' + encodeURIComponent(r.Id), text: nameOf(r)}),
        tags(r).slice(1).map(t => h('div', {class: 'muted', text: t}))]],
      ['ID', r => h('code', {text: shortId(r.Id)})],
      ['Size', r => bytes(r.Size)],
      ['Created', r => ago(r.Created)],
      ['Containers', r => r.used.length ? r.used.map((c, i) => [i ? ', ' : '',
        h('a', {href: '#/containers/' + c.Id, text: (c.Names[0] || c.Id).replace(/^\//, '')})]) : '0'],
    ];
    if (canWrite()) {
      columns.push(['Actions', r => h('button', {type: 'button', class: 'danger', text: 'Remove',
        'aria-label': 'Remove ' + nameOf(r), onclick: e => act(e.target, async () => { if (await remove(r)) await refresh(); })})]);
    }
    const draw = () => {
      const q = filter.value.toLowerCase();
      fill(shown, table(columns, rows.filter(r => !q || (tags(r).join(' ') + ' ' + r.Id).toLowerCase().includes(q)), 'No images.'));
    };
    const refresh = async () => {
      const [images, containers] = await Promise.all([
        api('/images/json', {signal}), api('/containers/json', {query: {all: 1}, signal})]);
      rows = images.map(i => Object.assign(i, {used: containers.filter(c => c.ImageID === i.Id)}))
        .sort((a, b) => b.Created - a.Created);
      draw();
    };
    const refreshAfter = work => (p, card) => work(p, card).then(async msg => { await refresh(); return msg; });
    filter.addEventListener('input', draw);

    const pullForm = close => {
      const image = h('input', {name: 'image', required: true, placeholder: 'alpine:latest', autocomplete: 'off'});
      return formGrid('Pull an image', [['Image', image]], 'Pull', () => {
        close();
        job(jobs, 'Pull ' + image.value, signal, refreshAfter((p, card) => pull(image.value.trim(), p, card)));
      });
    };
    const loadForm = close => {
      const file = fileInput();
      return formGrid('Load images from a tar', [['Image tar', file]], 'Load', () => {
        const f = file.files[0];
        close();
        job(jobs, 'Load ' + f.name, signal, refreshAfter(async (p, card) => {
          const out = logTo(card, p);
          const loaded = [];
          await sendTar('/images/load', f, p, null, o => {
            out(o);
            if (o.stream && /^Loaded image/.test(o.stream)) loaded.push(o.stream.trim());
          });
          return loaded.join('; ') || 'loaded';
        }));
      });
    };
    const buildForm = close => {
      const file = fileInput();
      const tag = h('input', {name: 't', placeholder: 'myimage:latest', autocomplete: 'off'});
      const dockerfile = h('input', {name: 'dockerfile', value: 'Dockerfile'});
      return formGrid('Build an image', [['Context (tar or tar.gz)', file], ['Tag', tag], ['Dockerfile', dockerfile]], 'Build', () => {
        const f = file.files[0];
        const q = {t: tag.value.trim(), dockerfile: dockerfile.value.trim()};
        close();
        job(jobs, 'Build ' + (q.t || f.name), signal, refreshAfter(async (p, card) => {
          const out = logTo(card, p);
          let id = '';
          await sendTar('/build', f, p, q, o => { out(o); if (o.aux && o.aux.ID) id = o.aux.ID; });
          return 'built ' + (q.t || shortId(id) || '');
        }));
      });
    };
    const prune = h('button', {type: 'button', text: 'Prune', onclick: e => act(e.target, async () => {
      const answer = await confirmDialog('Remove dangling images (untagged and unused)?', 'Prune',
        'All unused images, not just dangling ones');
      if (!answer) return;
      const out = await api('/images/prune', {method: 'POST',
        query: {filters: answer.option ? {dangling: ['false']} : null}});
      notify('Pruned ' + (out.ImagesDeleted || []).length + ' image layers, reclaimed ' + bytes(out.SpaceReclaimed));
      await refresh();
    })});

    fill(view, h('h1', {tabindex: '-1', text: 'Images'}),
      canWrite() ? actions([['Pull', pullForm], ['Load', loadForm], ['Build', buildForm]], prune, filter)
        : h('div', {class: 'toolbar'}, filter),
      jobs, shown);
    await refresh();
  }

  async function detail(view, id, tab, signal) {
    const img = await api('/images/' + ref(id) + '/json', {signal});
    const base = '#/images/' + encodeURIComponent(id);
    const jobs = h('div', {class: 'jobs'});
    const untag = t => h('button', {type: 'button', 'aria-label': 'Untag ' + t, title: 'Untag', text: '×',
      onclick: e => act(e.target, async () => {
        const out = await api('/images/' + ref(t), {method: 'DELETE'}) || [];
        notify('Untagged ' + t);
        // Untagging the last name of an unused image deletes it.
        go(out.some(x => x.Deleted) ? '#/images' : base);
      })});
    const tagForm = close => {
      const repo = h('input', {name: 'repo', required: true, placeholder: 'registry/name', autocomplete: 'off'});
      const tag = h('input', {name: 'tag', placeholder: 'latest', autocomplete: 'off'});
      return formGrid('Tag this image', [['Repository', repo], ['Tag', tag]], 'Tag', async () => {
        const name = repo.value.trim() + ':' + (tag.value.trim() || 'latest');
        await api('/images/' + ref(id) + '/tag', {method: 'POST', query: {repo: repo.value.trim(), tag: tag.value.trim() || 'latest'}});
        close();
        notify('Tagged ' + name);
        go(base);
      });
    };
    const file = nameOf(img).replace(/[^\w.-]+/g, '_') + '.tar';
    const save = h('button', {type: 'button', text: 'Save', onclick: () =>
      job(jobs, 'Save ' + file, signal, p => download('/images/' + ref(id) + '/get', file, p))});
    const removeButton = h('button', {type: 'button', class: 'danger', text: 'Remove',
      onclick: e => act(e.target, () => remove(img, true))});

    fill(view, h('p', {}, h('a', {href: '#/images', text: '← Images'})),
      h('h1', {tabindex: '-1', text: nameOf(img)}),
      h('div', {class: 'cards'},
        h('div', {class: 'card'}, h('div', {class: 'muted', text: 'ID'}), h('code', {class: 'wrap', text: img.Id})),
        h('div', {class: 'card'}, h('div', {class: 'muted', text: 'Size, created'}), bytes(img.Size) + ', ' + ago(img.Created)),
        h('div', {class: 'card'}, h('div', {class: 'muted', text: 'Platform'}), [img.Os, img.Architecture, img.Variant].filter(Boolean).join('/')),
        h('div', {class: 'card tags'}, h('div', {class: 'muted', text: 'Tags'}),
          tags(img).length ? tags(img).map(t => h('div', {}, h('code', {class: 'wrap', text: t}), ' ', writable(untag(t)))) : 'none')),
      canWrite() ? actions([['Tag', tagForm]], save, removeButton) : null,
      jobs,
      tabs(base, [
        ['inspect', 'Inspect', panel => fill(panel, jsonTree(img, 2))],
        ['history', 'History', async (panel, sig) => fill(panel, table([
          ['Created', r => ago(r.Created)],
          ['Created by', r => h('code', {class: 'wrap', text: r.CreatedBy || ''})],
          ['Size', r => bytes(r.Size)],
          ['Comment', r => r.Comment || ''],
        ], await api('/images/' + ref(id) + '/history', {signal: sig}), 'No history.'))],
      ], tab, signal));
  }

  route('images', (view, [id, tab], signal) => (id ? detail(view, id, tab, signal) : list(view, signal)), 'Images');
})();
