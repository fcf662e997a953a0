// Bindings › IP Addresses: which ports each of the server's addresses listens on.
import { api, enc } from '../api.js';
import { h, table, toolbar, formDialog, field, checkbox, showModal, confirmDialog, liveCheck, badge, each, viewHead } from '../dom.js';
import { portLabel, PROTO } from '../labels.js';

export default { id: 'ip-addresses', title: 'IP Addresses', render };

/** "all listening" / "n failed" / "nothing assigned", from the listener table. */
export function ipState(ip, listeners) {
  if (!ip.ports.length) return ['nothing assigned', 'muted'];
  const mine = listeners.filter((l) => l.address === ip.address);
  const failed = mine.filter((l) => l.state === 'failed').length;
  if (failed) return [`${failed} failed`, 'error'];
  // A protocol the server does not serve yet opens no socket: not a failure of this IP.
  const open = mine.filter((l) => l.state !== 'notServing');
  if (mine.length >= ip.ports.length && open.every((l) => l.state === 'listening')) return [open.length ? 'all listening' : 'nothing served', open.length ? 'ok' : 'muted'];
  return [mine.some((l) => l.state === 'draining') ? 'draining' : 'starting', 'warn'];
}

const deletable = (ip) => ip.source === 'manual' || !ip.present;
const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));

async function render(root, ctx) {
  let ports = [];
  let listeners = [];
  const tb = toolbar('IP address actions', [
    { label: 'Edit', id: 'edit', needs: 'one', run: () => edit(t.selected()[0]) },
    { label: 'Add manual address', id: 'add', run: add },
    { label: 'Delete', id: 'delete', cls: 'danger', needs: (sel) => sel.length > 0 && sel.every(deletable), run: del },
  ]);
  const t = table({
    key: (ip) => ip.address,
    name: (ip) => ip.address,
    onEdit: (ip) => edit(ip),
    onSelect: tb.update,
    empty: 'No IP addresses.',
    columns: [
      { label: 'IP Address', cell: (ip) => ip.address, cls: 'mono' },
      { label: 'Interface', cell: (ip) => ip.interface || (ip.source === 'wildcard' ? `all ${ip.family === 'ipv6' ? 'IPv6' : 'IPv4'}` : ip.source) },
      { label: 'Hostname', cell: (ip) => ip.hostname || '—' },
      { label: 'Description', cell: (ip) => ip.description },
      { label: 'Ports', cell: (ip) => ip.ports.length, cls: 'num' },
      { label: 'State', cell: (ip) => { const [text, kind] = ipState(ip, listeners); return badge(text, kind); } },
      { label: 'Present', cell: (ip) => (ip.present ? 'yes' : badge('no', 'warn')) },
    ],
  });
  root.append(viewHead('IP Addresses', 'The addresses the server can listen on, and the ports assigned to each.'), tb.el, t.el);

  async function load() {
    const [b, ls] = await Promise.all([api('GET', '/bindings'), api('GET', '/listeners')]);
    ports = b.ports.slice().sort((a, c) => a.port - c.port || a.name.localeCompare(c.name));
    listeners = ls;
    t.setRows(b.ipAddresses);
  }
  await load();
  /** After a save: the list again (a failure here must not keep the dialog open). */
  const reload = (keys) => { ctx.refreshCounts(); load().then(() => t.select(keys), ctx.fail); };

  function edit(ip) {
    if (!ip) return;
    const address = h('input', { type: 'text', value: ip.address, readOnly: true });
    const hostname = h('input', { type: 'text', value: ip.hostname || '', autocomplete: 'off', placeholder: 'server host name' });
    const description = h('input', { type: 'text', value: ip.description || '', autocomplete: 'off' });
    const boxes = ports.map((p) => checkbox(portLabel(p), ip.ports.includes(p.id), { value: p.id, 'data-port': p.port }));
    const portsBox = h('fieldset', { class: 'choices', id: 'ip-ports' }, h('legend', null, 'Ports'),
      boxes.length ? boxes.map((b) => b.row) : h('p', { class: 'muted' }, 'No ports defined yet.'));
    // Only what the admin changed here: another window's change to the rest stays.
    const body = () => {
      const b = {};
      const ticked = boxes.filter((x) => x.input.checked).map((x) => x.input.value);
      if (!sameSet(ticked, ip.ports.filter((id) => ports.some((p) => p.id === id)))) b.ports = ticked;
      if (hostname.value.trim() !== (ip.hostname || '')) b.hostname = hostname.value.trim();
      if (description.value !== (ip.description || '')) b.description = description.value;
      return Object.keys(b).length ? b : null;
    };
    const path = `/ip-addresses/${enc(ip.address)}`;
    const m = formDialog(`Edit IP address ${ip.address}`, {
      fields: { address, hostname, description, ports: portsBox, port: portsBox, assignedTo: portsBox, '@port_conflict': portsBox },
      save: async () => {
        const b = body();
        if (!b) return;
        await api('PUT', path, b);
        reload([ip.address]);
      },
    });
    m.body.append(field('IP address', address).row, field('Hostname', hostname, 'Used in greetings and the EHLO reply; empty: the server host name.').row,
      field('Description', description).row, portsBox);
    const check = liveCheck(m, async () => { const b = body(); if (b) await api('PUT', path, b, { dryRun: true }); });
    portsBox.addEventListener('change', check);
    hostname.addEventListener('input', check);
    showModal(m);
  }

  function add() {
    const address = h('input', { type: 'text', autocomplete: 'off', placeholder: 'e.g. 192.0.2.10 or 2001:db8::10' });
    const hostname = h('input', { type: 'text', autocomplete: 'off' });
    const description = h('input', { type: 'text', autocomplete: 'off' });
    const m = formDialog('Add manual IP address', {
      saveLabel: 'Add',
      fields: { address, hostname, description },
      save: async () => {
        const body = { address: address.value.trim(), description: description.value };
        if (hostname.value.trim()) body.hostname = hostname.value.trim();
        const added = await api('POST', '/ip-addresses', body);
        reload([added.address]);
      },
    });
    m.body.append(h('p', { class: 'help' }, 'An address that is not on an interface yet (for example one a failover brings up). The server binds it as soon as it appears.'),
      field('IP address', address).row, field('Hostname', hostname).row, field('Description', description).row);
    showModal(m);
  }

  async function del() {
    const sel = t.selected();
    const byId = new Map(ports.map((p) => [p.id, p]));
    const assigned = sel.some((ip) => ip.ports.length);
    const items = sel.map((ip) => (ip.ports.length ? h('span', null, ip.address, h('ul', { class: 'assigned' },
      ip.ports.map((id) => { const p = byId.get(id); return h('li', null, p ? `${p.name} (${PROTO[p.protocol] || p.protocol} ${p.port})` : `port ${id}`); }))) : ip.address));
    const one = sel.length === 1;
    const message = `Delete ${one ? 'this address' : `these ${sel.length} addresses`} from the list?`
      + (assigned ? ` The ports listed under ${one ? 'it' : 'them'} are unassigned: their listeners on ${one ? 'that address' : 'those addresses'} close.` : '');
    if (!sel.length || !(await confirmDialog('Delete IP addresses', message, items))) return;
    const errors = await each(sel, (ip) => api('DELETE', `/ip-addresses/${enc(ip.address)}`), (ip) => ip.address);
    errors.forEach((e) => ctx.alert(e));
    ctx.refreshCounts();
    await load();
  }
}
