// Certificates: the library SNI picks from, and ports can name.
import { api, enc } from '../api.js';
import { h, table, toolbar, formDialog, field, showModal, confirmDialog, each, viewHead } from '../dom.js';
import { warningList } from './ports.js';

export default { id: 'certificates', title: 'Certificates', render };

const DAY = 86400000;
const portUsers = (c) => c.usedBy.filter((u) => u !== 'sni');

function expiry(c) {
  if (!c.notAfter) return '—';
  const d = new Date(c.notAfter);
  const left = d - Date.now();
  const kind = left < 0 ? 'error' : left < 30 * DAY ? 'warn' : '';
  const note = left < 0 ? ' (expired)' : left < 30 * DAY ? ` (${Math.floor(left / DAY)} days)` : '';
  return h('span', { class: `expiry ${kind}` }, d.toLocaleDateString() + note);
}

async function render(root, ctx) {
  let portNames = new Map();
  const tb = toolbar('Certificate actions', [
    { label: 'Add', id: 'add', run: add },
    { label: 'Delete', id: 'delete', cls: 'danger', needs: (sel) => sel.length > 0 && sel.every((c) => !portUsers(c).length), run: del },
  ]);
  const t = table({
    key: (c) => c.id,
    name: (c) => c.subject || c.certificatePath,
    onSelect: tb.update,
    empty: 'The library is empty. Add a certificate so SNI can pick it by host name.',
    columns: [
      { label: 'Subject', cell: (c) => h('div', null, h('div', { class: 'name' }, c.subject || '—'), warningList(c.warnings)), cls: 'main' },
      { label: 'DNS names', cell: (c) => c.dnsNames.join(', ') || '—' },
      { label: 'Issuer', cell: (c) => (c.selfSigned ? 'self-signed' : c.issuer || '—') },
      { label: 'Expires', cell: expiry },
      { label: 'Used by ports', cell: (c) => portUsers(c).map((u) => portNames.get(u) || u).join(', ') || '—' },
      { label: 'Host names (SNI)', cell: (c) => (c.hostnames || []).join(', ') || (c.usedBy.includes('sni') ? 'none yet' : '—') },
      { label: 'File', cell: (c) => c.certificatePath, cls: 'mono path' },
    ],
  });
  root.append(viewHead('Certificates', 'TLS clients that send a host name (SNI) get the library certificate whose DNS names match it.'), tb.el, t.el);

  async function load() {
    const [certs, ports] = await Promise.all([api('GET', '/certificates'), api('GET', '/ports')]);
    portNames = new Map(ports.map((p) => [p.id, p.name]));
    t.setRows(certs);
  }
  await load();
  /** After a save: the list again (a failure here must not keep the dialog open). */
  const reload = (keys) => { ctx.refreshCounts(); load().then(() => t.select(keys), ctx.fail); };

  function add() {
    const certificatePath = h('input', { type: 'text', autocomplete: 'off', placeholder: '/etc/ssl/mail.example.com.pem' });
    const privateKeyPath = h('input', { type: 'text', autocomplete: 'off' });
    const certificatePassword = h('input', { type: 'password', autocomplete: 'new-password' });
    const m = formDialog('Add certificate', {
      saveLabel: 'Add',
      fields: { certificatePath, privateKeyPath, certificatePassword },
      save: async () => {
        const body = { certificatePath: certificatePath.value.trim() };
        if (privateKeyPath.value.trim()) body.privateKeyPath = privateKeyPath.value.trim();
        if (certificatePassword.value) body.certificatePassword = certificatePassword.value;
        const c = await api('POST', '/certificates', body);
        reload([c.id]);
      },
    });
    m.body.append(field('Certificate path', certificatePath, 'A file on the server: PEM (chain, may hold the key) or PKCS#12 (.pfx/.p12).').row,
      field('Private key path', privateKeyPath, 'Only if the certificate file holds no key.').row,
      field('Password', certificatePassword, 'For PKCS#12 or an encrypted key.').row);
    showModal(m);
  }

  async function del() {
    const sel = t.selected();
    if (!sel.length || !(await confirmDialog('Delete certificates', 'Remove these certificates from the library? The files stay on disk.', sel.map((c) => c.subject || c.certificatePath)))) return;
    const errors = await each(sel, (c) => api('DELETE', `/certificates/${enc(c.id)}`), (c) => c.subject || c.certificatePath);
    errors.forEach((e) => ctx.alert(e));
    ctx.refreshCounts();
    await load();
  }
}
