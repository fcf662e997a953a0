import Testing
@testable import BerthCore

@Suite("IPLiteral")
struct IPLiteralTests {
    @Test("canonical text form", arguments: [
        ("127.0.0.1", "127.0.0.1", AddressFamily.ipv4),
        ("0.0.0.0", "0.0.0.0", .ipv4),
        ("255.255.255.255", "255.255.255.255", .ipv4),
        ("::", "::", .ipv6),
        ("::1", "::1", .ipv6),
        ("0:0::1", "::1", .ipv6),
        ("0:0:0:0:0:0:0:1", "::1", .ipv6),
        ("[::1]", "::1", .ipv6),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", .ipv6),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", .ipv6),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329", .ipv6),
        ("::FFFF:127.0.0.1", "::ffff:127.0.0.1", .ipv6),
        ("FE80::1", "fe80::1", .ipv6),
        // RFC 5952 §5: dotted-quad tails only for IPv4-mapped (and translated) addresses;
        // glibc's inet_ntop still prints the deprecated IPv4-compatible form "::0.1.0.2".
        ("0:0::1:2", "::1:2", .ipv6),
        ("::c000:201", "::c000:201", .ipv6),
    ] as [(String, String, AddressFamily)])
    func canonical(_ row: (String, String, AddressFamily)) throws {
        let result = try #require(IPLiteral.canonical(row.0))
        #expect(result.address == row.1)
        #expect(result.family == row.2)
        // Canonical forms are fixed points.
        #expect(IPLiteral.canonical(result.address)?.address == result.address)
    }

    @Test("not IP literals", arguments: [
        "", "localhost", "mail.example.com", "256.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.4 ", " ::1",
        "::1::", ":::", "2001:db8::g", "[::1", "::1]", "[]", "1.2.3.4/24", "fe80::1%eth0",
        String(repeating: "1", count: 80),
    ])
    func invalid(text: String) {
        #expect(IPLiteral.canonical(text) == nil)
    }

    @Test("link-local", arguments: [
        ("169.254.0.1", true), ("169.254.255.255", true), ("fe80::1", true), ("febf::1", true),
        ("fea0::1", true), ("fec0::1", false), ("169.255.0.1", false), ("127.0.0.1", false), ("::1", false),
        ("2001:db8::1", false),
    ])
    func linkLocal(address: String, expected: Bool) {
        #expect(IPLiteral.isLinkLocal(address) == expected)
    }

    @Test("IPv4 loopback", arguments: [("127.0.0.1", true), ("127.1.2.3", true), ("128.0.0.1", false), ("::1", false)])
    func loopback(address: String, expected: Bool) {
        #expect(IPLiteral.isIPv4Loopback(address) == expected)
    }
}
