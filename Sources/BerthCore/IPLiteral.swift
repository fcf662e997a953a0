#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parsing and canonical text of IP address literals (inet_pton/inet_ntop; no I/O).
public enum IPLiteral {
    /// The canonical text form and family of `text`, or nil if it is not an IP literal.
    /// `::FFFF:127.0.0.1` becomes `::ffff:127.0.0.1`; `0:0::1` becomes `::1`.
    public static func canonical(_ text: String) -> (address: String, family: AddressFamily)? {
        let trimmed = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        guard !trimmed.isEmpty, trimmed.utf8.count < 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, trimmed, &v4) == 1 {
            return (ntop(AF_INET, &v4, Int(INET_ADDRSTRLEN)), .ipv4)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, trimmed, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return (formatIPv6(bytes), .ipv6)
        }
        return nil
    }

    /// The address in network byte order (4 bytes for IPv4, 16 for IPv6), or nil if
    /// `text` is not an IP literal.
    public static func bytes(_ text: String) -> [UInt8]? {
        let trimmed = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        guard !trimmed.isEmpty, trimmed.utf8.count < 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, trimmed, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, trimmed, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The canonical text of 4 or 16 address bytes.
    public static func text(_ bytes: [UInt8]) -> String {
        bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : formatIPv6(bytes)
    }

    /// RFC 5952 §4: lower-case hex, no leading zeros, the longest run (≥ 2) of zero groups
    /// as "::"; a dotted-quad tail only for IPv4-mapped addresses (§5). glibc's inet_ntop
    /// also prints `::1:2` as `::0.1.0.2`, which RFC 5952 does not allow.
    static func formatIPv6(_ bytes: [UInt8]) -> String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
            return "::ffff:\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        }
        var bestStart = -1, bestLength = 0, runStart = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength { (bestStart, bestLength) = (runStart, index - runStart) }
                runStart = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestLength >= 2 else { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }

    private static func ntop<T>(_ family: Int32, _ addr: inout T, _ length: Int) -> String {
        var buffer = [CChar](repeating: 0, count: length)
        _ = inet_ntop(family, &addr, &buffer, socklen_t(length))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Link-local addresses (169.254/16, fe80::/10) are left out of the address list.
    public static func isLinkLocal(_ canonical: String) -> Bool {
        canonical.hasPrefix("169.254.") || canonical.lowercased().hasPrefix("fe8")
            || canonical.lowercased().hasPrefix("fe9") || canonical.lowercased().hasPrefix("fea")
            || canonical.lowercased().hasPrefix("feb")
    }

    /// Why an address can never be a listening address, or nil if it can.
    public static func notBindableReason(_ canonical: String) -> String? {
        let lower = canonical.lowercased()
        if lower == "0.0.0.0" || lower == "::" { return "a wildcard (already in the list)" }
        if lower == "255.255.255.255" { return "the broadcast address" }
        if lower.hasPrefix("ff") && lower.contains(":") { return "an IPv6 multicast address" }
        if lower.hasPrefix("::ffff:") { return "an IPv4-mapped address (add \(lower.dropFirst(7)) instead)" }
        if let first = Int(lower.prefix { $0 != "." }), !lower.contains(":"), (224...239).contains(first) {
            return "an IPv4 multicast address"
        }
        return nil
    }

    /// 127.0.0.0/8 is all local on Linux (lo holds the whole /8), so such an address
    /// is present whenever the host has loopback.
    public static func isIPv4Loopback(_ canonical: String) -> Bool {
        canonical.hasPrefix("127.")
    }
}
