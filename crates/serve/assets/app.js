// labwire's page: the deployed labs, one lab drawn as a graph on a canvas (laid out once by a
// force layout, then panned and zoomed), live from the lab's event stream; node and link details,
// node actions and a terminal. Also runs with no server, from window.LABWIRE_STATIC (the file
// `labwire graph --html` writes): then there is no live state, no action and no terminal.
(function () {
  'use strict';
  const STATIC = window.LABWIRE_STATIC || null;
  const $ = (id) => document.getElementById(id);

  // The API token, when the server wants one: from the address (#token=…), kept for the tab.
  const token = (() => {
    const m = /token=([^&]+)/.exec(location.hash);
    if (m) sessionStorage.setItem('labwire-token', m[1]);
    return sessionStorage.getItem('labwire-token') || '';
  })();
  const withToken = (url) => token ? url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : url;

  async function api(method, path, body) {
    const headers = { 'Accept': 'application/json' };
    if (token) headers['Authorization'] = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch('/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error((data && data.message) || r.status + ' ' + r.statusText);
    return data;
  }

  const COLORS = { running: '#16a34a', stopped: '#dc2626', exited: '#dc2626', dead: '#dc2626', restarted: '#2563eb', planned: '#6b7280', none: '#94a3b8', external: '#cbd5e1' };
  // How long a node restarted by a command shows as such: a restart takes a fraction of a second,
  // far less than the state the page reads once a second would ever show.
  const FLASH_MS = 2500;
  const colorOf = (state) => COLORS[state] || '#d97706';

  // What is drawn.
  let labName = null;
  let view = null;            // the LabView
  let nodes = new Map();      // name → { n: NodeView | null, x, y, color }
  let links = [];             // LinkView
  let selected = null;        // { node } or { link }
  const cam = { x: 0, y: 0, scale: 1 };
  const canvas = $('graph');
  const ctx = canvas.getContext('2d');

  // ---- layout: every vertex placed once; vertices that appear later join near a neighbour ----
  function layout(fresh) {
    const list = [...nodes.values()];
    const n = list.length;
    if (!n || !fresh.length) return;
    const started = performance.now();
    const K = 90;
    const index = new Map(list.map((v, i) => [v, i]));
    const adj = list.map(() => []);
    for (const l of links) {
      const a = nodes.get(l.a.node), b = nodes.get(l.b.node);
      if (a && b && a !== b) { adj[index.get(a)].push(index.get(b)); adj[index.get(b)].push(index.get(a)); }
    }
    const R = Math.sqrt(n) * K * 0.6;
    fresh.forEach((v, i) => {
      const nb = adj[index.get(v)].map((j) => list[j]).find((w) => w.x !== undefined && !fresh.includes(w));
      if (nb) { v.x = nb.x + (Math.random() - 0.5) * K; v.y = nb.y + (Math.random() - 0.5) * K; }
      else { const t = 2 * Math.PI * i / fresh.length; v.x = R * Math.cos(t) + Math.random(); v.y = R * Math.sin(t) + Math.random(); }
    });
    const moving = new Set(fresh.length === n ? list : fresh);
    const iterations = n > 2000 ? 120 : 250;
    let temp = R / 4 + K;
    const cell = 2 * K;
    for (let it = 0; it < iterations; it++) {
      const grid = new Map();
      list.forEach((v, i) => {
        const key = Math.floor(v.x / cell) + ',' + Math.floor(v.y / cell);
        if (!grid.has(key)) grid.set(key, []);
        grid.get(key).push(i);
      });
      const dx = new Float64Array(n), dy = new Float64Array(n);
      list.forEach((v, i) => {
        if (!moving.has(v)) return;
        const cx = Math.floor(v.x / cell), cy = Math.floor(v.y / cell);
        for (let gx = cx - 1; gx <= cx + 1; gx++) for (let gy = cy - 1; gy <= cy + 1; gy++) {
          for (const j of grid.get(gx + ',' + gy) || []) {
            if (j === i) continue;
            const w = list[j];
            let ex = v.x - w.x, ey = v.y - w.y;
            let d2 = ex * ex + ey * ey;
            if (d2 < 0.01) { ex = Math.random() - 0.5; ey = Math.random() - 0.5; d2 = 0.01; }
            const f = K * K / d2;
            dx[i] += ex * f; dy[i] += ey * f;
          }
        }
        for (const j of adj[i]) {
          const w = list[j];
          const ex = v.x - w.x, ey = v.y - w.y;
          const d = Math.sqrt(ex * ex + ey * ey) || 0.1;
          dx[i] -= ex * d / K; dy[i] -= ey * d / K;
        }
        // A weak pull to the centre keeps separate components together.
        dx[i] -= v.x * 0.01; dy[i] -= v.y * 0.01;
      });
      list.forEach((v, i) => {
        if (!moving.has(v)) return;
        const d = Math.sqrt(dx[i] * dx[i] + dy[i] * dy[i]) || 1;
        const step = Math.min(d, temp);
        v.x += dx[i] / d * step; v.y += dy[i] / d * step;
      });
      temp = Math.max(1, temp * 0.97);
    }
    timing.layoutMs = performance.now() - started;
  }

  function fit() {
    if (!nodes.size) return;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const v of nodes.values()) { x0 = Math.min(x0, v.x); y0 = Math.min(y0, v.y); x1 = Math.max(x1, v.x); y1 = Math.max(y1, v.y); }
    const w = canvas.clientWidth, h = canvas.clientHeight;
    cam.scale = Math.min(1.2, Math.min(w / (x1 - x0 + 120), h / (y1 - y0 + 120)));
    cam.x = w / 2 - (x0 + x1) / 2 * cam.scale;
    cam.y = h / 2 - (y0 + y1) / 2 * cam.scale;
  }

  // ---- the lab's data into vertices ----
  function show(v) {
    const first = !view || view.name !== v.name;
    view = v;
    links = v.links;
    const seen = new Set();
    const fresh = [];
    const put = (name, n) => {
      seen.add(name);
      let vx = nodes.get(name);
      if (!vx) { vx = { name }; nodes.set(name, vx); fresh.push(vx); }
      vx.n = n;
      vx.color = flashing(vx) ? vx.flash : colorOf(n ? n.state : 'external');
    };
    for (const n of v.nodes) put(n.name, n);
    for (const l of v.links) if (!seen.has(l.b.node)) put(l.b.node, null);
    for (const k of [...nodes.keys()]) if (!seen.has(k)) nodes.delete(k);
    layout(fresh);
    if (first) fit();
    $('title').textContent = v.name + (v.topology ? ' — ' + v.topology : '') + (v.state === 'planned' ? ' (from the topology file)' : '');
    if (selected && selected.node && !nodes.has(selected.node)) selected = null;
    details();
    redraw();
  }

  // ---- drawing ----
  let pending = false;
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(draw); } }
  const timing = { layoutMs: 0, drawMs: 0 };
  function draw() {
    pending = false;
    const started = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== w * dpr || canvas.height !== h * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.setTransform(dpr * cam.scale, 0, 0, dpr * cam.scale, dpr * cam.x, dpr * cam.y);
    const big = nodes.size > 300;
    const labels = cam.scale > (big ? 0.9 : 0.35);
    for (const l of links) {
      const a = nodes.get(l.a.node), b = nodes.get(l.b.node);
      if (!a || !b) continue;
      const sel = selected && selected.link === l.id;
      ctx.strokeStyle = l.state === 'down' ? '#dc2626' : (l.impairments && l.impairments.length ? '#d97706' : '#9ca3af');
      ctx.lineWidth = (sel ? 4 : 1.5) / Math.max(cam.scale, 0.3);
      ctx.setLineDash(l.state === 'down' ? [6, 4] : []);
      ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
      const len = Math.hypot(b.x - a.x, b.y - a.y);
      if (labels && cam.scale > 0.6 && len > 90) {
        // Each interface name just outside its own node, along the link.
        const ux = (b.x - a.x) / len, uy = (b.y - a.y) / len, d = 34;
        ctx.fillStyle = '#374151'; ctx.font = '10px sans-serif'; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
        ctx.fillText(l.a.interface, a.x + ux * d, a.y + uy * d);
        ctx.fillText(l.b.interface, b.x - ux * d, b.y - uy * d);
        ctx.textBaseline = 'alphabetic';
      }
    }
    ctx.setLineDash([]);
    for (const v of nodes.values()) {
      const r = v.n ? 14 : 9;
      ctx.fillStyle = v.color;
      ctx.beginPath();
      const rt = v.n ? v.n.runtime : '';
      if (rt === 'docker' || rt === 'podman') ctx.rect(v.x - r, v.y - r, 2 * r, 2 * r);
      else if (rt === 'vm') { ctx.moveTo(v.x, v.y - r * 1.3); ctx.lineTo(v.x + r * 1.3, v.y); ctx.lineTo(v.x, v.y + r * 1.3); ctx.lineTo(v.x - r * 1.3, v.y); ctx.closePath(); }
      else ctx.arc(v.x, v.y, r, 0, 2 * Math.PI);
      ctx.fill();
      if (selected && selected.node === v.name) { ctx.strokeStyle = '#2563eb'; ctx.lineWidth = 3 / cam.scale; ctx.stroke(); }
      if (labels) {
        ctx.fillStyle = '#111'; ctx.font = '12px sans-serif'; ctx.textAlign = 'center';
        ctx.fillText(v.name, v.x, v.y + r + 13);
        if (v.n && cam.scale > 0.7) { ctx.fillStyle = '#6b7280'; ctx.font = '10px sans-serif'; ctx.fillText(v.n.kind, v.x, v.y + r + 25); }
      }
    }
    timing.drawMs = performance.now() - started;
  }

  // ---- pointer: pan, zoom, pick ----
  const toWorld = (px, py) => [(px - cam.x) / cam.scale, (py - cam.y) / cam.scale];
  function pick(px, py) {
    const [x, y] = toWorld(px, py);
    let best = null, bd = (18 / Math.min(cam.scale, 1)) ** 2;
    for (const v of nodes.values()) { const d = (v.x - x) ** 2 + (v.y - y) ** 2; if (d < bd) { bd = d; best = { node: v.name }; } }
    if (best) return best;
    let ld = 6 / cam.scale;
    for (const l of links) {
      const a = nodes.get(l.a.node), b = nodes.get(l.b.node);
      if (!a || !b) continue;
      const vx = b.x - a.x, vy = b.y - a.y, len = vx * vx + vy * vy || 1;
      const t = Math.max(0, Math.min(1, ((x - a.x) * vx + (y - a.y) * vy) / len));
      const d = Math.hypot(a.x + t * vx - x, a.y + t * vy - y);
      if (d < ld) { ld = d; best = { link: l.id }; }
    }
    return best;
  }
  let drag = null;
  canvas.addEventListener('mousedown', (e) => { drag = { x: e.clientX, y: e.clientY, cx: cam.x, cy: cam.y, moved: false }; });
  window.addEventListener('mousemove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    cam.x = drag.cx + dx; cam.y = drag.cy + dy; redraw();
  });
  window.addEventListener('mouseup', (e) => {
    if (drag && !drag.moved) {
      const r = canvas.getBoundingClientRect();
      selected = pick(e.clientX - r.left, e.clientY - r.top);
      details(); redraw();
    }
    drag = null;
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const f = Math.exp(-e.deltaY * 0.0015);
    cam.x = px - (px - cam.x) * f; cam.y = py - (py - cam.y) * f; cam.scale *= f; redraw();
  }, { passive: false });
  window.addEventListener('resize', redraw);

  // ---- details ----
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
  const rows = (pairs) => '<table>' + pairs.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('') + '</table>';
  function details() {
    const el = $('details');
    if (!selected) { el.innerHTML = '<p class="hint">Click a node or a link.</p>'; return; }
    if (selected.node) {
      const v = nodes.get(selected.node);
      if (!v) { el.innerHTML = ''; return; }
      if (!v.n) { el.innerHTML = `<h2>${esc(v.name)}</h2><p class="hint">An end outside the lab.</p>`; return; }
      const n = v.n;
      el.innerHTML = `<h2 id="node-title">${esc(n.name)}</h2>` + rows([
        ['state', n.state], ['status', n.status || '—'], ['kind', n.kind], ['runtime', n.runtime], ['image', n.image || '(host file system)'],
        ['group', n.group || '—'], ['long name', n.long_name], ['mgmt IPv4', n.mgmt_ipv4 || '—'], ['mgmt IPv6', n.mgmt_ipv6 || '—'],
        ['pid', n.pid || '—'], ['interfaces', n.interfaces.join(', ') || '—']]) +
        (STATIC ? '<p class="hint">A static view: no actions.</p>' :
          '<div><button id="btn-terminal">Terminal</button><button data-act="restart">Restart</button><button data-act="stop">Stop</button><button data-act="start">Start</button></div><p id="action-result"></p>');
      if (!STATIC) {
        $('btn-terminal').onclick = () => openTerminal(n.name, n.runtime);
        el.querySelectorAll('button[data-act]').forEach((b) => b.onclick = async () => {
          const out = $('action-result');
          out.className = ''; out.textContent = b.dataset.act + '…';
          try { await api('POST', `/labs/${encodeURIComponent(labName)}/nodes/${encodeURIComponent(n.name)}/${b.dataset.act}`); out.textContent = 'done'; refresh(); }
          catch (e) { out.className = 'error'; out.textContent = e.message; }
        });
      }
    } else {
      const l = links.find((k) => k.id === selected.link);
      if (!l) { el.innerHTML = ''; return; }
      el.innerHTML = `<h2>link ${esc(l.a.node)}:${esc(l.a.interface)} — ${esc(l.b.node)}:${esc(l.b.interface)}</h2>` + rows([
        ['kind', l.kind], ['state', l.state], ['MTU', l.mtu], ['end A', l.a.node + ' ' + l.a.interface], ['end B', l.b.node + ' ' + l.b.interface],
        ['impairments', (l.impairments || []).join(', ') || 'none']]);
    }
  }

  // ---- terminal: line input, output with escape sequences taken out ----
  let sock = null;
  const decoder = new TextDecoder();
  function termWrite(text) {
    const out = $('term-out');
    text = text.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '').replace(/\x1b[()][0-9A-B]/g, '').replace(/\r\n/g, '\n').replace(/\r/g, '');
    let cur = out.textContent;
    for (const ch of text) { if (ch === '\b') cur = cur.slice(0, -1); else if (ch !== '\x07') cur += ch; }
    out.textContent = cur.slice(-200000);
    out.scrollTop = out.scrollHeight;
  }
  function openTerminal(node, runtime) {
    if (sock) sock.close();
    $('terminal').hidden = false;
    $('term-title').textContent = (runtime === 'vm' ? 'console of ' : 'shell in ') + node;
    $('term-out').textContent = '';
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    sock = new WebSocket(withToken(`${proto}//${location.host}/api/v1/labs/${encodeURIComponent(labName)}/nodes/${encodeURIComponent(node)}/terminal`));
    sock.binaryType = 'arraybuffer';
    sock.onopen = () => sock.send(JSON.stringify({ rows: 40, cols: 100 }));
    sock.onmessage = (m) => termWrite(typeof m.data === 'string' ? m.data : decoder.decode(m.data, { stream: true }));
    sock.onclose = () => termWrite('\n[closed]\n');
    $('term-in').focus();
  }
  $('term-in').addEventListener('keydown', (e) => {
    if (!sock || sock.readyState !== 1) return;
    const send = (s) => sock.send(new TextEncoder().encode(s));
    if (e.key === 'Enter') { send(e.target.value + '\n'); e.target.value = ''; }
    else if (e.ctrlKey && e.key === 'c') { send('\x03'); }
    else if (e.ctrlKey && e.key === 'd') { send('\x04'); }
  });
  $('term-close').onclick = () => { if (sock) sock.close(); sock = null; $('terminal').hidden = true; };

  // ---- a node's state from the lab's own event records, at once ----
  const flashing = (vx) => vx.flash && vx.flashUntil > performance.now();
  function onRecord(data) {
    let r;
    try { r = JSON.parse(data); } catch (e) { return; }
    timing.lastRecord = { event: r.event, node: r.node || null, endpoint: r.endpoint || null, at: Date.now() };
    const vx = r.node && nodes.get(r.node);
    if (!vx) return;
    const state = { 'node-stopped': 'stopped', 'node-started': 'running', 'node-restarted': 'restarted' }[r.event];
    if (!state) return;
    if (state === 'restarted') {
      vx.flash = COLORS.restarted; vx.flashUntil = performance.now() + FLASH_MS;
      setTimeout(() => { if (!flashing(vx)) { vx.color = colorOf(vx.n ? vx.n.state : 'external'); redraw(); } }, FLASH_MS + 50);
    } else {
      vx.flash = null;
      if (vx.n) vx.n.state = state;
    }
    vx.color = state === 'restarted' ? COLORS.restarted : colorOf(state);
    timing.shown = { node: r.node, color: vx.color, at: Date.now() };
    details();
    redraw();
  }

  // ---- labs and live updates ----
  let events = null;
  let refreshTimer = null;
  async function refresh() {
    if (!labName) return;
    try { show(await api('GET', '/labs/' + encodeURIComponent(labName))); $('status').textContent = 'live'; }
    catch (e) { $('status').textContent = e.message; }
  }
  function select(name) {
    labName = name; view = null; nodes = new Map(); links = []; selected = null;
    document.querySelectorAll('#lab-list li').forEach((li) => li.classList.toggle('sel', li.dataset.lab === name));
    if (events) events.close();
    events = new EventSource(withToken('/api/v1/labs/' + encodeURIComponent(name) + '/events'));
    const later = () => { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 150); };
    events.addEventListener('lab', later);
    // A change to links (a node's restart, a link up) settles in the kernel's operational state
    // within a second (its link watch runs once a second): read the lab again then too.
    const settled = () => setTimeout(refresh, 1200);
    events.addEventListener('record', (m) => { onRecord(m.data); later(); settled(); });
    refresh();
  }
  async function loadLabs() {
    try {
      const labs = await api('GET', '/labs');
      const ul = $('lab-list');
      ul.innerHTML = labs.map((l) => `<li data-lab="${esc(l.name)}">${esc(l.name)} <small>(${l.running}/${l.nodes})</small></li>`).join('') || '<li class="hint">none deployed</li>';
      ul.querySelectorAll('li[data-lab]').forEach((li) => { li.onclick = () => select(li.dataset.lab); li.classList.toggle('sel', li.dataset.lab === labName); });
      const want = new URLSearchParams(location.search).get('lab');
      if (!labName && labs.length) select(want && labs.some((l) => l.name === want) ? want : labs[0].name);
    } catch (e) { $('status').textContent = e.message; }
  }

  // For tests and for people poking at the page from the console.
  window.labwire = {
    nodes: () => [...nodes.values()].map((v) => ({ name: v.name, state: v.n ? v.n.state : 'external', color: v.color, x: v.x * cam.scale + cam.x, y: v.y * cam.scale + cam.y })),
    links: () => links.length,
    linkStates: () => links.map((l) => ({ a: l.a.node, b: l.b.node, state: l.state })),
    lab: () => labName,
    terminalText: () => $('term-out').textContent,
    timing: () => timing,
    // Pan by (dx, dy) pixels and draw at once: what a drag does, for measuring.
    pan: (dx, dy) => { cam.x += dx; cam.y += dy; draw(); return timing.drawMs; },
  };

  if (STATIC) {
    $('labs').hidden = true;
    labName = STATIC.name;
    show(STATIC);
    $('status').textContent = 'static view';
  } else {
    loadLabs();
    setInterval(loadLabs, 5000);
  }
})();
