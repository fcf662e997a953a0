// Bindings › Ports: named protocol + encryption + number + certificate, assigned to IPs.
import { api, enc, ApiError } from '../api.js';
import { h, table, toolbar, formDialog, field, checkbox, select, showModal, confirmDialog, liveCheck, viewHead } from '../dom.js';
import { PROTOCOLS, ENCRYPTIONS, PROTO, encLabel, ipLabel } from '../labels.js';

export default { id: 'ports', title: 'Ports', render };

const base = (path) => path.slice(path.lastIndexOf('/') + 1);

function certCell(p) {
  if (p.encryption === 'none') return '—';
  const subject = p.certificate ? p.certificate.subject : '';
  return h('span', { title: p.certificatePath || `server default: ${subject}` }, p.certificatePath ? subject || base(p.certificatePath) : 'default');
}

const n = (x) => Number(x).toLocaleString();

export function warningList(warnings) {
  if (!warnings || !warnings.length) return null;
  // One text node per warning (the marker is CSS): 500 rows of warnings lay out fast.
  return h('ul', { class: 'warnings', 'aria-label': 'Warnings' }, warnings.map((w) => h('li', null, w)));
}

async function render(root, ctx) {
  let ips = [];
  const tb = toolbar('Port actions', [
    { label: 'New', id: 'new', run: () => form(null) },
    { label: 'Edit', id: 'edit', needs: 'one', run: () => form(t.selected()[0]) },
    { label: 'Delete', id: 'delete', cls: 'danger', needs: 'some', run: del },
  ]);
  const t = table({
    key: (p) => p.id,
    name: (p) => p.name,
    onEdit: (p) => form(p),
    onSelect: tb.update,
    empty: 'No ports. Use New to add one.',
    columns: [
      { label: 'Name', cell: (p) => h('div', null, h('div', { class: 'name' }, p.name), warningList(p.warnings)), cls: 'main' },
      { label: 'Protocol', cell: (p) => PROTO[p.protocol] || p.protocol },
      { label: 'Encryption', cell: encLabel },
      { label: 'Port', cell: (p) => p.port, cls: 'num' },
      { label: 'Assigned to', cell: (p) => (p.assignedTo.length ? p.assignedTo.join(', ') : '—') },
      { label: 'Certificate', cell: certCell },
      { label: 'Limits', cell: (p) => h('span', { title: 'max connections / per client' }, `${n(p.maxConnections)} / ${n(p.maxConnectionsPerClient)}`, p.proxyProtocol ? h('div', null, 'PROXY protocol') : null), cls: 'nowrap' },
      { label: 'Description', cell: (p) => p.description },
    ],
  });
  root.append(viewHead('Ports', 'The ports the server can listen on. Assign each to the IP addresses it should listen on.'), tb.el, t.el);

  async function load() {
    const b = await api('GET', '/bindings');
    ips = b.ipAddresses;
    t.setRows(b.ports.slice().sort((a, c) => a.port - c.port || a.name.localeCompare(c.name)));
  }
  await load();
  /** After a save: the list again (a failure here must not keep the dialog open). */
  const reload = (keys) => { ctx.refreshCounts(); load().then(() => t.select(keys), ctx.fail); };

  async function del() {
    const sel = t.selected();
    if (!sel.length) return;
    const ok = await confirmDialog(sel.length === 1 ? 'Delete port' : `Delete ${sel.length} ports`,
      'These ports will be removed from every IP address; their listeners close.', sel.map((p) => `${p.name} (${PROTO[p.protocol]} ${p.port})`));
    if (!ok) return;
    try {
      await api('POST', '/ports/delete', { ids: sel.map((p) => p.id) });
    } catch (err) {
      if (err.status !== 401) ctx.alert(err.message);
    }
    ctx.refreshCounts();
    await load();
  }

  async function form(port) {
    let library = [];
    try { library = await api('GET', '/certificates'); } catch (err) { if (err.status === 401) return; }
    const editing = !!port;
    const p = port || { name: '', protocol: 'smtp', encryption: 'none', tlsRequired: false, port: '', description: '', maxConnections: 10000, maxConnectionsPerClient: 100, proxyProtocol: false, assignedTo: [], certificatePath: null, privateKeyPath: null };
    const protocol = select(PROTOCOLS, p.protocol, { id: 'port-protocol' });
    const encryption = select(ENCRYPTIONS, p.encryption, { id: 'port-encryption' });
    const tlsRequired = checkbox('Require TLS (refuse everything but STARTTLS before TLS is up)', p.tlsRequired, { id: 'port-tls-required' });
    // Follows the contract default (required for submission over TLS) while protocol or
    // encryption change it, until the admin ticks or clears it in this form.
    let tlsTouched = false;
    const tlsDefault = () => encryption.value === 'tls' && protocol.value === 'submission';
    let lastDefault = tlsDefault();
    tlsRequired.input.addEventListener('change', () => { tlsTouched = true; });
    const name = h('input', { type: 'text', id: 'port-name', value: p.name, maxlength: '64', autocomplete: 'off' });
    const number = h('input', { type: 'number', id: 'port-number', value: p.port, min: '1', max: '65535', inputmode: 'numeric' });
    const certPick = select([['', 'Server default certificate'], ['custom', 'Other file (type its path)'],
      ...library.map((c) => [c.id, `${c.subject || base(c.certificatePath)} — ${c.certificatePath}`])], '', { id: 'port-cert-library' });
    const certPath = h('input', { type: 'text', id: 'port-cert-path', value: p.certificatePath || '', autocomplete: 'off', placeholder: '/etc/ssl/mail.pem or .pfx' });
    const keyPath = h('input', { type: 'text', id: 'port-key-path', value: p.privateKeyPath || '', autocomplete: 'off', placeholder: 'only if the certificate file holds no key' });
    const password = h('input', { type: 'password', id: 'port-cert-password', autocomplete: 'new-password', placeholder: editing ? 'unchanged' : '' });
    const description = h('input', { type: 'text', id: 'port-description', value: p.description, autocomplete: 'off' });
    const maxConn = h('input', { type: 'number', id: 'port-max', value: p.maxConnections, min: '1', max: '1000000' });
    const maxPer = h('input', { type: 'number', id: 'port-max-client', value: p.maxConnectionsPerClient, min: '1', max: '1000000' });
    const proxy = checkbox('PROXY protocol (connections come through a trusted proxy)', p.proxyProtocol, { id: 'port-proxy' });
    const ipBoxes = ips.map((ip) => checkbox(ipLabel(ip), p.assignedTo.includes(ip.address), { value: ip.address }));
    const assigned = h('fieldset', { class: 'choices', id: 'port-assigned' }, h('legend', null, 'Listen on'), ipBoxes.map((b) => b.row));
    const certSection = h('fieldset', { class: 'cert', id: 'port-cert' }, h('legend', null, 'Certificate'),
      field('Certificate library', certPick).row,
      field('Certificate path', certPath, 'PEM (chain, may hold the key) or PKCS#12 (.pfx/.p12). Empty: the server default.').row,
      field('Private key path', keyPath).row,
      field('Certificate password', password, editing ? 'Leave empty to keep the stored password.' : 'For PKCS#12 or an encrypted key.').row);

    const syncPick = () => {
      const path = certPath.value.trim();
      const hit = library.find((c) => c.certificatePath === path);
      certPick.value = hit ? hit.id : path ? 'custom' : '';
    };
    syncPick();
    certPick.addEventListener('change', () => {
      const c = library.find((x) => x.id === certPick.value);
      if (c) { certPath.value = c.certificatePath; keyPath.value = c.privateKeyPath || ''; }
      else if (certPick.value === '') { certPath.value = ''; keyPath.value = ''; }
      else certPath.focus();
    });
    certPath.addEventListener('input', syncPick);
    const syncEnc = () => {
      const e = encryption.value;
      certSection.hidden = e === 'none';
      tlsRequired.row.hidden = e !== 'tls';
      const d = tlsDefault();
      if (!tlsTouched && d !== lastDefault) tlsRequired.input.checked = d;
      lastDefault = d;
    };
    encryption.addEventListener('change', syncEnc);
    protocol.addEventListener('change', syncEnc);
    syncEnc();

    const int = (input, f, label, lo, hi) => {
      const v = input.value.trim();
      if (!/^\d+$/.test(v) || +v < lo || +v > hi) throw new ApiError(0, 'validation_failed', `${label} must be a whole number ${lo}–${hi}`, f);
      return +v;
    };
    const full = () => {
      const b = {
        name: name.value.trim(), protocol: protocol.value, encryption: encryption.value,
        port: int(number, 'port', 'Port', 1, 65535), description: description.value,
        maxConnections: int(maxConn, 'maxConnections', 'Max connections', 1, 1000000),
        maxConnectionsPerClient: int(maxPer, 'maxConnectionsPerClient', 'Max connections per client', 1, 1000000),
        proxyProtocol: proxy.input.checked,
        tlsRequired: encryption.value === 'tls' && tlsRequired.input.checked,
        assignedTo: ipBoxes.filter((b) => b.input.checked).map((b) => b.input.value),
      };
      if (b.encryption !== 'none') {
        b.certificatePath = certPath.value.trim();
        b.privateKeyPath = keyPath.value.trim();
        if (password.value) b.certificatePassword = password.value;
      }
      return b;
    };
    // Editing: only the fields changed in this form (PUT is partial), so a change made
    // elsewhere meanwhile (an assignment, a limit) stays. Null: nothing changed.
    const initial = editing ? full() : null;
    const same = (k, a, c) => (k === 'assignedTo' ? a.length === c.length && a.every((x) => c.includes(x)) : a === c);
    const body = () => {
      const b = full();
      if (!editing) return b;
      const out = {};
      for (const k of Object.keys(b)) if (!(k in initial) || !same(k, b[k], initial[k])) out[k] = b[k];
      // The server applies the default of a new protocol/encryption: send what the form shows.
      if ('protocol' in out || 'encryption' in out) out.tlsRequired = b.tlsRequired;
      return Object.keys(out).length ? out : null;
    };
    const id = () => port && port.id;
    const m = formDialog(editing ? `Edit port ${p.name}` : 'New port', {
      wide: true,
      saveLabel: editing ? 'Save' : 'Create',
      fields: {
        name, protocol, encryption, tlsRequired: tlsRequired.row, port: number, certificatePath: certPath, privateKeyPath: keyPath,
        certificatePassword: password, description, maxConnections: maxConn, maxConnectionsPerClient: maxPer,
        proxyProtocol: proxy.row, assignedTo: assigned,
      },
      save: async () => {
        const b = body();
        if (!b) return;
        const saved = id() ? await api('PUT', `/ports/${enc(id())}`, b) : await api('POST', '/ports', b);
        reload([saved.id]);
      },
    });
    m.body.append(h('div', { class: 'grid2' },
      field('Protocol', protocol).row, field('Encryption', encryption).row,
      field('Name', name).row, field('Port', number).row),
    tlsRequired.row, certSection,
    field('Description', description).row,
    h('div', { class: 'grid2' }, field('Max connections', maxConn).row, field('Max connections per client', maxPer).row),
    proxy.row, assigned);
    const check = liveCheck(m, () => {
      if (!name.value.trim() || !number.value) return Promise.resolve();
      let b;
      try { b = body(); } catch (e) { return Promise.reject(e); }
      if (!b) return Promise.resolve();
      return id() ? api('PUT', `/ports/${enc(id())}`, b, { dryRun: true }) : api('POST', '/ports', b, { dryRun: true });
    }, 400);
    number.addEventListener('input', check);
    assigned.addEventListener('change', check);
    encryption.addEventListener('change', check);
    certPick.addEventListener('change', check);
    showModal(m);
  }
}
