#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

extension DNSResolver {
    /// A resolver address from `--dns`: "ADDR:PORT", "ADDR" (port 53), "[IPv6]:PORT", or a bare
    /// IPv6 address. Host names are refused: the resolver is how names get resolved.
    public static func parseServer(_ text: String) throws -> SocketAddress {
        let invalid = DNSError.invalidServer(
            "DNS server \"\(text)\" is not ADDR, ADDR:PORT or [IPv6]:PORT with a numeric IP address and a port 1-65535"
        )
        var host = Substring(text)
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw invalid }
                portText = rest.dropFirst()
            }
        } else if text.count(where: { $0 == ":" }) == 1, let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        var port = DNSLimits.port
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { throw invalid }
            port = value
        }
        do {
            return try SocketAddress(ipAddress: String(host), port: port)
        } catch {
            throw invalid
        }
    }

    /// The `nameserver` lines of resolv.conf(5), in order, at most three as glibc reads them
    /// (MAXNS); lines that are not a plain IP address (a scoped "fe80::1%eth0", say) are
    /// skipped. 127.0.0.1:53 when the file is missing or names none, as glibc does.
    public static func systemServers(resolvConf: String = "/etc/resolv.conf") -> [SocketAddress] {
        let fallback = [try! SocketAddress(ipAddress: "127.0.0.1", port: DNSLimits.port)]
        guard let data = FileManager.default.contents(atPath: resolvConf) else { return fallback }
        var servers: [SocketAddress] = []
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            // A zone index ("%eth0") would be dropped by SocketAddress, leaving an unroutable
            // link-local address, so such lines are skipped.
            guard fields.count >= 2, fields[0] == "nameserver", !fields[1].contains("%"),
                  let address = try? SocketAddress(ipAddress: String(fields[1]), port: DNSLimits.port)
            else { continue }
            servers.append(address)
            if servers.count == 3 { break }
        }
        return servers.isEmpty ? fallback : servers
    }

    /// "127.0.0.1:53" or "[::1]:53", for messages.
    static func describe(_ server: SocketAddress) -> String {
        guard let ip = server.ipAddress, let port = server.port else { return "\(server)" }
        if case .v6 = server { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}
