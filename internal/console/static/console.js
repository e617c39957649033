// Catena console: polls api/snapshot and api/history every second and
// renders them. Plain DOM and hand-drawn SVG; text goes in through
// textContent only (names and paths come from users).
'use strict';

(function () {
  const POLL_MS = 1000;
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'style') e.style.cssText = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) {
      if (k != null) e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    n = Number(n) || 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }
  const rate = (n) => bytes(n) + '/s';

  function seconds(s) {
    if (s === 0) return '0';
    if (s < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + ' ms';
    return s.toFixed(2) + ' s';
  }

  function age(from, to) {
    const s = Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
  const isZeroTime = (t) => !t || t.startsWith('0001-');

  function fill(tbody, rows, cols, empty) {
    if (rows.length === 0) rows = [el('tr', {}, el('td', { colspan: cols, class: 'empty' }, empty))];
    tbody.replaceChildren(...rows);
  }

  function bar(frac, full) {
    const pct = Math.max(0, Math.min(1, frac || 0)) * 100;
    return el('div', { class: full ? 'bar full' : 'bar' }, el('span', { style: 'width:' + pct.toFixed(1) + '%' }));
  }

  function tile(value, label, cls) {
    return el('div', { class: 'tile ' + (cls || '') }, el('div', { class: 'v' }, value), el('div', { class: 'k' }, label));
  }

  function serverName(snap, id) {
    const cs = (snap.chunkservers || []).find((c) => c.id === id);
    return cs && cs.name ? cs.name + ' (' + id + ')' : 'server ' + id;
  }

  function render(snap) {
    const servers = snap.chunkservers || [];
    const ch = snap.chunks || {};
    const h = snap.health || { level: 'unknown', reasons: [] };

    const badge = $('health');
    badge.dataset.level = h.level;
    badge.textContent = h.level;
    $('reasons').textContent = (h.reasons || []).join(' · ');
    const leader = (snap.masters || []).find((m) => m.leader);
    $('served').textContent = 'console on ' + snap.master + (leader ? ' · leader ' + leader.id : ' · no leader');
    $('updated').textContent = 'as of ' + clock(snap.time);
    const banner = $('error');
    banner.hidden = !snap.error;
    banner.textContent = snap.error ? 'Latest update failed: ' + snap.error + ' (showing ' + clock(snap.time) + ')' : '';

    const alive = servers.filter((c) => c.alive).length;
    let cap = 0, used = 0;
    for (const c of servers) { cap += c.capacity_bytes || 0; used += c.used_bytes || 0; }
    $('glance').replaceChildren(
      tile(alive + ' / ' + servers.length, 'chunkservers alive', alive === servers.length ? 'ok' : (alive === 0 ? 'bad' : 'warn')),
      tile((snap.masters || []).length, 'masters' + (leader ? ', leader ' + leader.id : ''), leader ? 'ok' : 'bad'),
      tile(ch.total || 0, 'chunks'),
      tile(ch.under_replicated || 0, 'under-replicated', ch.under_replicated ? 'warn' : 'ok'),
      tile(ch.re_replicating || 0, 're-replicating', ch.re_replicating ? 'warn' : ''),
      tile(ch.lost || 0, 'lost (no live replica)', ch.lost ? 'bad' : 'ok'),
      tile(bytes(used) + ' / ' + bytes(cap), 'space used'),
      tile((snap.volumes || []).length, 'volumes'),
      tile((snap.files || 0) + ' / ' + (snap.directories || 0), 'files / directories'),
    );

    fill($('chunkservers').tBodies[0], servers.map((c) => {
      const state = !c.alive ? 'dead' : (c.draining ? 'draining' : 'alive');
      const load = (snap.load || {})[c.id];
      const frac = c.capacity_bytes > 0 ? c.used_bytes / c.capacity_bytes : 0;
      const labels = Object.entries(c.labels || {}).map(([k, v]) => k + '=' + v).join(', ');
      return el('tr', { 'data-id': c.id, 'data-state': state },
        el('td', { class: 'num' }, c.id),
        el('td', {}, c.name || '—'),
        el('td', {}, el('code', {}, c.addr)),
        el('td', { class: 'state' }, state, c.draining && c.alive ? el('div', { class: 'small' }, c.chains + ' chains left') : null),
        el('td', { title: labels }, c.domain || '—', labels ? el('div', { class: 'small' }, labels) : null),
        el('td', {}, bytes(c.used_bytes) + ' of ' + bytes(c.capacity_bytes) + ' (' + bytes(c.free_bytes) + ' free)', bar(frac, frac > 0.9)),
        el('td', { class: 'num' }, c.replicas),
        el('td', { class: 'num' }, c.chains),
        el('td', {}, load ? rate(load.write_bps) + ' / ' + rate(load.read_bps) : '—'),
        el('td', {}, isZeroTime(c.last_heartbeat) ? 'not heard' : age(c.last_heartbeat, snap.time) + ' ago'));
    }), 10, 'no chunkserver registered');

    const rec = snap.recovery || {};
    const recovery = $('recovery');
    const done = 'repairs done: ' + (ch.repairs_done || 0) + ' (' + bytes(ch.repaired_bytes || 0) + ' copied) since the leader took office';
    if (rec.peak > 0) {
      const restored = rec.peak - rec.remaining;
      recovery.replaceChildren(
        el('div', {}, 'Re-replication: ' + restored + ' of ' + rec.peak + ' under-replicated chunks restored · ' + done),
        bar(restored / rec.peak, false));
    } else {
      recovery.replaceChildren(el('div', {}, 'Every chunk has its replicas · ' + done));
    }
    const since = snap.repair_since || {};
    fill($('repairs').tBodies[0], (snap.repairs || []).map((r) => el('tr', {},
      el('td', { class: 'num' }, r.handle),
      el('td', {}, serverName(snap, r.target)),
      el('td', {}, since[r.handle] ? age(since[r.handle], snap.time) : '—'))), 3, 'no repair in flight');
    fill($('problems').tBodies[0], (ch.problems || []).map((p) => el('tr', {},
      el('td', { class: 'num' }, p.handle),
      el('td', {}, p.reason),
      el('td', {}, (p.paths || []).join(', ') || '—'))), 3, 'no chunk needs attention');

    fill($('masters').tBodies[0], (snap.masters || []).map((m) => el('tr', {},
      el('td', {}, m.id + (m.id === snap.master ? ' (this console)' : '')),
      el('td', {}, el('code', {}, m.addr || '—')),
      el('td', {}, m.leader ? 'leader' : 'follower'))), 3, 'no master known');

    fill($('volumes').tBodies[0], (snap.volumes || []).map((v) => el('tr', {},
      el('td', {}, v.name),
      el('td', { class: 'num' }, bytes(v.size_bytes)),
      el('td', { class: 'num' }, v.replication),
      el('td', {}, el('code', {}, v.export), el('div', { class: 'small' }, 'nbd://<catena nbd address>/' + v.export)))), 4, 'no volume');

    const events = (snap.events || []).slice().reverse();
    $('events').replaceChildren(...(events.length === 0 ? [el('li', { class: 'small' }, 'nothing yet')] : events.map((e) =>
      el('li', {},
        el('time', { datetime: e.time }, clock(e.time)),
        el('span', { class: 'kind', 'data-kind': e.kind }, e.kind),
        el('span', {}, e.message + (e.count > 1 ? ' (×' + e.count + ')' : ''))))));
  }

  // chart draws series over the samples of the last window seconds; each
  // series is {key, cls, label, fmt, valid?}; a point invalid for a
  // series breaks its line.
  function chart(id, legendId, samples, series, fmt, windowS) {
    const g = $(id);
    const W = 420, H = 150, L = 58, R = 8, T = 8, B = 20;
    const kids = [];
    const end = samples.length ? Date.parse(samples[samples.length - 1].time) : Date.now();
    const start = end - windowS * 1000;
    const pts = samples.filter((s) => Date.parse(s.time) >= start);
    let top = 0;
    for (const s of pts) for (const se of series) if (!se.valid || se.valid(s)) top = Math.max(top, s[se.key] || 0);
    top = niceCeil(top);
    const x = (t) => L + (W - L - R) * (Date.parse(t) - start) / (windowS * 1000);
    const y = (v) => T + (H - T - B) * (1 - v / top);
    for (let i = 0; i <= 3; i++) {
      const v = top * i / 3;
      kids.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      const label = svg('text', { class: 'axis', x: L - 4, y: y(v) + 3, 'text-anchor': 'end' });
      label.textContent = fmt(v);
      kids.push(label);
    }
    for (const [txt, xpos, anchor] of [['-' + windowS + ' s', L, 'start'], ['now', W - R, 'end']]) {
      const t = svg('text', { class: 'axis', x: xpos, y: H - 4, 'text-anchor': anchor });
      t.textContent = txt;
      kids.push(t);
    }
    for (const se of series) {
      // Runs of valid points become lines; a lone point, a dot.
      const runs = [[]];
      for (const s of pts) {
        if (se.valid && !se.valid(s)) { runs.push([]); continue; }
        runs[runs.length - 1].push([x(s.time).toFixed(1), y(s[se.key] || 0).toFixed(1)]);
      }
      for (const run of runs) {
        if (run.length === 1) kids.push(svg('circle', { class: 'dot ' + se.cls, cx: run[0][0], cy: run[0][1], r: 2.5 }));
        if (run.length > 1) kids.push(svg('path', { class: 'series ' + se.cls, d: 'M' + run.map((p) => p.join(' ')).join(' L') }));
      }
    }
    g.replaceChildren(...kids);
    const last = pts[pts.length - 1];
    $(legendId).replaceChildren(...series.map((se) => el('span', {},
      el('span', { class: 'swatch ' + se.cls }),
      se.label + ': ' + (last && (!se.valid || se.valid(last)) ? fmt(last[se.key] || 0) : '—'))));
  }

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.5, 2, 3, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function graphs(hist) {
    const samples = hist.samples || [];
    const windowS = Math.max(60, Math.round((hist.interval_s || 1) * samples.length));
    const count = (v) => String(Math.round(v));
    chart('g-throughput', 'l-throughput', samples, [
      { key: 'write_bps', cls: 'c-write', label: 'write' },
      { key: 'read_bps', cls: 'c-read', label: 'read' }], rate, windowS);
    chart('g-latency', 'l-latency', samples, [
      { key: 'write_latency_s', cls: 'c-write', label: 'write', valid: (s) => s.writes_per_sec > 0 },
      { key: 'read_latency_s', cls: 'c-read', label: 'read', valid: (s) => s.reads_per_sec > 0 }], seconds, windowS);
    chart('g-servers', 'l-servers', samples, [
      { key: 'alive', cls: 'c-alive', label: 'alive' },
      { key: 'dead', cls: 'c-dead', label: 'dead' }], count, windowS);
    chart('g-under', 'l-under', samples, [
      { key: 'under_replicated', cls: 'c-under', label: 'under-replicated' },
      { key: 're_replicating', cls: 'c-repair', label: 're-replicating' }], count, windowS);
  }

  async function getJSON(url) {
    const r = await fetch(url, { cache: 'no-store' });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  async function poll() {
    try {
      const [snap, hist] = await Promise.all([getJSON('api/snapshot'), getJSON('api/history')]);
      render(snap);
      graphs(hist);
    } catch (e) {
      const banner = $('error');
      banner.hidden = false;
      banner.textContent = 'Cannot update: ' + e.message;
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
