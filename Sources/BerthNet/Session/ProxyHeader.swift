import BerthCore

/// The PROXY protocol header a load balancer puts before a connection's first byte
/// (HAProxy's "The PROXY protocol", versions 1 and 2), as a pure parser with limits.
/// Only the source address matters here: it becomes the client's address everywhere.
public enum ProxyHeader: Sendable, Hashable {
    /// The proxy relayed a client (TCP over IPv4 or IPv6).
    case proxied(source: String, sourcePort: Int)
    /// v2 LOCAL, or v1 UNKNOWN: the proxy's own connection (a health check); the peer's
    /// address stands.
    case local

    public enum ParseResult: Sendable, Hashable {
        case needMoreData
        /// The header, and how many bytes it took; the rest is the protocol's.
        case header(ProxyHeader, length: Int)
        case invalid(String)
    }

    /// v1: "PROXY TCP4 a b p q\r\n" is at most 107 bytes (spec §2.1).
    public static let v1MaxLength = 107
    /// v2: the fixed part and the address block; TLVs after the addresses are skipped.
    /// Bounded well below the format's 64 KiB so a peer cannot make us buffer much.
    public static let v2MaxLength = 16 + 2048
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)

    public static func parse(_ input: some Collection<UInt8>) -> ParseResult {
        let bytes = Array(input.prefix(v2MaxLength))
        // Decide the version from what has arrived so far.
        let v2Prefix = bytes.prefix(v2Signature.count)
        if v2Prefix.elementsEqual(v2Signature.prefix(v2Prefix.count)) && !bytes.isEmpty && bytes[0] == 0x0D {
            return bytes.count < v2Signature.count ? .needMoreData : parseV2(bytes)
        }
        let v1Seen = bytes.prefix(v1Prefix.count)
        if v1Seen.elementsEqual(v1Prefix.prefix(v1Seen.count)) {
            return bytes.count < v1Prefix.count ? .needMoreData : parseV1(bytes)
        }
        return .invalid("no PROXY protocol header")
    }

    /// Spec §2.1: `PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n`.
    static func parseV1(_ bytes: [UInt8]) -> ParseResult {
        guard let lf = bytes.prefix(v1MaxLength).firstIndex(of: 0x0A) else {
            return bytes.count >= v1MaxLength ? .invalid("PROXY v1 header longer than 107 bytes") : .needMoreData
        }
        guard lf >= 1, bytes[lf - 1] == 0x0D else { return .invalid("PROXY v1 header does not end in CRLF") }
        let line = String(decoding: bytes[..<(lf - 1)], as: UTF8.self)
        let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 2 else { return .invalid("PROXY v1 header without a protocol") }
        if fields[1] == "UNKNOWN" { return .header(.local, length: lf + 1) }
        guard fields.count == 6, fields[1] == "TCP4" || fields[1] == "TCP6" else {
            return .invalid("PROXY v1 header: expected 'PROXY TCP4|TCP6 src dst sport dport'")
        }
        let family: AddressKind = fields[1] == "TCP4" ? .v4 : .v6
        guard let source = canonical(fields[2], family), canonical(fields[3], family) != nil else {
            return .invalid("PROXY v1 header: bad \(fields[1]) address")
        }
        guard let sourcePort = port(fields[4]), port(fields[5]) != nil else { return .invalid("PROXY v1 header: bad port") }
        return .header(.proxied(source: source, sourcePort: sourcePort), length: lf + 1)
    }

    /// Spec §2.2: signature, version/command, family/transport, length, addresses, TLVs.
    static func parseV2(_ bytes: [UInt8]) -> ParseResult {
        guard bytes.count >= 16 else { return .needMoreData }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid("PROXY v2 header: unsupported version \(versionCommand >> 4)") }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        guard 16 + length <= v2MaxLength else { return .invalid("PROXY v2 header longer than \(v2MaxLength) bytes") }
        guard bytes.count >= 16 + length else { return .needMoreData }
        let total = 16 + length
        switch versionCommand & 0x0F {
        case 0x0: return .header(.local, length: total)  // LOCAL: health check from the proxy itself
        case 0x1: break                                  // PROXY
        default: return .invalid("PROXY v2 header: unknown command")
        }
        let body = bytes[16..<total]
        switch bytes[13] {
        case 0x11:  // TCP over IPv4
            guard length >= 12 else { return .invalid("PROXY v2 header: IPv4 address block too short") }
            let a = Array(body.prefix(4))
            let source = a.map(String.init).joined(separator: ".")
            let port = Int(body[body.startIndex + 8]) << 8 | Int(body[body.startIndex + 9])
            return .header(.proxied(source: source, sourcePort: port), length: total)
        case 0x21:  // TCP over IPv6
            guard length >= 36 else { return .invalid("PROXY v2 header: IPv6 address block too short") }
            let a = Array(body.prefix(16))
            var groups: [String] = []
            for i in stride(from: 0, to: 16, by: 2) { groups.append(String(Int(a[i]) << 8 | Int(a[i + 1]), radix: 16)) }
            let text = groups.joined(separator: ":")
            let source = IPLiteral.canonical(text)?.address ?? text
            let port = Int(body[body.startIndex + 32]) << 8 | Int(body[body.startIndex + 33])
            return .header(.proxied(source: source, sourcePort: port), length: total)
        case 0x00:  // UNSPEC: the peer stands
            return .header(.local, length: total)
        default:
            return .invalid("PROXY v2 header: only TCP over IPv4 or IPv6 is accepted")
        }
    }

    enum AddressKind { case v4, v6 }

    private static func canonical(_ text: String, _ kind: AddressKind) -> String? {
        guard let (address, family) = IPLiteral.canonical(text), !text.hasPrefix("[") else { return nil }
        return (family == .ipv4) == (kind == .v4) ? address : nil
    }

    private static func port(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text),
              (0...65535).contains(value)
        else { return nil }
        return value
    }
}
