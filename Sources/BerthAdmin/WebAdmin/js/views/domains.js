// Domains: inbound IP, outbound source address per family, DKIM records.
import { api, enc } from '../api.js';
import { h, clear, table, toolbar, formDialog, field, select, showModal, confirmDialog, nextId, viewHead } from '../dom.js';
import { MODES, MODE } from '../labels.js';

export default { id: 'domains', title: 'Domains', render };

const modeText = (s) => (MODE[s.mode] || s.mode) + (s.addresses.length && (s.mode === 'address' || s.mode === 'rotate') ? `: ${s.mode === 'address' ? s.addresses[0] : s.addresses.join(', ')}` : '');

/** Mode select plus an address picker (single for "address", ordered checkboxes for "rotate"). */
function outboundEditor(family, setting, ips) {
  const title = family === 'ipv6' ? 'IPv6' : 'IPv4';
  const present = ips.filter((ip) => ip.family === family && ip.source !== 'wildcard' && ip.present).map((ip) => ip.address);
  const stale = setting.addresses.filter((a) => !present.includes(a));
  const label = (a) => (stale.includes(a) ? `${a} (not present)` : a);
  const all = [...present, ...stale];
  const mode = select(MODES, setting.mode, { id: `out-${family}-mode` });
  const single = select(all.map((a) => [a, label(a)]), setting.mode === 'address' ? setting.addresses[0] : all[0], { id: `out-${family}-address` });
  const order = setting.mode === 'rotate' ? [...setting.addresses, ...all.filter((a) => !setting.addresses.includes(a))] : all;
  const list = h('ol', { class: 'rotate' });
  for (const a of order) {
    const id = nextId('r');
    const li = h('li', null,
      h('input', { type: 'checkbox', id, value: a, checked: setting.mode === 'rotate' && setting.addresses.includes(a) }),
      h('label', { for: id }, label(a)));
    const move = (up) => () => {
      const other = up ? li.previousElementSibling : li.nextElementSibling;
      if (!other) return;
      if (up) other.before(li); else other.after(li);
      btns[up ? 0 : 1].focus();
    };
    const btns = [h('button', { type: 'button', class: 'small', 'aria-label': `Move ${a} up`, onclick: move(true) }, '↑'),
      h('button', { type: 'button', class: 'small', 'aria-label': `Move ${a} down`, onclick: move(false) }, '↓')];
    li.append(h('span', { class: 'moves' }, btns));
    list.append(li);
  }
  const none = h('p', { class: 'muted' }, `No ${title} address is present on this server.`);
  const singleRow = field('Source address', single).row;
  const rotateRow = h('div', { class: 'field' }, h('span', { class: 'label' }, 'Addresses, tried in this order'), list);
  const box = h('fieldset', { class: 'outbound', id: `out-${family}` }, h('legend', null, `Outbound ${title}`), field('Mode', mode).row, singleRow, rotateRow, none);
  const sync = () => {
    singleRow.hidden = mode.value !== 'address' || !all.length;
    rotateRow.hidden = mode.value !== 'rotate' || !all.length;
    none.hidden = !(mode.value === 'address' || mode.value === 'rotate') || all.length > 0;
  };
  mode.addEventListener('change', sync);
  sync();
  return {
    box,
    value() {
      const m = mode.value;
      if (m === 'address') return { mode: m, addresses: single.value ? [single.value] : [] };
      if (m === 'rotate') return { mode: m, addresses: [...list.querySelectorAll('input:checked')].map((i) => i.value) };
      return { mode: m, addresses: [] };
    },
  };
}

async function copyText(text, area, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    area.focus();
    area.select();
    button.textContent = 'Press Ctrl+C';
  }
  setTimeout(() => { button.textContent = 'Copy'; }, 2000);
}

