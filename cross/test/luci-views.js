// Runs the LuCI views of luci-app-dockermand under node, with small
// stand-ins for the LuCI classes they use (view, form, uci, E, _, L), the
// way LuCI's loader runs a view: its source as the body of a function whose
// `return` is the view.
//
//   node luci-views.js VIEW_DIR
//
// Prints what failed and exits non-zero on the first failure.
'use strict';
const fs = require('fs');
const path = require('path');
const assert = require('assert');

const dir = process.argv[2];

String.prototype.format = function(...args) {
	let i = 0;
	return this.replace(/%s/g, () => String(args[i++]));
};

function element(tag, attrs, children) {
	if (Array.isArray(attrs) || typeof attrs === 'string') {
		children = attrs;
		attrs = {};
	}
	attrs = attrs || {};
	return {
		tag, attrs, dataset: {}, disabled: !!attrs.disabled,
		children: [].concat(children == null ? [] : children),
		get textContent() { return this.children.map(c => typeof c === 'string' ? c : c.textContent).join(''); },
		set textContent(text) { this.children = [text]; },
		replaceChildren(...c) { this.children = c; }
	};
}

function load(name, globals) {
	const source = fs.readFileSync(path.join(dir, name + '.js'), 'utf8');
	const names = Object.keys(globals);
	return new Function(...names, source)(...names.map(n => globals[n]));
}

const view = { extend: proto => proto };
const translate = s => s;
const settle = () => new Promise(resolve => setImmediate(resolve));

async function dockerPage(reply, hostname = '192.168.1.1') {
	const calls = [];
	const opened = [];
	const page = load('docker', {
		view, ui: {}, E: element, _: translate,
		uci: { load: () => Promise.resolve(), get: (c, s, o) => (c === 'dockermand' && s === 'main' && o === 'port') ? '2376' : null },
		L: { env: { sessionid: '0123456789abcdef0123456789abcdef' } },
		window: { location: { hostname, origin: 'http://' + hostname },
			open: (...a) => opened.push(a) },
		fetch: (url, init) => {
			calls.push([url, init]);
			return Promise.resolve(reply);
		}
	});
	await page.load();
	const root = page.render();
	await settle();
	await settle();
	const [status, button] = root.children[1].children;
	return { page, calls, opened, status, button };
}

async function main() {
	// Success: a POST with the session as Bearer, the ticket in the URL.
	let r = await dockerPage({ ok: true, status: 200, json: () => Promise.resolve({ ticket: 'ab/cd', expires_in: 30 }) });
	assert.strictEqual(r.calls.length, 1, 'one ticket request');
	const [url, init] = r.calls[0];
	assert.strictEqual(url, 'http://192.168.1.1:2376/_dockermand/ticket');
	assert.strictEqual(init.method, 'POST');
	assert.strictEqual(init.mode, 'cors');
	assert.strictEqual(init.credentials, 'omit');
	assert.deepStrictEqual(init.headers, { 'Authorization': 'Bearer 0123456789abcdef0123456789abcdef' });
	assert.strictEqual(r.button.disabled, false, 'button enabled after the ticket');
	assert.strictEqual(r.button.dataset.url, 'http://192.168.1.1:2376/_dockermand/ui/?ticket=ab%2Fcd');
	r.button.attrs.click();
	assert.deepStrictEqual(r.opened, [['http://192.168.1.1:2376/_dockermand/ui/?ticket=ab%2Fcd', '_blank', 'noopener']]);
	assert.strictEqual(r.page.handleSaveApply, null, 'no save buttons on the Docker page');

	// An IPv6 address: location.hostname already has its brackets.
	r = await dockerPage({ ok: true, status: 200, json: () => Promise.resolve({ ticket: 't', expires_in: 30 }) }, '[fd00::1]');
	assert.strictEqual(r.calls[0][0], 'http://[fd00::1]:2376/_dockermand/ticket');

	// Refused session: the reason and the fix are shown, nothing opens.
	r = await dockerPage({ ok: false, status: 403, json: () => Promise.resolve({ message: 'cross-site request refused' }) });
	assert.strictEqual(r.button.disabled, true);
	assert.match(r.status.textContent, /cross-site request refused/);
	assert.match(r.status.textContent, /http:\/\/192\.168\.1\.1 under Settings/);

	// Settings: every field typed or validated, validators as the daemon judges.
	const options = {};
	class Node {
		constructor(...args) { this.args = args; this.children = []; }
		tab() {}
		option(cls, name) { const o = new cls(name); this.children.push(o); options[name] = options[name] || o; return o; }
		taboption(tab, cls, name) { return this.option(cls, name); }
		section(cls, type) { const s = new cls(type); this.children.push(s); return s; }
		value() {}
		render() { return this; }
	}
	const form = {};
	for (const k of ['Map', 'NamedSection', 'GridSection', 'Flag', 'Value', 'ListValue', 'DynamicList', 'MultiValue'])
		form[k] = class extends Node {};
	const settings = load('settings', { view, form, E: element, _: translate, window: { location: { origin: 'http://192.168.1.1' } } });
	const map = settings.render();
	assert.strictEqual(map.args[0], 'dockermand');
	for (const [name, o] of Object.entries(options)) {
		if (o instanceof form.Flag || o instanceof form.ListValue || o instanceof form.MultiValue)
			continue;
		assert.ok(o.datatype || o.validate || ['role', 'name'].includes(name), `${name} is neither typed nor validated`);
	}
	const ok = (name, value) => options[name].validate('s', value) === true;
	assert.ok(ok('listen', '127.0.0.1:2375') && ok('listen', '[::1]:2375') && ok('listen', 'unix:/var/run/dockermand/d.sock'));
	assert.ok(!ok('listen', 'lan:2375'), 'listen lan:2375 refused');
	assert.ok(ok('bind_dir', '/opt/docker') && !ok('bind_dir', 'opt/docker') && !ok('bind_dir', '/opt/../etc'));
	assert.ok(ok('cors_origin', 'https://192.168.1.1:8443') && !ok('cors_origin', 'https://router/'));
	assert.ok(ok('sha256', 'A'.repeat(64)) && !ok('sha256', 'abc'));
	assert.ok(ok('password', 'pbkdf2-sha256$20000$c2FsdA==$aGFzaA==') && !ok('password', 'hunter2'));
	assert.ok(ok('upstream', 'unix:///var/run/docker.sock') && ok('upstream', 'tcp://10.0.0.2:2375') && !ok('upstream', 'docker'));
	assert.strictEqual(options.max_connections.datatype, 'range(1,65536)');
	assert.strictEqual(options.port.datatype, 'port');
}

main().then(() => process.exit(0), err => {
	console.error(err.stack || String(err));
	process.exit(1);
});
