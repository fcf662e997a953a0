// Display names for the API's enum values.
export const PROTOCOLS = [['smtp', 'SMTP'], ['submission', 'Submission'], ['imap', 'IMAP'], ['pop', 'POP'], ['ldap', 'LDAP']];
export const ENCRYPTIONS = [['none', 'None'], ['ssl', 'SSL'], ['tls', 'TLS']];
export const MODES = [['system', 'System'], ['address', 'Specific address'], ['domain', "Domain's IP"], ['rotate', 'Rotate list'], ['disabled', 'Disabled']];
const map = (pairs) => Object.fromEntries(pairs);
export const PROTO = map(PROTOCOLS);
export const ENC = map(ENCRYPTIONS);
export const MODE = map(MODES);

export const portLabel = (p) => `${p.name} — ${PROTO[p.protocol] || p.protocol} ${p.port}`;
export const encLabel = (p) => (ENC[p.encryption] || p.encryption) + (p.encryption === 'tls' ? (p.tlsRequired ? ' (required)' : ' (optional)') : '');
export const ipLabel = (ip) => ip.source === 'wildcard' ? `${ip.address} (all ${ip.family === 'ipv6' ? 'IPv6' : 'IPv4'})`
  : ip.address + (ip.interface ? ` (${ip.interface})` : ip.source === 'manual' ? ' (manual)' : '');