function dkimSection(name, ctx) {
  const list = h('div', { class: 'dkim-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const show = (view) => {
    clear(list);
    for (const k of view.keys) {
      const area = h('textarea', { readOnly: true, rows: '3', class: 'mono', id: nextId('dk') });
      area.value = k.record;
      const copy = h('button', { type: 'button', class: 'small' }, 'Copy');
      copy.addEventListener('click', () => copyText(k.record, area, copy));
      list.append(h('div', { class: 'dkim' },
        h('div', { class: 'dkim-name' }, h('span', { class: 'badge' }, k.algorithm), ' TXT ', h('code', null, k.name)),
        h('label', { for: area.id, class: 'sr-only' }, `TXT record for ${k.name}`), area, copy));
    }
  };
  const rotate = h('button', { type: 'button' }, 'Rotate keys…');
  rotate.addEventListener('click', async () => {
    if (!(await confirmDialog('Rotate DKIM keys', `New keys under new selectors sign ${name}'s mail from now on; the old ones stop at once. Publish the new records in DNS.`, [name], 'Rotate'))) return;
    try { show(await api('POST', `/domains/${enc(name)}/dkim/rotate`)); } catch (err) { list.prepend(h('div', { class: 'field-error', role: 'alert' }, err.message)); }
  });
  api('GET', `/domains/${enc(name)}/dkim`).then(show, (err) => { clear(list).append(h('div', { class: 'field-error', role: 'alert' }, err.message)); });
  return h('fieldset', { class: 'dkim-box' }, h('legend', null, 'DKIM records to publish'), list, rotate);
}

async function render(root, ctx) {
  let ips = [];
  let users = new Map();
  const tb = toolbar('Domain actions', [
    { label: 'New', id: 'new', run: () => form(null) },
    { label: 'Edit', id: 'edit', needs: 'one', run: () => form(t.selected()[0]) },
    { label: 'Delete', id: 'delete', cls: 'danger', needs: 'one', run: del },
  ]);
  const t = table({
    key: (d) => d.name,
    name: (d) => d.name,
    onEdit: (d) => form(d),
    onSelect: tb.update,
    empty: 'No domains. Use New to add one.',
    columns: [
      { label: 'Name', cell: (d) => d.name, cls: 'name' },
      { label: 'Inbound IP', cell: (d) => d.ipAddress || '—', cls: 'mono' },
      { label: 'Outbound IPv4', cell: (d) => modeText(d.outbound.ipv4) },
      { label: 'Outbound IPv6', cell: (d) => modeText(d.outbound.ipv6) },
      { label: 'Users', cell: (d) => users.get(d.name) || 0, cls: 'num' },
    ],
  });
  root.append(viewHead('Domains', 'Mail domains this server receives for, and the addresses their mail leaves from.'), tb.el, t.el);

  async function load() {
    const [doms, us, addrs] = await Promise.all([api('GET', '/domains'), api('GET', '/users'), api('GET', '/ip-addresses')]);
    ips = addrs;
    users = new Map();
    for (const u of us) users.set(u.domain, (users.get(u.domain) || 0) + 1);
    t.setRows(doms);
  }
  await load();
  /** After a save: the list again (a failure here must not keep the dialog open). */
  const reload = (keys) => { ctx.refreshCounts(); load().then(() => t.select(keys), ctx.fail); };

  function form(d) {
    const editing = !!d;
    const dom = d || { name: '', ipAddress: null, outbound: { ipv4: { mode: 'system', addresses: [] }, ipv6: { mode: 'system', addresses: [] } } };
    const name = h('input', { type: 'text', id: 'domain-name', value: dom.name, readOnly: editing, autocomplete: 'off', placeholder: 'example.com' });
    const choices = ips.filter((ip) => ip.source !== 'wildcard').map((ip) => [ip.address, ip.address + (ip.present ? '' : ' (not present)')]);
    const ipAddress = select([['', '(none)'], ...choices], dom.ipAddress || '', { id: 'domain-ip' });
    const v4 = outboundEditor('ipv4', dom.outbound.ipv4, ips);
    const v6 = outboundEditor('ipv6', dom.outbound.ipv6, ips);
    const m = formDialog(editing ? `Edit domain ${dom.name}` : 'New domain', {
      wide: true,
      saveLabel: editing ? 'Save' : 'Create',
      fields: { name, ipAddress, 'outbound.ipv4': v4.box, 'outbound.ipv6': v6.box },
      save: async () => {
        const body = { ipAddress: ipAddress.value || null, outbound: { ipv4: v4.value(), ipv6: v6.value() } };
        if (editing) await api('PUT', `/domains/${enc(dom.name)}`, body);
        else await api('POST', '/domains', { name: name.value.trim(), ...body });
        reload([editing ? dom.name : name.value.trim().toLowerCase()]);
      },
    });
    m.body.append(field('Domain name', name).row,
      field('Inbound IP address', ipAddress, "The IP its MX points at; the SMTP greeting on it uses the domain's name.").row,
      h('div', { class: 'grid2' }, v4.box, v6.box),
      editing ? dkimSection(dom.name, ctx) : null);
    showModal(m);
  }

  async function del() {
    const d = t.selected()[0];
    if (!d) return;
    const n = users.get(d.name) || 0;
    if (!(await confirmDialog('Delete domain', `Delete the domain ${d.name}?`, [d.name]))) return;
    try {
      await api('DELETE', `/domains/${enc(d.name)}`);
    } catch (err) {
      // The API's 409 tells a script to add force=true: the admin gets a question instead.
      if (err.status !== 409 || !/\buser/.test(err.message)) { if (err.status !== 401) ctx.alert(err.message); return; }
      const k = +((/(\d+) users?\b/.exec(err.message) || [])[1] || n);
      const who = `${k} user${k === 1 ? '' : 's'}`;
      const ok = await confirmDialog('Delete domain with its users', `${d.name} has ${who}. Delete the domain and its users? Their mail stays on disk.`,
        [`${d.name} and its ${who}`], 'Delete with its users');
      if (!ok) return;
      try { await api('DELETE', `/domains/${enc(d.name)}`, undefined, { query: 'force=true' }); } catch (e2) { if (e2.status !== 401) ctx.alert(e2.message); }
    }
    ctx.refreshCounts();
    await load();
  }
}
