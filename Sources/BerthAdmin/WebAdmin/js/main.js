// Berth web admin: login, the settings shell (header, navigation, content pane), routing.
import { api, ApiError, setToken, onSessionLost } from './api.js';
import { h, clear, field, nextId, modal, showError, clearErrors } from './dom.js';

// A view's module loads when the view is first opened: a first visit downloads the login
// page, the shell and one view, not every form of the admin.
const lazyView = (id, title) => ({ id, title, load: () => import(`./views/${id}.js`) });
const VIEWS = [
  lazyView('ip-addresses', 'IP Addresses'), lazyView('ports', 'Ports'), lazyView('certificates', 'Certificates'),
  lazyView('domains', 'Domains'), lazyView('users', 'Users'), lazyView('queue', 'Queue'), lazyView('listeners', 'Listeners'),
];
const BINDINGS = new Set(['ip-addresses', 'ports']);
const app = document.getElementById('app');
let session = null;
let shell = null;
let current = null; // {view, cleanups, polls}
let countsTimer = null;
let lost = null; // the log-in-again dialog while the session is lost: no polls then
let focusHeading = false; // after a login: focus goes to the view's heading
const BG = { background: true }; // requests the page makes by itself: no session activity

// ---------------------------------------------------------------- login

function showLogin(notice) {
  stopView();
  clearInterval(countsTimer);
  shell = null;
  session = null;
  lost = null;
  setToken(null);
  closeDialogs(true);
  document.title = 'Log in · Berth admin';
  const pw = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const user = h('input', { type: 'text', id: 'username', name: 'username', value: 'admin', readOnly: true, autocomplete: 'username' });
  const errorBox = h('div', { class: 'form-error', role: 'alert', hidden: !notice }, notice || '');
  const pwRow = field('Password', pw);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h('form', { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Berth admin'),
    errorBox, field('User', user).row, pwRow.row, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const x of form.querySelectorAll('.field-error')) x.remove();
    pw.removeAttribute('aria-invalid');
    errorBox.hidden = true;
    button.disabled = true;
    try {
      const s = await api('POST', '/session', { password: pw.value });
      startApp(s, true);
    } catch (err) {
      button.disabled = false;
      const text = err.message || 'Login failed';
      if (err.status === 401) {
        const id = nextId('e');
        pw.after(h('div', { class: 'field-error', id, role: 'alert' }, err.code === 'unauthorized' && !err.message ? 'Wrong password' : text));
        pw.setAttribute('aria-invalid', 'true');
        pw.setAttribute('aria-describedby', id);
        pw.select();
        pw.focus();
      } else {
        errorBox.textContent = text;
        errorBox.hidden = false;
      }
    }
  });
  clear(app).append(h('main', { class: 'login-page' }, form));
  pw.focus();
}

/** Closes the open dialogs (but the log-in-again one unless `all`), without moving focus back. */
function closeDialogs(all) {
  for (const d of document.querySelectorAll('dialog[open]')) {
    if (all || !lost || d !== lost.dlg) { d.dataset.noReturn = '1'; d.close(); }
  }
}

/**
 * The session ended while the app is shown: keep the view and any open form as they are,
 * stop the polls, and ask for the password in a dialog on top of everything.
 */
function relogin() {
  if (lost) return;
  clearInterval(countsTimer);
  if (current) for (const p of current.polls) clearTimeout(p.timer);
  setToken(null);
  const m = modal('Log in again');
  lost = m;
  let done = false;
  m.dlg.id = 'relogin';
  m.dlg.classList.add('narrow');
  const pw = h('input', { type: 'password', id: 'relogin-password', autocomplete: 'current-password', required: true });
  m.fields = { password: pw };
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  m.body.append(h('p', null, 'Your session has ended; log in again to continue.'), field('Password', pw).row);
  m.actions.append(button);
  m.dlg.addEventListener('cancel', (e) => e.preventDefault());
  m.form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (button.disabled) return;
    clearErrors(m);
    button.disabled = true;
    try {
      const s = await api('POST', '/session', { password: pw.value });
      session = s;
      setToken(s.csrfToken);
      done = true;
      lost = null;
      m.close();
      resume();
    } catch (err) {
      showError(m, { field: 'password', message: err.message || 'Login failed' });
      pw.select();
    } finally {
      button.disabled = false;
    }
  });
  m.onClose = () => {
    // Closed without a login (the browser may close a dialog on repeated Escape): ask again.
    if (!done) { if (lost === m) { lost = null; relogin(); } return; }
    setTimeout(() => {
      if (document.activeElement !== document.body) return;
      const d = [...document.querySelectorAll('dialog[open]')].pop();
      const f = d ? d.querySelector('.dialog-actions .primary') : shell && shell.view.querySelector('h1');
      if (f) f.focus();
    });
  };
  m.dlg.showModal();
  pw.focus();
}

/** After logging in again: polls run again, counts now, a view that could not load loads. */
function resume() {
  startCounts();
  refreshCounts();
  if (!current) return;
  if (current.retry) renderView(current.view);
  else for (const p of current.polls) runPoll(p, current);
}

function startCounts() {
  clearInterval(countsTimer);
  countsTimer = setInterval(() => { if (!document.hidden) refreshCounts(BG); }, 15000);
}

// ---------------------------------------------------------------- shell

