import BerthCore
#if canImport(Glibc)
import Glibc
#endif

/// Whether outbound connections can come from an address: the kernel is asked to bind a
/// socket to it (port 0). `EADDRNOTAVAIL` means the host does not have it.
public enum SourceAddress {
    public static func isPresent(_ address: String) -> Bool {
        guard let canonical = IPLiteral.canonical(address) else { return false }
        let family = canonical.family == .ipv4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if canonical.family == .ipv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            guard inet_pton(AF_INET, canonical.address, &sin.sin_addr) == 1 else { return false }
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        guard inet_pton(AF_INET6, canonical.address, &sin6.sin6_addr) == 1 else { return false }
        return withUnsafePointer(to: &sin6) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
        }
    }

    /// Domain rule (issue 6): every outbound source address must be present when saved.
    public static func requirePresent(_ outbound: OutboundSettings) throws {
        for (family, setting) in [(AddressFamily.ipv4, outbound.ipv4), (.ipv6, outbound.ipv6)] {
            guard setting.mode == .address || setting.mode == .rotate else { continue }
            let addresses = setting.mode == .address ? Array(setting.addresses.prefix(1)) : setting.addresses
            for address in addresses where !isPresent(address) {
                throw BindingsError.invalid(
                    "outbound.\(family.rawValue)",
                    "source address \(address) is not present on this host (cannot bind to it); add it to an interface first")
            }
        }
    }
}
