'use strict';
'require view';
'require form';

// Checks the daemon would otherwise refuse at reload; the init script and
// `dockermand --check-config` remain the authority.
const LISTEN_RE = /^(unix:\/.+|(\d{1,3}\.){3}\d{1,3}:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$/;
const ORIGIN_RE = /^https?:\/\/[^\/\s]+$/;
const HEX64_RE = /^[0-9A-Fa-f]{64}$/;
const PASSWORD_RE = /^pbkdf2-sha256\$\d+\$[^$]+\$[^$]+$/;
const CLASSES = ['read', 'logs', 'files', 'exec', 'write', 'build', 'system'];
const BOOLEAN_POLICY = [
	['allow_privileged', _('Allow privileged containers')],
	['allow_devices', _('Allow host devices')],
	['allow_host_namespaces', _('Allow host PID/IPC/UTS namespaces')],
	['allow_host_network', _('Allow host networking')],
	['allow_volumes_from', _('Allow volumes from other containers')],
	['allow_unconfined', _('Allow unconfined seccomp/AppArmor')]
];

function matches(re, message) {
	return (section_id, value) => (value == null || value === '' || re.test(value)) ? true : message;
}

function absolutePath(section_id, value) {
	if (value == null || value === '')
		return true;
	return (value[0] === '/' && !/(^|\/)\.\.?(\/|$)/.test(value) && !/\/\/|.\/$/.test(value))
		? true : _('An absolute path without . or .. parts');
}

function addPolicy(s, tab) {
	let o = s.taboption(tab, form.DynamicList, 'bind_dir', _('Bind-mountable host directories'));
	o.validate = absolutePath;
	o = s.taboption(tab, form.DynamicList, 'cap_add_allow', _('Capabilities containers may add'));
	o.validate = matches(/^(CAP_)?[A-Za-z_]+$/, _('A capability name such as NET_ADMIN'));
	o = s.taboption(tab, form.Value, 'max_body_bytes', _('Largest checked request body (bytes)'));
	o.datatype = 'range(1024,67108864)';
	o.optional = true;
	for (const [name, title] of BOOLEAN_POLICY) {
		o = s.taboption(tab, form.Flag, name, title);
		o.optional = true;
	}
}

/* The role a token or user stands for: a built-in one or a custom role. */
function roleOption(section) {
	const o = section.option(form.Value, 'role', _('Role'));
	o.value('read');
	o.value('operator');
	o.value('admin');
	o.rmempty = false;
	return o;
}

return view.extend({
	render: function() {
		const m = new form.Map('dockermand', _('dockermand'),
			_('Settings of the gateway to the Docker Engine API. Saving applies them with a reload; a setting the daemon refuses is logged (<code>logread -e dockermand</code>) and the last good configuration stays in use.'));

		let s = m.section(form.NamedSection, 'main', 'dockermand');
		s.tab('general', _('General'));
		s.tab('access', _('Access'));
		s.tab('policy', _('Policy'));
		s.tab('limits', _('Limits'));

		let o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;

		o = s.taboption('general', form.DynamicList, 'listen', _('Listen addresses'),
			_('IP:PORT, [IPv6]:PORT or unix:/path'));
		o.validate = matches(LISTEN_RE, _('IP:PORT, [IPv6]:PORT or unix:/path'));

		o = s.taboption('general', form.DynamicList, 'interface', _('Listen on networks'),
			_('Their IPv4 addresses, followed as they change'));
		o.datatype = 'uciname';

		o = s.taboption('general', form.Value, 'port', _('Port on those networks'));
		o.datatype = 'port';
		o.placeholder = '2375';

		o = s.taboption('general', form.Value, 'upstream', _('Docker daemon'),
			_('unix:///var/run/docker.sock, or tcp://HOST:PORT of another host'));
		o.validate = matches(/^(unix:\/\/?\/.+|tcp:\/\/[^\/\s]+:\d{1,5})$/, _('unix:///path or tcp://HOST:PORT'));
		o.placeholder = 'unix:///var/run/docker.sock';

		o = s.taboption('general', form.ListValue, 'log_level', _('Log level'));
		for (const level of ['error', 'warn', 'info', 'debug'])
			o.value(level);
		o.default = 'info';

		o = s.taboption('access', form.Flag, 'rpcd', _('Router logins'),
			_('LuCI sessions may use Docker according to the luci-app-dockerman ACL'));
		o.default = '1';
		o = s.taboption('access', form.Value, 'session_ttl', _('Session lifetime (s)'));
		o.datatype = 'range(1,31536000)';
		o.placeholder = '3600';
		o = s.taboption('access', form.DynamicList, 'cors_origin', _('Allowed web origins'),
			_('The Docker page needs this router\'s LuCI origin: %s').format(window.location.origin));
		o.validate = matches(ORIGIN_RE, _('scheme://host[:port], nothing after'));
		o = s.taboption('access', form.DynamicList, 'allowed_host', _('Allowed Host names'));
		o.datatype = 'hostname';
		o = s.taboption('access', form.Flag, 'insecure', _('Allow unauthenticated network access'),
			_('Anyone reaching the port then controls the router. Keep it off.'));

		addPolicy(s, 'policy');
		o = s.taboption('policy', form.Flag, 'dry_run', _('Dry run'), _('Log denials but let them through'));

		const numbers = [
			['max_connections', _('Connections at once'), 'range(1,65536)', '256'],
			['max_consoles', _('Consoles at once'), 'range(1,4096)', '16'],
			['shutdown_grace', _('Shutdown grace (s)'), 'range(0,3600)', '10'],
			['idle_timeout', _('Keep-alive timeout (s)'), 'range(1,86400)', '60'],
			['header_timeout', _('Request head timeout (s)'), 'range(1,86400)', '10']
		];
		for (const [name, title, datatype, placeholder] of numbers) {
			o = s.taboption('limits', form.Value, name, title);
			o.datatype = datatype;
			o.placeholder = placeholder;
		}

		s = m.section(form.GridSection, 'token', _('API tokens'),
			_('Only a token\'s SHA-256 is stored. Make one on the router: <code>TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d \'=+/\'); dockermand --hash-token "$TOKEN"</code>'));
		s.addremove = true;
		s.anonymous = false;
		o = s.option(form.Value, 'sha256', _('SHA-256'));
		o.validate = matches(HEX64_RE, _('64 hex digits'));
		o.rmempty = false;
		roleOption(s);

		s = m.section(form.GridSection, 'user', _('Users'),
			_('Accounts of dockermand\'s own login page. Hash a password on the router with <code>dockermand --hash-password</code> (it reads the password on stdin).'));
		s.addremove = true;
		s.anonymous = true;
		o = s.option(form.Value, 'name', _('Name'));
		o.rmempty = false;
		o = s.option(form.Value, 'password', _('Password hash'));
		o.validate = matches(PASSWORD_RE, _('The output of dockermand --hash-password'));
		o.rmempty = false;
		roleOption(s);

		s = m.section(form.GridSection, 'role', _('Roles'));
		s.addremove = true;
		s.anonymous = false;
		s.tab('classes', _('Requests'));
		s.tab('policy', _('Policy'));
		o = s.taboption('classes', form.MultiValue, 'class', _('Request classes'));
		for (const c of CLASSES)
			o.value(c);
		o.rmempty = false;
		o = s.taboption('classes', form.DynamicList, 'method', _('HTTP methods'));
		o.validate = matches(/^[A-Za-z]+$/, _('A method such as GET'));
		o.modalonly = true;
		o = s.taboption('classes', form.Flag, 'check_bodies', _('Check request bodies'));
		o.default = '1';
		o.modalonly = true;
		addPolicy(s, 'policy');

		return m.render();
	}
});