function startApp(s, fromLogin = false) {
  session = s;
  setToken(s.csrfToken);
  const name = s.serverName || s.hostname || location.hostname;
  const counts = {};
  const links = {};
  const navItem = (v) => {
    counts[v.id] = h('span', { class: 'count', 'aria-label': '' });
    links[v.id] = h('a', { href: `#/${v.id}`, 'data-view': v.id }, h('span', null, v.title), counts[v.id]);
    return h('li', null, links[v.id]);
  };
  const sub = h('ul', { id: 'nav-bindings' }, VIEWS.filter((v) => BINDINGS.has(v.id)).map(navItem));
  const group = h('button', { type: 'button', class: 'group', 'aria-expanded': 'true', 'aria-controls': 'nav-bindings' }, 'Bindings');
  group.addEventListener('click', () => {
    const open = group.getAttribute('aria-expanded') !== 'true';
    group.setAttribute('aria-expanded', String(open));
    sub.hidden = !open;
  });
  const nav = h('nav', { class: 'side', 'aria-label': 'Settings' },
    h('ul', null, h('li', null, group, sub), VIEWS.filter((v) => !BINDINGS.has(v.id)).map(navItem)));
  const alerts = h('div', { id: 'alerts', class: 'alerts', role: 'alert', 'aria-live': 'assertive' });
  const view = h('div', { id: 'view' });
  const content = h('main', { id: 'content', tabindex: '-1' }, alerts, view);
  const logout = h('button', { type: 'button', id: 'logout' }, 'Log out');
  logout.addEventListener('click', async () => {
    try { await api('DELETE', '/session'); } catch (err) { if (err.status !== 401) { alert(err.message); return; } }
    showLogin('You have logged out.');
  });
  const header = h('header', { class: 'top' },
    h('span', { class: 'brand' }, 'Berth'), h('span', { class: 'server', title: 'Server' }, name), h('span', { class: 'spacer' }), logout);
  shell = { counts, links, alerts, view, content, group, sub };
  clear(app).append(header, h('div', { class: 'layout' }, nav, content));
  startCounts();
  focusHeading = fromLogin;
  route();
}

function alert(message, kind = 'error') {
  if (!shell) return;
  const box = h('div', { class: `alert ${kind}` }, h('span', null, message));
  box.append(h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss', onclick: () => box.remove() }, '×'));
  shell.alerts.append(box);
}

async function refreshCounts(opts) {
  if (!shell || lost) return;
  const c = shell.counts;
  const set = (id, n, bad) => { if (c[id]) { c[id].textContent = n == null ? '' : String(n); c[id].classList.toggle('bad', !!bad); } };
  try {
    const s = await api('GET', '/summary', undefined, opts);
    set('ip-addresses', s.ipAddresses);
    set('ports', s.ports, s.portsWithWarnings > 0);
    set('certificates', s.certificates, s.certificatesWithProblems > 0);
    set('domains', s.domains);
    set('users', s.users);
    set('queue', s.queue);
    set('listeners', s.listeners, s.listenersFailed > 0);
  } catch { /* session lost: handled; other failures leave the counts as they were */ }
}

// ---------------------------------------------------------------- routing

function stopView() {
  if (!current) return;
  for (const p of current.polls) clearTimeout(p.timer);
  for (const f of current.cleanups) { try { f(); } catch { /* ignore */ } }
  current = null;
}

function runPoll(p, state) {
  clearTimeout(p.timer);
  if (current !== state || document.hidden || lost) return;
  p.timer = setTimeout(async () => {
    if (current !== state || document.hidden || lost) return;
    try { await p.fn(BG); } catch (e) { if (e.status !== 401) p.error?.(e); }
    runPoll(p, state);
  }, p.ms);
}

document.addEventListener('visibilitychange', () => {
  if (!current || document.hidden || lost) return;
  const state = current;
  for (const p of state.polls) {
    Promise.resolve(BG).then(p.fn).catch(() => {}).finally(() => runPoll(p, state));
  }
});

function route() {
  if (!shell) return;
  const id = (location.hash.match(/^#\/([\w-]+)/) || [])[1];
  const v = VIEWS.find((x) => x.id === id);
  if (!v) { location.replace('#/ip-addresses'); return; }
  closeDialogs(); // a form of the view we leave must not stay on top of the next one
  for (const [vid, a] of Object.entries(shell.links)) {
    if (vid === v.id) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (BINDINGS.has(v.id)) { shell.sub.hidden = false; shell.group.setAttribute('aria-expanded', 'true'); }
  clear(shell.alerts);
  document.title = `${v.title} · Berth admin`;
  renderView(v);
}

function renderView(v) {
  stopView();
  clear(shell.view);
  const state = { view: v, cleanups: [], polls: [] };
  current = state;
  const ctx = {
    alert,
    refreshCounts,
    active: () => current === state,
    onLeave: (f) => state.cleanups.push(f),
    poll(fn, ms, error) { const p = { fn, ms, error, timer: 0 }; state.polls.push(p); runPoll(p, state); },
    fail(err) { if (current === state && !(err instanceof ApiError && err.status === 401)) alert(err.message || String(err)); },
  };
  const view = shell.view;
  view.setAttribute('aria-busy', 'true');
  delete view.dataset.ready;
  v.load().then((module) => module.default.render(view, ctx)).catch((err) => {
    if (err.status === 401) state.retry = true; // rendered again after the login
    ctx.fail(err);
  }).finally(() => {
    if (current !== state) return;
    view.removeAttribute('aria-busy');
    view.dataset.ready = v.id;
    refreshCounts(); // after the view: its own list first
    if (focusHeading && !lost) {
      focusHeading = false;
      const h1 = view.querySelector('h1');
      if (h1) h1.focus();
    }
  });
}

window.addEventListener('hashchange', () => route());

onSessionLost(() => { if (session && shell) relogin(); });

api('GET', '/session').then((s) => startApp(s), (err) => showLogin(err.status === 401 ? '' : err.message));
