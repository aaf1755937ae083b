/* sluice dashboard (engine/dash/pages.c, runpage.c): the only script of the pages (the CSP
 * allows no inline one). The lists work without it; on a run's page it follows the run live
 * from /api/events (Server-Sent Events: run_started, step_progress, task_failed,
 * run_finished, JSON in data) and updates the counts, bars, statuses and failed tasks in
 * place. Text from the server is only ever set as textContent, never parsed as HTML. */
'use strict';

(function () {
  const STATUSES = ['succeeded', 'failed', 'running', 'interrupted', 'ok', 'partial',
                    'skipped', 'canceled', 'pending', 'queued'];
  const statusClass = (s) => 'st-' + (STATUSES.indexOf(s) >= 0 ? s : 'other');

  function setStatusClass(el, status) {
    for (const c of Array.from(el.classList)) {
      if (c.startsWith('st-')) el.classList.remove(c);
    }
    el.classList.add(statusClass(status));
  }

  function setBadge(cell, status) {
    if (!cell) return;
    let badge = cell.querySelector('.badge');
    if (!badge) {
      badge = document.createElement('span');
      cell.textContent = '';
      cell.appendChild(badge);
    }
    badge.className = 'badge';
    setStatusClass(badge, status);
    badge.textContent = status || 'unknown';
  }

  function duration(ms) {
    if (!(ms >= 0)) ms = 0;
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return Math.floor(ms / 60000) + ' min ' + Math.floor(ms / 1000 % 60) + ' s';
    return Math.floor(ms / 3600000) + ' h ' + Math.floor(ms / 60000 % 60) + ' min';
  }

  /* The elements of each step (table row, graph node, timeline bar), found once. */
  function indexSteps() {
    const steps = new Map();
    for (const el of document.querySelectorAll('[data-step]')) {
      const id = el.getAttribute('data-step');
      let s = steps.get(id);
      if (!s) steps.set(id, s = { row: null, marks: [] });
      if (el.tagName === 'TR') s.row = el; else s.marks.push(el);
    }
    return steps;
  }

  function setText(root, selector, value) {
    const el = root.querySelector(selector);
    if (el) el.textContent = String(value);
  }

  /* The run's totals move by each step's change: the steps table may show only a page of
   * the steps, so a step first heard of becomes its own baseline. */
  function countOf(id) {
    return Number((document.getElementById(id) || {}).textContent) || 0;
  }

  function moveTotals(counts, step, ok, failed) {
    const before = counts.get(step);
    counts.set(step, { ok: ok, failed: failed });
    if (!before) return;
    setText(document, '#run-ok', countOf('run-ok') + ok - before.ok);
    setText(document, '#run-failed', countOf('run-failed') + failed - before.failed);
  }

  function onProgress(steps, counts, ev) {
    const total = Number(ev.total) || 0, ok = Number(ev.ok) || 0;
    const failed = Number(ev.failed) || 0, skipped = Number(ev.skipped) || 0;
    const done = ok + failed + skipped;
    moveTotals(counts, String(ev.step), ok, failed);
    const s = steps.get(String(ev.step));
    if (!s) return;
    if (s.row) {
      setBadge(s.row.querySelector('.c-status'), ev.status);
      const bar = s.row.querySelector('progress');
      if (bar) { bar.max = total > 0 ? total : 1; bar.value = done; }
      setText(s.row, '.c-done', done);
      setText(s.row, '.c-total', total);
      setText(s.row, '.c-ok', ok);
      setText(s.row, '.c-failed', failed);
      setText(s.row, '.c-skipped', skipped);
      s.row.classList.toggle('has-failed', failed > 0);
    }
    for (const m of s.marks) setStatusClass(m, ev.status);
  }

  function onTaskFailed(ev) {
    const list = document.getElementById('failed-list');
    if (!list) return;
    const tr = document.createElement('tr');
    const cells = [ev.step, ev.item, ev.attempts, ev.error];
    cells.forEach((value, i) => {
      const td = document.createElement('td');
      td.textContent = value === undefined || value === null ? '' : String(value);
      if (i === 1 || i === 2) td.className = 'num';
      if (i === 3) td.className = 'error-text';
      tr.appendChild(td);
    });
    tr.classList.add('flash');
    list.appendChild(tr);
    const none = document.getElementById('failed-none');
    if (none) none.hidden = true;
    const count = document.getElementById('failed-count');
    if (count) count.textContent = String(list.children.length);
  }

  /* At its end the run's own counts are final: read them from the API. */
  function refreshTotals(id) {
    fetch('/api/runs/' + encodeURIComponent(id)).then((r) => r.ok ? r.json() : null)
      .then((j) => {
        const tasks = j && (j.tasks || (j.run && j.run.tasks));
        if (!tasks) return;
        setText(document, '#run-ok', Number(tasks.ok) || 0);
        setText(document, '#run-failed', Number(tasks.failed) || 0);
      }).catch(() => {});
  }

  function onFinished(run, source, ev) {
    refreshTotals(run.getAttribute('data-run'));
    run.setAttribute('data-status', ev.status || '');
    setBadge(document.getElementById('run-status'), ev.status);
    if (ev.duration !== undefined) {
      setText(document, '#run-duration', duration(Number(ev.duration)));
    }
    const live = document.getElementById('live');
    if (live) live.hidden = true;
    source.close();
  }

  function follow(run) {
    const id = run.getAttribute('data-run');
    const steps = indexSteps();
    const counts = new Map();
    for (const [step, s] of steps) {
      if (!s.row) continue;
      counts.set(step, { ok: Number(s.row.querySelector('.c-ok').textContent) || 0,
                         failed: Number(s.row.querySelector('.c-failed').textContent) || 0 });
    }
    const source = new EventSource('/api/events?run=' + encodeURIComponent(id));
    const live = document.getElementById('live');
    let seen = 0;
    const handle = (type, data) => {
      let ev;
      try { ev = JSON.parse(data); } catch (e) { return; }
      if (!ev || (ev.run !== undefined && String(ev.run) !== id)) return;
      type = type || ev.type || ev.event;
      document.body.setAttribute('data-events', String(++seen));
      if (type === 'step_progress') onProgress(steps, counts, ev);
      else if (type === 'task_failed') onTaskFailed(ev);
      else if (type === 'run_finished') onFinished(run, source, ev);
      else if (type === 'run_started') setBadge(document.getElementById('run-status'), 'running');
    };
    for (const type of ['run_started', 'step_progress', 'task_failed', 'run_finished']) {
      source.addEventListener(type, (e) => handle(type, e.data));
    }
    source.onmessage = (e) => handle(null, e.data);
    /* A run that ended between the page and the stream's start sends no more events: once
     * connected, ask the API whether it is still going. */
    source.onopen = () => {
      if (live) live.hidden = false;
      fetch('/api/runs/' + encodeURIComponent(id)).then((r) => r.ok ? r.json() : null)
        .then((j) => {
          if (j && j.status && j.status !== 'running' && source.readyState !== 2) {
            onFinished(run, source, { status: j.status, duration: j.duration_ms });
          }
        }).catch(() => {});
    };
    source.onerror = () => { if (live && source.readyState === 2) live.hidden = true; };
  }

  function start() {
    const run = document.getElementById('run');
    if (run && run.getAttribute('data-status') === 'running') follow(run);
    /* For the browser tests and the benchmark: when the page was ready, in ms. */
    document.body.setAttribute('data-ready-ms', String(Math.round(performance.now())));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
