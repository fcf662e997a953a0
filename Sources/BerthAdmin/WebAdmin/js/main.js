// Berth web admin: login, the settings shell (header, navigation, content pane), routing.
import { api, ApiError, setToken, onSessionLost } from './api.js';
import { h, clear, field, nextId } from './dom.js';
import ipAddresses from './views/ip-addresses.js';
import ports from './views/ports.js';
import certificates from './views/certificates.js';
import domains from './views/domains.js';
import users from './views/users.js';
import queue from './views/queue.js';
import listeners from './views/listeners.js';

const VIEWS = [ipAddresses, ports, certificates, domains, users, queue, listeners];
const BINDINGS = new Set(['ip-addresses', 'ports']);
const app = document.getElementById('app');
let session = null;
let shell = null;
let current = null; // {view, cleanups, polls}
let countsTimer = null;

// ---------------------------------------------------------------- login

function showLogin(notice) {
  stopView();
  clearInterval(countsTimer);
  shell = null;
  session = null;
  setToken(null);
  for (const d of document.querySelectorAll('dialog')) d.close();
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
      startApp(s);
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

// ---------------------------------------------------------------- shell

function startApp(s) {
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
  refreshCounts();
  countsTimer = setInterval(() => { if (!document.hidden) refreshCounts(); }, 15000);
  route();
}

function alert(message, kind = 'error') {
  if (!shell) return;
  const box = h('div', { class: `alert ${kind}` }, h('span', null, message));
  box.append(h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss', onclick: () => box.remove() }, '×'));
  shell.alerts.append(box);
}

async function refreshCounts() {
  if (!shell) return;
  const c = shell.counts;
  const set = (id, n, bad) => { if (c[id]) { c[id].textContent = n == null ? '' : String(n); c[id].classList.toggle('bad', !!bad); } };
  const get = (p) => api('GET', p).catch((e) => { if (e.status === 401) throw e; return null; });
  try {
    const [b, certs, doms, us, q, ls] = await Promise.all(['/bindings', '/certificates', '/domains', '/users', '/queue', '/listeners'].map(get));
    if (b) { set('ip-addresses', b.ipAddresses.length); set('ports', b.ports.length, b.ports.some((p) => p.warnings.length)); }
    if (certs) set('certificates', certs.length, certs.some((x) => x.warnings.some((w) => /expire|unusable/.test(w))));
    if (doms) set('domains', doms.length);
    if (us) set('users', us.length);
    if (q) set('queue', q.length);
    if (ls) set('listeners', ls.length, ls.some((l) => l.state === 'failed'));
  } catch { /* session lost: handled */ }
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
  if (current !== state || document.hidden) return;
  p.timer = setTimeout(async () => {
    if (current !== state || document.hidden) return;
    try { await p.fn(); } catch (e) { if (e.status !== 401) p.error?.(e); }
    runPoll(p, state);
  }, p.ms);
}

document.addEventListener('visibilitychange', () => {
  if (!current || document.hidden) return;
  const state = current;
  for (const p of state.polls) {
    Promise.resolve().then(p.fn).catch(() => {}).finally(() => runPoll(p, state));
  }
});

function route() {
  if (!shell) return;
  const id = (location.hash.match(/^#\/([\w-]+)/) || [])[1];
  const v = VIEWS.find((x) => x.id === id);
  if (!v) { location.replace('#/ip-addresses'); return; }
  stopView();
  for (const [vid, a] of Object.entries(shell.links)) {
    if (vid === v.id) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (BINDINGS.has(v.id)) { shell.sub.hidden = false; shell.group.setAttribute('aria-expanded', 'true'); }
  clear(shell.alerts);
  clear(shell.view);
  document.title = `${v.title} · Berth admin`;
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
  Promise.resolve().then(() => v.render(view, ctx)).catch(ctx.fail).finally(() => {
    if (current !== state) return;
    view.removeAttribute('aria-busy');
    view.dataset.ready = v.id;
  });
}

window.addEventListener('hashchange', route);

onSessionLost(() => { if (session) showLogin('Your session has expired. Log in again.'); });

api('GET', '/session').then(startApp, (err) => showLogin(err.status === 401 ? '' : err.message));
