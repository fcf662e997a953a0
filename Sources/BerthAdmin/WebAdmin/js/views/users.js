// Users: mailboxes of every domain.
import { api, enc } from '../api.js';
import { h, table, toolbar, formDialog, field, select, showModal, confirmDialog, each, viewHead } from '../dom.js';

export default { id: 'users', title: 'Users', render };

async function render(root, ctx) {
  let all = [];
  let domains = [];
  const tb = toolbar('User actions', [
    { label: 'Add', id: 'add', needs: () => domains.length > 0, run: add },
    { label: 'Edit', id: 'edit', needs: 'one', run: () => edit(t.selected()[0]) },
    { label: 'Delete', id: 'delete', cls: 'danger', needs: 'some', run: del },
  ]);
  const t = table({
    key: (u) => u.address,
    name: (u) => u.address,
    onEdit: (u) => edit(u),
    onSelect: tb.update,
    empty: 'No users.',
    columns: [
      { label: 'Address', cell: (u) => u.address, cls: 'name' },
      { label: 'Name', cell: (u) => u.name },
      { label: 'Domain', cell: (u) => u.domain },
      { label: 'Display name', cell: (u) => u.displayName },
      { label: 'Aliases', cell: (u) => (u.aliases || []).join(', ') },
      { label: 'Quota', cell: (u) => (u.quotaBytes == null ? 'none' : `${mib(u.quotaBytes)} MiB`) },
    ],
  });
  const filter = h('select', { id: 'user-filter' });
  filter.addEventListener('change', () => show());
  root.append(viewHead('Users', 'Mailboxes. Double-click a user to change its names, aliases, password or quota.'),
    h('div', { class: 'filters' }, h('label', { for: filter.id }, 'Domain'), filter), tb.el, t.el);

  const show = () => t.setRows(filter.value ? all.filter((u) => u.domain === filter.value) : all);
  async function load() {
    const [us, doms] = await Promise.all([api('GET', '/users'), api('GET', '/domains')]);
    all = us.slice().sort((a, b) => a.domain.localeCompare(b.domain) || a.name.localeCompare(b.name));
    domains = doms.map((d) => d.name).sort();
    const keep = filter.value;
    filter.replaceChildren(h('option', { value: '' }, 'All domains'), ...domains.map((d) => h('option', { value: d, selected: d === keep }, d)));
    show();
  }
  await load();
  /** After a save: the list again (a failure here must not keep the dialog open). */
  const reload = (keys) => { ctx.refreshCounts(); load().then(() => t.select(keys), ctx.fail); };

  const MIB = 1024 * 1024;
  const mib = (bytes) => Math.round((bytes / MIB) * 100) / 100;
  const quotaInput = (id, bytes) => h('input', { type: 'number', id, min: '1', step: 'any', inputmode: 'decimal', value: bytes == null ? '' : String(mib(bytes)), placeholder: 'no quota' });
  /** MiB typed → octets for quotaBytes; empty → null (no quota). */
  const quotaValue = (input) => (input.value.trim() === '' ? null : Math.round(Number(input.value) * MIB));
  const quotaHelp = 'In MiB. Empty: no quota. Over it, IMAP APPEND/COPY fail and SMTP answers 452 4.2.2.';
  const aliasesHelp = 'Other names before the @ in the same domain, comma-separated; their mail lands here.';
  /** The name fields and aliases of the add and edit dialogs (ids prefixed), filled from `u`. */
  function profileInputs(prefix, u = {}) {
    const text = (id, value) => h('input', { type: 'text', id: `${prefix}-${id}`, value: value || '', autocomplete: 'off' });
    return {
      displayName: text('display', u.displayName),
      givenName: text('given', u.givenName),
      surname: text('surname', u.surname),
      aliases: text('aliases', (u.aliases || []).join(', ')),
    };
  }
  const aliasList = (input) => input.value.split(',').map((a) => a.trim()).filter((a) => a);
  /** The profile fields that differ from `u` (all of them for a new user). */
  function profileChanges(inputs, u = {}) {
    const body = {};
    for (const key of ['displayName', 'givenName', 'surname']) {
      if (inputs[key].value !== (u[key] || '')) body[key] = inputs[key].value;
    }
    const aliases = aliasList(inputs.aliases);
    if (aliases.join(',') !== (u.aliases || []).join(',')) body.aliases = aliases;
    return body;
  }
  const profileRows = (inputs) => [field('Display name', inputs.displayName).row, field('Given name', inputs.givenName).row,
    field('Surname', inputs.surname).row, field('Aliases', inputs.aliases, aliasesHelp).row];

  function add() {
    const domain = select(domains.map((d) => [d, d]), filter.value || domains[0], { id: 'user-domain' });
    const name = h('input', { type: 'text', id: 'user-name', autocomplete: 'off', placeholder: 'alice' });
    const profile = profileInputs('user');
    const password = h('input', { type: 'password', id: 'user-password', autocomplete: 'new-password' });
    const quota = quotaInput('user-quota', null);
    const m = formDialog('Add user', {
      saveLabel: 'Add',
      fields: { domain, name, ...profile, password, quotaBytes: quota },
      save: async () => {
        const body = { name: name.value.trim(), ...profileChanges(profile), password: password.value };
        const q = quotaValue(quota);
        if (q !== null) body.quotaBytes = q;
        const u = await api('POST', `/domains/${enc(domain.value)}/users`, body);
        reload([u.address]);
      },
    });
    m.body.append(field('Domain', domain).row, field('Name', name, 'The part before the @.').row,
      ...profileRows(profile), field('Password', password, 'At least 8 characters.').row,
      field('Quota', quota, quotaHelp).row);
    showModal(m);
  }

  function edit(u) {
    if (!u) return;
    const address = h('input', { type: 'text', id: 'user-address', value: u.address, readOnly: true });
    const profile = profileInputs('user-edit', u);
    const password = h('input', { type: 'password', id: 'user-new-password', autocomplete: 'new-password' });
    const quota = quotaInput('user-edit-quota', u.quotaBytes);
    const m = formDialog(`Edit user ${u.address}`, {
      fields: { ...profile, password, quotaBytes: quota },
      save: async () => {
        const body = profileChanges(profile, u);
        if (password.value) body.password = password.value;
        const q = quotaValue(quota);
        if (q !== (u.quotaBytes == null ? null : Math.round(mib(u.quotaBytes) * MIB))) body.quotaBytes = q;
        if (!Object.keys(body).length) return;
        await api('PUT', `/domains/${enc(u.domain)}/users/${enc(u.name)}`, body);
        if (body.password) ctx.alert(`Password of ${u.address} changed.`, 'info');
        reload([u.address]);
      },
    });
    m.body.append(field('Address', address).row, ...profileRows(profile),
      field('New password', password, 'At least 8 characters. Leave empty to keep the password.').row,
      field('Quota', quota, quotaHelp).row);
    showModal(m);
  }

  async function del() {
    const sel = t.selected();
    if (!sel.length || !(await confirmDialog('Delete users', 'Delete these users? Their mail stays on disk.', sel.map((u) => u.address)))) return;
    const errors = await each(sel, (u) => api('DELETE', `/domains/${enc(u.domain)}/users/${enc(u.name)}`), (u) => u.address);
    errors.forEach((e) => ctx.alert(e));
    ctx.refreshCounts();
    await load();
  }
}
