'use strict';
'require view';
'require uci';
'require ui';

// The gateway as this browser reaches it: the router's host name on the
// port dockermand listens on for the LAN (an IPv6 hostname comes with its
// brackets).
function gatewayUrl(port) {
	return 'http://' + window.location.hostname + ':' + (port || '2375');
}

// Asks dockermand for a one-time ticket, authenticated by the LuCI session
// (its cookie never reaches another port, so the id goes as a Bearer token).
function requestTicket(base, sessionId) {
	return fetch(base + '/_dockermand/ticket', {
		method: 'POST',
		mode: 'cors',
		credentials: 'omit',
		headers: { 'Authorization': 'Bearer ' + sessionId }
	}).then(reply => reply.json().catch(() => ({})).then(body => {
		if (!reply.ok)
			throw new Error(body.message || ('HTTP ' + reply.status));
		if (typeof body.ticket !== 'string')
			throw new Error(_('dockermand sent no ticket'));
		return body.ticket;
	}));
}

return view.extend({
	load: function() {
		return uci.load('dockermand');
	},

	render: function() {
		const base = gatewayUrl(uci.get('dockermand', 'main', 'port'));
		const status = E('p', {}, _('Signing in to dockermand at %s…').format(base));
		const open = E('button', {
			'class': 'cbi-button cbi-button-action',
			'disabled': true,
			'click': () => window.open(open.dataset.url, '_blank', 'noopener')
		}, _('Open in a new window'));

		requestTicket(base, L.env.sessionid).then(ticket => {
			// The web UI takes the ticket, signs this browser in with it and
			// drops it from the address bar.
			open.dataset.url = base + '/_dockermand/ui/?ticket=' + encodeURIComponent(ticket);
			open.disabled = false;
			status.textContent = _('Signed in with your LuCI session.');
		}).catch(err => {
			status.replaceChildren(E('span', { 'class': 'alert-message warning' }, [
				_('dockermand refused the LuCI session: %s.').format(err.message), ' ',
				_('Check that dockermand runs with router logins on, listens on this network, and lists %s under Settings → Access → Allowed web origins.').format(window.location.origin)
			]));
		});

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, _('Docker')),
			E('div', { 'class': 'cbi-section' }, [status, open])
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
