import BerthCore
import BerthDNS

/// One host to try, with its addresses in the order to try them.
public struct MailExchanger: Sendable, Hashable {
    public var host: String
    public var addresses: [String]
    public var port: Int

    public init(host: String, addresses: [String], port: Int) {
        self.host = host
        self.addresses = addresses
        self.port = port
    }
}

/// Where mail for a domain goes, or why it cannot go.
public enum MailExchangerLookup: Sendable, Hashable {
    case exchangers([MailExchanger])
    /// Bounce: the domain does not exist or takes no mail (RFC 7505 null MX).
    case permanent(status: String, reason: String)
    /// Retry later: DNS failure, no address.
    case temporary(String)
}

/// RFC 5321 §5.1: the MX records by preference (equal preferences shuffled), or the
/// domain's own address records when it has no MX; a static route first of all.
public struct MailExchangerResolver: Sendable {
    public let resolver: DNSResolver
    /// The port MX hosts are reached on (25; tests set another).
    public let mxPort: Int
    /// MX hosts tried for one delivery, like Postfix's smtp_mx_address_limit.
    public static let maxHosts = 10

    public init(resolver: DNSResolver, mxPort: Int) {
        self.resolver = resolver
        self.mxPort = mxPort
    }

    /// `families`: the address families that may be used (others are not even looked up).
    public func lookup(domain: String, route: OutboundRoute?, families: Set<AddressFamily>) async -> MailExchangerLookup {
        if let route {
            if IPLiteral.canonical(route.host) != nil {
                return .exchangers([MailExchanger(host: route.host, addresses: [route.host], port: route.port)])
            }
            return await addresses(of: [route.host], port: route.port, families: families, implicit: false)
        }
        if let literal = Self.addressLiteral(domain) {
            return .exchangers([MailExchanger(host: domain, addresses: [literal], port: mxPort)])
        }
        let answer: DNSLookup<MXRecord>
        do {
            answer = try await resolver.mx(domain)
        } catch {
            return .temporary("MX lookup for \(domain) failed: \(error)")
        }
        switch answer {
        case .noSuchDomain:
            return .permanent(status: "5.1.2", reason: "domain \(domain) does not exist (NXDOMAIN)")
        case .noRecords:
            // RFC 5321 §5.1: no MX, so the domain itself is the implicit MX.
            return await addresses(of: [domain], port: mxPort, families: families, implicit: true)
        case .records(let records):
            if records.contains(where: { $0.exchange.isEmpty || $0.exchange == "." }) {
                return .permanent(status: "5.1.10", reason: "domain \(domain) accepts no mail (null MX, RFC 7505)")
            }
            let hosts = Dictionary(grouping: records, by: \.preference)
                .sorted { $0.key < $1.key }
                .flatMap { $0.value.shuffled().map(\.exchange) }
            return await addresses(of: Array(hosts.prefix(Self.maxHosts)), port: mxPort, families: families, implicit: false)
        }
    }

    /// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
    static func addressLiteral(_ domain: String) -> String? {
        guard domain.hasPrefix("["), domain.hasSuffix("]") else { return nil }
        var inner = String(domain.dropFirst().dropLast())
        if inner.lowercased().hasPrefix("ipv6:") { inner = String(inner.dropFirst(5)) }
        return IPLiteral.canonical(inner)?.address
    }

    private func addresses(of hosts: [String], port: Int, families: Set<AddressFamily>, implicit: Bool) async -> MailExchangerLookup {
        var exchangers: [MailExchanger] = []
        var errors: [String] = []
        var nonexistent = 0
        for host in hosts {
            var found: [String] = []
            for family in [AddressFamily.ipv4, .ipv6] {
                let result: DNSLookup<String>
                do {
                    result = family == .ipv4 ? try await resolver.ipv4(host) : try await resolver.ipv6(host)
                } catch {
                    errors.append("\(host): \(error)")
                    continue
                }
                switch result {
                case .records(let list):
                    if families.contains(family) {
                        found += list
                    } else {
                        errors.append("\(host) has only \(family.rawValue) addresses of a family this sender does not use")
                    }
                case .noSuchDomain:
                    if family == .ipv4 { nonexistent += 1 }
                case .noRecords:
                    break
                }
            }
            if !found.isEmpty { exchangers.append(MailExchanger(host: host, addresses: found, port: port)) }
        }
        if !exchangers.isEmpty { return .exchangers(exchangers) }
        if implicit && nonexistent == hosts.count && errors.isEmpty {
            return .permanent(status: "5.1.2", reason: "domain \(hosts[0]) has no MX and no address")
        }
        if errors.isEmpty {
            return .temporary("no address found for \(hosts.joined(separator: ", "))")
        }
        return .temporary(errors.joined(separator: "; "))
    }
}
