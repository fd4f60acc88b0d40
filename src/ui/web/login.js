// Sign-in: dockermand's own users, the router's account (checked with
// rpcd by the gateway), or a pasted API token. Each makes the same session
// cookie, so the rest of the UI never handles a secret.
(() => {
  const methods = [
    ['password', 'dockermand user'],
    ['router', 'Router account'],
    ['token', 'API token'],
  ];

  route('login', async (view, params, signal, search) => {
    const offered = (await api('/_dockermand/login', {signal})).methods;
    const next = search.get('next') || '#/overview';
    const msg = h('div', {'aria-live': 'assertive'});
    const forms = methods.filter(([m]) => offered.includes(m)).map(([method, label]) => {
      const fields = method === 'token'
        ? [h('label', {for: 'token', text: 'Token'}), h('input', {id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true})]
        : [h('label', {for: method + '-user', text: 'User'}),
          h('input', {id: method + '-user', name: 'username', autocomplete: 'username', required: true, value: method === 'router' ? 'root' : ''}),
          h('label', {for: method + '-password', text: 'Password'}),
          h('input', {id: method + '-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true})];
      const button = h('button', {class: 'primary full', text: 'Sign in'});
      const form = h('form', {class: 'grid card', id: 'login-' + method, 'aria-label': label}, h('h2', {class: 'full', text: label}), fields, button);
      form.addEventListener('submit', e => {
        e.preventDefault();
        const body = Object.fromEntries(new FormData(form));
        if (method === 'router') body.account = 'router';
        act(button, async () => {
          fill(msg);
          try {
            await api('/_dockermand/login', {method: 'POST', json: body});
          } catch (err) {
            fill(msg, errorBox(err));
            return;
          }
          // The next screen asks who this is (whoami names the principal).
          session.role = null;
          go(next.startsWith('#/login') ? '#/overview' : next);
        });
      });
      return form;
    });
    fill(view, h('h1', {tabindex: '-1', text: 'Sign in'}), msg, forms);
    const first = view.querySelector('input');
    if (first) first.setAttribute('autofocus', '');
  });

  // A ticket whose opener the browser did not name: plain http to a LAN
  // address carries no Sec-Fetch-Site, and a page can hide its Referer (as
  // LuCI on https does, going to http). Another site could have sent it,
  // with a ticket of its author's, so the user decides.
  route('ticket', async (view, params, signal, search) => {
    const next = search.get('next') || '#/overview';
    const onward = next.startsWith('#/login') || next.startsWith('#/ticket') ? '#/overview' : next;
    const ticket = pendingTicket;
    pendingTicket = null;
    if (!ticket) return go(onward);
    const msg = h('div', {'aria-live': 'assertive'});
    const accept = h('button', {type: 'button', class: 'primary', text: 'Sign in with the ticket'});
    accept.addEventListener('click', () => act(accept, async () => {
      fill(msg);
      try {
        await api('/_dockermand/login', {method: 'POST', json: {ticket}});
      } catch (err) {
        fill(msg, errorBox(err));
        return;
      }
      session.role = null;
      go(onward);
    }));
    const decline = h('button', {type: 'button', text: 'Not now', onclick: () => go(onward)});
    accept.setAttribute('autofocus', '');
    fill(view, h('h1', {tabindex: '-1', text: 'Sign in with a ticket?'}),
      h('p', {text: 'A page opened dockermand with a one-time sign-in ticket, and your browser did not say which page. ' +
        'Accept it only if you opened dockermand from your router’s LuCI just now: another site could send you here signed in as someone else.'}),
      msg, h('div', {class: 'toolbar'}, accept, decline));
  });
})();
