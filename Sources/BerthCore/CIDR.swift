/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), as
/// `proxyTrustedNetworks` lists them. A bare address is a network of one (/32, /128).
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The network address (host bits zero), 4 or 16 bytes.
    public let network: [UInt8]
    public let prefixLength: Int

    public var family: AddressFamily { network.count == 4 ? .ipv4 : .ipv6 }

    /// Why a text is not a CIDR network; the message names it and shows the form.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `text`; host bits below the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    public init(_ text: String) throws {
        let parts = text.trimmingWhitespace.split(separator: "/", omittingEmptySubsequences: false)
        let example = "e.g. 10.0.0.0/8 or 2001:db8::/32"
        guard (1...2).contains(parts.count), let bytes = IPLiteral.bytes(String(parts[0])) else {
            throw ParseError(description: "'\(text)' is not a network in CIDR notation (\(example))")
        }
        let maximum = bytes.count * 8
        var length = maximum
        if parts.count == 2 {
            guard let given = Int(parts[1]), parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber) else {
                throw ParseError(description: "'\(text)': the prefix length after '/' must be a number (\(example))")
            }
            guard (0...maximum).contains(given) else {
                throw ParseError(description: "'\(text)': prefix length /\(given) is out of range for \(bytes.count == 4 ? "IPv4" : "IPv6") (0–\(maximum))")
            }
            length = given
        }
        network = Self.masked(bytes, to: length)
        prefixLength = length
    }

    /// The canonical text: the network address and its prefix length.
    public var description: String { "\(IPLiteral.text(network))/\(prefixLength)" }

    /// Whether `address` (an IP literal) lies in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`, as a dual-stack socket reports an IPv4 client) counts as its
    /// IPv4 address; anything that is not an IP literal is outside.
    public func contains(_ address: String) -> Bool {
        guard var bytes = IPLiteral.bytes(address) else { return false }
        if bytes.count == 16 && network.count == 4 && bytes[0..<10].allSatisfy({ $0 == 0 })
            && bytes[10] == 0xFF && bytes[11] == 0xFF
        {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == network.count else { return false }
        return Self.masked(bytes, to: prefixLength) == network
    }

    static func masked(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = min(max(length - index * 8, 0), 8)
            return bits == 8 ? byte : byte & ~(0xFF >> bits)
        }
    }
}
