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
            localStorage.setItem(BINDING, (await api('/_dockermand/login', {method: 'POST', json: body})).binding);
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
})();
