// Listeners: every (IP, port) socket and its state, refreshed every second while shown.
import { api } from '../api.js';
import { h, table, badge, fmtDate, viewHead } from '../dom.js';
import { PROTO, ENC } from '../labels.js';

export default { id: 'listeners', title: 'Listeners', render };

const KIND = { listening: 'ok', failed: 'error', starting: 'warn', draining: 'warn' };

async function render(root, ctx) {
  const status = h('p', { class: 'status muted', 'aria-live': 'off' });
  const t = table({
    selectable: false,
    key: (l) => `${l.address}|${l.port}`,
    empty: 'No listeners: assign ports to IP addresses to open some.',
    columns: [
      { label: 'Address', cell: (l) => l.address, cls: 'mono' },
      { label: 'Port', cell: (l) => l.port, cls: 'num' },
      { label: 'Port name', cell: (l) => l.portName },
      { label: 'Protocol', cell: (l) => PROTO[l.protocol] || l.protocol },
      { label: 'Encryption', cell: (l) => ENC[l.encryption] || l.encryption },
      { label: 'State', cell: (l) => badge(l.state === 'notServing' ? 'not serving' : l.state, KIND[l.state] || 'muted'), cls: 'state' },
      { label: 'Error or warning', cell: (l) => (l.error ? h('span', { class: l.state === 'failed' ? 'error-text' : 'warn-text' }, l.error) : ''), cls: 'msg' },
      { label: 'Active', cell: (l) => l.activeConnections, cls: 'num' },
      { label: 'Total', cell: (l) => l.totalConnections, cls: 'num' },
      { label: 'Since', cell: (l) => fmtDate(l.since), cls: 'nowrap' },
    ],
  });
  root.append(viewHead('Listeners', 'The sockets the server has open, one per IP address and port. Updated every second.'), status, t.el);
  let last = '';
  async function load(o) {
    const ls = await api('GET', '/listeners', undefined, o);
    if (!ctx.active()) return;
    const text = JSON.stringify(ls);
    if (text !== last) { last = text; t.setRows(ls); }
    const failed = ls.filter((l) => l.state === 'failed').length;
    status.textContent = `${ls.length} listener${ls.length === 1 ? '' : 's'}${failed ? `, ${failed} failed` : ''} · updated ${new Date().toLocaleTimeString()}`;
  }
  await load();
  let n = 0;
  ctx.poll(async (o) => { await load(o); if (++n % 10 === 0) ctx.refreshCounts(o); }, 1000, (e) => { status.textContent = `Not updated: ${e.message}`; });
}
