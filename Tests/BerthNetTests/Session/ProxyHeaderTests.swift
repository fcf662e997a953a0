import Testing

@testable import BerthNet

struct ProxyHeaderTests {
    static func v2(command: UInt8 = 0x21, family: UInt8 = 0x11, addresses: [UInt8], tlv: [UInt8] = []) -> [UInt8] {
        let body = addresses + tlv
        return ProxyHeader.v2Signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    static let v4Block: [UInt8] = [192, 0, 2, 7, 10, 0, 0, 1, 0xC3, 0x50, 0x00, 0x19]  // 192.0.2.7:50000 -> 10.0.0.1:25
    static let v6Block: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2] + [0x04, 0x00, 0x01, 0xD1]

    static let fixtures: [(label: String, input: [UInt8], expected: ProxyHeader.ParseResult)] = [
        ("v1 TCP4", Array("PROXY TCP4 192.0.2.7 10.0.0.1 50000 25\r\n".utf8),
         .header(.proxied(source: "192.0.2.7", sourcePort: 50000), length: 40)),
        ("v1 TCP6", Array("PROXY TCP6 2001:db8::1 2001:db8::2 1024 465\r\n".utf8),
         .header(.proxied(source: "2001:db8::1", sourcePort: 1024), length: 45)),
        ("v1 TCP6 canonicalised", Array("PROXY TCP6 2001:DB8:0:0::1 ::1 1 2\r\n".utf8),
         .header(.proxied(source: "2001:db8::1", sourcePort: 1), length: 36)),
        ("v1 UNKNOWN", Array("PROXY UNKNOWN\r\n".utf8), .header(.local, length: 15)),
        ("v1 UNKNOWN with addresses", Array("PROXY UNKNOWN ffff:: ffff:: 1 2\r\n".utf8), .header(.local, length: 33)),
        ("v1 partial", Array("PROXY TCP4 192.0".utf8), .needMoreData),
        ("v1 prefix only", Array("PRO".utf8), .needMoreData),
        ("v1 bare LF", Array("PROXY TCP4 192.0.2.7 10.0.0.1 50000 25\n".utf8), .invalid("PROXY v1 header does not end in CRLF")),
        ("v1 family mismatch", Array("PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n".utf8), .invalid("PROXY v1 header: bad TCP4 address")),
        ("v1 leading zeros", Array("PROXY TCP4 192.000.2.7 10.0.0.1 1 2\r\n".utf8), .invalid("PROXY v1 header: bad TCP4 address")),
        ("v1 port too big", Array("PROXY TCP4 192.0.2.7 10.0.0.1 65536 2\r\n".utf8), .invalid("PROXY v1 header: bad port")),
        ("v1 negative port", Array("PROXY TCP4 192.0.2.7 10.0.0.1 -1 2\r\n".utf8), .invalid("PROXY v1 header: bad port")),
        ("v1 missing fields", Array("PROXY TCP4 192.0.2.7\r\n".utf8),
         .invalid("PROXY v1 header: expected 'PROXY TCP4|TCP6 src dst sport dport'")),
        ("v1 UDP", Array("PROXY UDP4 192.0.2.7 10.0.0.1 1 2\r\n".utf8),
         .invalid("PROXY v1 header: expected 'PROXY TCP4|TCP6 src dst sport dport'")),
        ("v1 too long", Array(("PROXY TCP4 " + String(repeating: "1", count: 200)).utf8), .invalid("PROXY v1 header longer than 107 bytes")),
        ("SMTP instead of a header", Array("EHLO client\r\n".utf8), .invalid("no PROXY protocol header")),
        ("TLS hello instead of a header", [0x16, 0x03, 0x01, 0x00], .invalid("no PROXY protocol header")),
        ("v2 TCP4", v2(addresses: v4Block), .header(.proxied(source: "192.0.2.7", sourcePort: 50000), length: 28)),
        ("v2 TCP4 with TLVs", v2(addresses: v4Block, tlv: [0x01, 0x00, 0x02, 0x68, 0x32]),
         .header(.proxied(source: "192.0.2.7", sourcePort: 50000), length: 33)),
        ("v2 TCP6", v2(family: 0x21, addresses: v6Block), .header(.proxied(source: "2001:db8::1", sourcePort: 1024), length: 52)),
        ("v2 LOCAL", v2(command: 0x20, family: 0x00, addresses: []), .header(.local, length: 16)),
        ("v2 UNSPEC", v2(family: 0x00, addresses: []), .header(.local, length: 16)),
        ("v2 partial signature", Array(ProxyHeader.v2Signature.prefix(5)), .needMoreData),
        ("v2 partial body", Array(v2(addresses: v4Block).prefix(20)), .needMoreData),
        ("v2 version 1", v2(command: 0x11, addresses: v4Block), .invalid("PROXY v2 header: unsupported version 1")),
        ("v2 unknown command", v2(command: 0x22, addresses: v4Block), .invalid("PROXY v2 header: unknown command")),
        ("v2 UDP", v2(family: 0x12, addresses: v4Block), .invalid("PROXY v2 header: only TCP over IPv4 or IPv6 is accepted")),
        ("v2 unix", v2(family: 0x31, addresses: [UInt8](repeating: 0, count: 216)),
         .invalid("PROXY v2 header: only TCP over IPv4 or IPv6 is accepted")),
        ("v2 short IPv4 block", v2(addresses: Array(v4Block.prefix(6))), .invalid("PROXY v2 header: IPv4 address block too short")),
        ("v2 length over the cap", ProxyHeader.v2Signature + [0x21, 0x11, 0xFF, 0xFF],
         .invalid("PROXY v2 header longer than \(ProxyHeader.v2MaxLength) bytes")),
    ]

    @Test(arguments: fixtures.indices)
    func parse(_ index: Int) {
        let fixture = Self.fixtures[index]
        #expect(ProxyHeader.parse(fixture.input) == fixture.expected, "\(fixture.label)")
    }

    /// Byte by byte, a valid header is "need more" until it is whole, then the same header.
    @Test(arguments: [0, 1, 17, 19])
    func byteByByte(_ index: Int) {
        let fixture = Self.fixtures[index]
        for count in 0..<fixture.input.count {
            let partial = ProxyHeader.parse(fixture.input.prefix(count))
            #expect(partial == .needMoreData, "\(fixture.label) after \(count) bytes: \(partial)")
        }
        #expect(ProxyHeader.parse(fixture.input + Array("EHLO x\r\n".utf8)) == fixture.expected, "protocol bytes after it are not taken")
    }

    /// Fuzz-style: random and mutated input never crashes, never claims more bytes than it
    /// was given, and never asks for more past the size caps.
    @Test func randomInput() {
        var generator = SystemRandomNumberGenerator()
        let seeds = Self.fixtures.map(\.input)
        for round in 0..<5000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 0...4, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if round % 7 == 0 {
                bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            switch ProxyHeader.parse(bytes) {
            case .header(_, let length): #expect(length <= bytes.count)
            case .needMoreData: #expect(bytes.count < ProxyHeader.v2MaxLength)
            case .invalid: break
            }
        }
    }
}
