// masqdial web page: one small script, no build step. Data from /api/state, live updates
// from /events (server-sent events); every POST carries the session's CSRF token.
'use strict';
(function () {
  var S = { csrf: '', role: 'user', user: '', conns: [], progress: {}, masq: new Map(), masqAt: 0, es: null };
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function status(t) { $('#status').textContent = t; }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function dur(s) {
    if (s === null || s === undefined) return '';
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60;
    return (h ? h + 'h' : '') + (m < 10 && h ? '0' : '') + m + 'm' + (x < 10 ? '0' : '') + x + 's';
  }
  // expire as ipchains shows it: mm:ss.hh
  function expire(cs) {
    if (cs < 0) cs = 0;
    var m = Math.floor(cs / 6000), s = Math.floor(cs / 100) % 60, h = cs % 100;
    return (m < 10 ? '0' : '') + m + ':' + (s < 10 ? '0' : '') + s + '.' + (h < 10 ? '0' : '') + h;
  }
  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    body.set('csrf', S.csrf);
    return fetch(url, { method: 'POST', body: body, credentials: 'same-origin',
      headers: { 'Accept': 'application/json' } }).then(function (r) {
      if (r.status === 401) { location.href = '/'; }
      return r.text().then(function (t) { if (!r.ok) throw new Error(t.trim() || r.statusText); return t; });
    });
  }
  function say(name, line) {
    (S.progress[name] = S.progress[name] || []).push(line);
    if (S.progress[name].length > 20) S.progress[name].shift();
    var p = $('[data-connection="' + CSS.escape(name) + '"] .progress');
    if (p) p.textContent = S.progress[name].join('\n');
  }

  function renderConnections() {
    var root = $('#connections');
    root.textContent = '';
    S.conns.forEach(function (c) {
      var card = el('article', { 'class': 'card', 'data-connection': c.name, 'aria-label': 'Connection ' + c.name });
      var h = el('h3');
      var a = el('a', { href: '#details/' + encodeURIComponent(c.name) }, c.name);
      h.appendChild(a);
      h.appendChild(el('span', { 'class': 'state state-' + c.state.replace(' ', '-'), 'data-field': 'state' }, c.state));
      h.appendChild(el('span', { 'class': 'desc' }, c.description));
      card.appendChild(h);
      var dl = el('dl');
      function row(k, v, f) { if (v === '' || v === null || v === undefined) return; dl.appendChild(el('dt', null, k)); dl.appendChild(el('dd', f ? { 'data-field': f } : null, v)); }
      row('May dial', c.may_dial ? 'yes' : 'no', 'may-dial');
      row('Held by', c.holders.map(function (x) { return x.user + '@' + x.host; }).join(', ') || 'nobody', 'holders');
      row('Up for', c.uptime_s !== null ? dur(c.uptime_s) : '', 'uptime');
      row('Speed', c.speed ? c.speed + ' bit/s' : '', 'speed');
      row('Addresses', c.local ? c.local + ' → ' + c.peer + (c.dns.length ? ' (dns ' + c.dns.join(',') + ')' : '') : '', 'addresses');
      row('Bytes', c.state === 'up' ? bytes(c.bytes_in) + ' in, ' + bytes(c.bytes_out) + ' out' : '', 'bytes');
      row('Queue', c.queue, 'queue');
      row('Budget', c.budget, 'budget');
      row('Last failure', c.last_failure, 'failure');
      card.appendChild(dl);
      var act = el('div', { 'class': 'actions' });
      var busy = c.state !== 'idle' && c.state !== 'failed';
      var dial = el('button', { type: 'button', 'data-action': 'dial' }, 'Dial');
      dial.disabled = !c.may_dial;
      dial.addEventListener('click', function () {
        S.progress[c.name] = [];
        say(c.name, 'dialing ' + c.name + '…');
        post('/connections/' + encodeURIComponent(c.name) + '/dial').then(function (t) {
          try { var o = JSON.parse(t); if (o.outcome !== 'started') say(c.name, o.outcome); } catch (e) { /* plain */ }
        }).catch(function (e) { say(c.name, 'failed: ' + e.message); });
      });
      act.appendChild(dial);
      var hang = el('button', { type: 'button', 'data-action': 'hangup' }, 'Hang up');
      hang.disabled = !c.may_dial || !busy;
      hang.addEventListener('click', function () {
        post('/connections/' + encodeURIComponent(c.name) + '/hangup').then(function (t) {
          var o = JSON.parse(t);
          say(c.name, o.dropped ? 'hanging up' : 'left; still held by ' + o.remaining.join(', '));
        }).catch(function (e) { say(c.name, e.message); });
      });
      act.appendChild(hang);
      if (S.role === 'admin') {
        var force = el('button', { type: 'button', 'class': 'danger', 'data-action': 'force-hangup' }, 'Force hang-up');
        force.disabled = !busy;
        force.addEventListener('click', function () {
          var who = c.holders.map(function (x) { return x.user + '@' + x.host; }).join(', ') || 'nobody';
          if (!window.confirm('Hang up ' + c.name + ' for everyone? Held by: ' + who)) return;
          post('/connections/' + encodeURIComponent(c.name) + '/hangup', { force: '1' }).then(function () {
            say(c.name, 'forced hang-up (held by ' + who + ')');
          }).catch(function (e) { say(c.name, e.message); });
        });
        act.appendChild(force);
      }
      card.appendChild(act);
      card.appendChild(el('pre', { 'class': 'progress', 'aria-live': 'polite' }, (S.progress[c.name] || []).join('\n')));
      root.appendChild(card);
    });
  }

  function renderModems(ms) {
    var tb = $('#modems tbody');
    tb.textContent = '';
    ms.forEach(function (m) {
      var tr = el('tr', { 'data-modem': m.name });
      [m.name, m.device, m.state + (m.error ? ' (' + m.error + ')' : ''), m.connection || '', m.signal || '', m.registration || '', m.operator || '',
        m.next_probe ? new Date(m.next_probe * 1000).toLocaleTimeString() : ''].forEach(function (v) { tr.appendChild(el('td', null, v)); });
      tb.appendChild(tr);
    });
  }

  function renderFree(f) {
    var root = $('#free');
    root.textContent = '';
    ['tcp', 'udp', 'icmp'].forEach(function (p) {
      var g = el('div', { 'class': 'gauge', 'data-field': 'free-ports', 'data-proto': p });
      var id = 'free-' + p;
      g.appendChild(el('label', { 'for': id }, p.toUpperCase() + ' free'));
      var m = el('meter', { id: id, min: '0', max: String(f[p][1] || 1), value: String(f[p][0]) });
      g.appendChild(m);
      g.appendChild(el('span', null, f[p][0] + ' / ' + f[p][1]));
      root.appendChild(g);
    });
  }

  function masqRows() {
    var now = performance.now(), passed = Math.floor((now - S.masqAt) / 10);
    var q = $('#masq-filter').value.trim().toLowerCase(), key = $('#masq-sort').value;
    var rows = [];
    S.masq.forEach(function (e) {
      if (q && (e.p + ' ' + e.lan + ' ' + e.remote + ' ' + e.masq + ' ' + e.st).toLowerCase().indexOf(q) < 0) return;
      rows.push(e);
    });
    rows.sort(function (a, b) {
      var x = a[key], y = b[key];
      if (key === 'exp') { x = a.exp - (now - a.at) / 10; y = b.exp - (now - b.at) / 10; }
      return x < y ? -1 : x > y ? 1 : a.id - b.id;
    });
    void passed;
    return rows;
  }
  var MAX_ROWS = 500;
  function renderMasq() {
    var tb = $('#masq tbody'), rows = masqRows(), now = performance.now();
    tb.textContent = '';
    rows.slice(0, MAX_ROWS).forEach(function (e) {
      var tr = el('tr', { 'data-proto': e.p, 'data-id': String(e.id) });
      tr.appendChild(el('td', null, e.p.toUpperCase()));
      tr.appendChild(el('td', { 'data-field': 'expire', 'data-at': String(e.at) }, expire(Math.round(e.exp - (now - e.at) / 10))));
      tr.appendChild(el('td', null, e.lan));
      tr.appendChild(el('td', null, e.remote));
      tr.appendChild(el('td', null, e.masq));
      tr.appendChild(el('td', { 'data-field': 'tcp-state' }, e.st + (e.h ? ' [' + e.h + ']' : '')));
      tb.appendChild(tr);
    });
    $('#masq-count').textContent = rows.length + ' of ' + S.masq.size + ' entries' + (rows.length > MAX_ROWS ? ' (first ' + MAX_ROWS + ' shown)' : '');
  }
  // Expire timers count down in the page, every second, without a reload.
  function tick() {
    var now = performance.now();
    document.querySelectorAll('#masq td[data-field=expire]').forEach(function (td) {
      var tr = td.parentNode, e = S.masq.get(Number(tr.getAttribute('data-id')));
      if (e) td.textContent = expire(Math.round(e.exp - (now - e.at) / 10));
    });
  }
  var masqDirty = false;
  function masqChanged() {
    if (masqDirty) return;
    masqDirty = true;
    setTimeout(function () { masqDirty = false; if (!$('#view-masq').hidden) renderMasq(); }, 250);
  }
  function putEntry(e) { e.at = performance.now(); S.masq.set(e.id, e); }

  function showDetails(name) {
    fetch('/api/connections/' + encodeURIComponent(name), { credentials: 'same-origin' }).then(function (r) {
      return r.ok ? r.json() : r.text().then(function (t) { throw new Error(t); });
    }).then(function (d) {
      var c = d.connection, lines = [];
      lines.push(c.name + ': ' + c.state + (c.description ? ' — ' + c.description : ''));
      lines.push('numbers: ' + d.numbers.join(', ') + '   modems: ' + d.modems.join(', '));
      if (c.queue) lines.push('queue: ' + c.queue);
      if (c.budget) lines.push('budget: ' + c.budget);
      lines.push('', 'PPP options (negotiated, with refusals):', d.ppp || '(no session yet)');
      if (d.ppp_stats) lines.push('frames: ' + d.ppp_stats);
      lines.push('', 'Transcript:');
      d.transcript.forEach(function (t) { lines.push(t); });
      $('#details').textContent = lines.join('\n');
    }).catch(function (e) { $('#details').textContent = e.message; });
  }
  function loadChains() {
    fetch('/api/chains', { credentials: 'same-origin' }).then(function (r) { return r.text(); }).then(function (t) { $('#chains').textContent = t; });
  }
  function loadSessions() {
    fetch('/api/sessions', { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (d) {
      var tb = $('#sessions tbody');
      tb.textContent = '';
      d.sessions.forEach(function (s) {
        var tr = el('tr', { 'data-session': s.id });
        [s.id + (s.mine ? ' (this page)' : ''), s.user, s.role, s.peer || '', new Date(s.expires * 1000).toLocaleString()].forEach(function (v) { tr.appendChild(el('td', null, v)); });
        var td = el('td'), b = el('button', { type: 'button', 'data-action': 'revoke' }, 'Revoke');
        b.addEventListener('click', function () {
          post('/sessions/' + encodeURIComponent(s.id) + '/revoke').then(loadSessions).catch(function (e) { status(e.message); });
        });
        td.appendChild(b);
        tr.appendChild(td);
        tb.appendChild(tr);
      });
    });
  }

  function route() {
    var h = location.hash.replace(/^#/, '') || 'connections', name = null;
    if (h.indexOf('details/') === 0) { name = decodeURIComponent(h.slice(8)); h = 'details'; }
    ['connections', 'details', 'masq', 'modems', 'chains', 'sessions', 'log'].forEach(function (v) {
      $('#view-' + v).hidden = v !== h;
    });
    if (h === 'details' && name) showDetails(name);
    if (h === 'masq') renderMasq();
    if (h === 'chains') loadChains();
    if (h === 'sessions') loadSessions();
  }

  function connect() {
    var es = new EventSource('/events');
    S.es = es;
    es.addEventListener('links', function (ev) {
      var d = JSON.parse(ev.data);
      S.conns = d.connections;
      renderConnections();
      renderModems(d.modems);
      status('live');
      // First live view drawn: the figure "time to interactive" (printed by the browser test).
      if (window.masqdialInteractive === undefined) window.masqdialInteractive = performance.now();
    });
    es.addEventListener('progress', function (ev) {
      var d = JSON.parse(ev.data);
      say(d.connection, d.line);
    });
    es.addEventListener('masq-reset', function (ev) {
      var d = JSON.parse(ev.data);
      S.masq = new Map();
      d.entries.forEach(putEntry);
      renderFree(d.free);
      masqChanged();
    });
    es.addEventListener('masq', function (ev) {
      var d = JSON.parse(ev.data);
      d.up.forEach(putEntry);
      d.rm.forEach(function (id) { S.masq.delete(id); });
      renderFree(d.free);
      masqChanged();
    });
    es.addEventListener('log', function (ev) {
      var d = JSON.parse(ev.data), pre = $('#log');
      pre.textContent += new Date(d.at * 1000).toLocaleTimeString() + ' ' + d.line + '\n';
      if (pre.textContent.length > 200000) pre.textContent = pre.textContent.slice(-100000);
    });
    es.addEventListener('bye', function () {
      es.close();
      status('session ended; log in again');
      location.href = '/';
    });
    es.onerror = function () {
      status('connection lost; retrying…');
      // A revoked or expired session answers 401: back to the login form.
      fetch('/api/state', { credentials: 'same-origin' }).then(function (r) { if (r.status === 401) { es.close(); location.href = '/'; } });
    };
  }

  function start() {
    fetch('/api/state', { credentials: 'same-origin' }).then(function (r) {
      if (r.status === 401) { location.href = '/'; throw new Error('logged out'); }
      return r.json();
    }).then(function (d) {
      S.csrf = d.csrf; S.role = d.role; S.user = d.user; S.conns = d.connections;
      $('#logout input[name=csrf]').value = d.csrf;
      $('#who').textContent = d.user + ' (' + d.role + ')';
      if (d.role === 'admin') document.body.classList.add('is-admin');
      renderConnections();
      renderModems(d.modems);
      route();
      connect();
    }).catch(function (e) { status(e.message); });
    window.addEventListener('hashchange', route);
    $('#masq-filter').addEventListener('input', renderMasq);
    $('#masq-sort').addEventListener('change', renderMasq);
    setInterval(tick, 1000);
  }
  document.addEventListener('DOMContentLoaded', start);
})();
