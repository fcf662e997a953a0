import BerthCore
import BerthDKIM

/// What outbound delivery needs of the configuration, as one immutable snapshot taken
/// after each committed change: the sender domains' `outbound` settings, the hostnames
/// of source addresses, static routes and DKIM keys.
public struct OutboundPolicy: Sendable {
    public var serverHostname: String
    public var domains: [String: Domain]
    /// IP entry hostnames by address.
    public var hostnames: [String: String]
    public var routes: [String: OutboundRoute]
    public var dkimKeys: [String: [DKIMKey]]

    public init(
        serverHostname: String, domains: [Domain], ipAddresses: [IPAddressEntry], routes: [OutboundRoute],
        dkimKeys: [String: [DKIMKey]]
    ) {
        self.serverHostname = serverHostname
        self.domains = Dictionary(domains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var hostnames: [String: String] = [:]
        for entry in ipAddresses {
            if let name = entry.hostname { hostnames[entry.address] = name }
        }
        // An address that is a domain's `ipAddress` greets with that domain's name (as its
        // listeners' banners do) unless the IP entry names a hostname of its own.
        for domain in domains {
            if let ip = domain.ipAddress, hostnames[ip] == nil { hostnames[ip] = domain.name }
        }
        self.hostnames = hostnames
        self.routes = Dictionary(routes.map { ($0.domain, $0) }, uniquingKeysWith: { a, _ in a })
        self.dkimKeys = dkimKeys
    }

    /// Source addresses for mail from `senderDomain` over `family`. A sender domain that
    /// is not ours (a DSN's null sender, a forward) lets the OS choose.
    public func sources(senderDomain: String, family: AddressFamily) -> SourceChoice {
        guard let domain = domains[senderDomain] else { return .system }
        let setting = family == .ipv4 ? domain.outbound.ipv4 : domain.outbound.ipv6
        return SourceChoice(setting, domainAddress: domain.ipAddress, family: family)
    }

    /// RFC 5321 §4.1.1.1: the EHLO name is the name of the address the connection comes from.
    public func ehloName(source: String?) -> String {
        source.flatMap { hostnames[$0] } ?? serverHostname
    }
}

/// The domain part of an address, lower-cased ("" for the null sender).
func domainPart(_ address: String) -> String {
    guard let at = address.lastIndex(of: "@") else { return "" }
    return address[address.index(after: at)...].lowercased()
}
