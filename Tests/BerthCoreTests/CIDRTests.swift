import Testing
@testable import BerthCore

@Suite("CIDR")
struct CIDRTests {
    @Test("parses and prints the canonical network", arguments: [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        (" 192.0.2.7 ", "192.0.2.7/32"),
        ("192.0.2.255/25", "192.0.2.128/25"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:DB8::1/32", "2001:db8::/32"),
        ("2001:db8:0:0:0:0:0:1", "2001:db8::1/128"),
        ("::/0", "::/0"),
        ("fe80::1234/10", "fe80::/10"),
    ])
    func canonical(_ row: (String, String)) throws {
        #expect(try CIDR(row.0).description == row.1)
    }

    @Test("refuses what is not a network, saying why", arguments: [
        ("", "CIDR notation"),
        ("10.0.0/8", "CIDR notation"),
        ("example.com/8", "CIDR notation"),
        ("10.0.0.0/33", "out of range for IPv4 (0–32)"),
        ("2001:db8::/129", "out of range for IPv6 (0–128)"),
        ("10.0.0.0/-1", "must be a number"),
        ("10.0.0.0/", "must be a number"),
        ("10.0.0.0/8/8", "CIDR notation"),
        ("10.0.0.0/ 8", "must be a number"),
    ])
    func refused(_ row: (String, String)) {
        #expect {
            try CIDR(row.0)
        } throws: { error in
            "\(error)".contains(row.1)
        }
    }

    @Test("contains", arguments: [
        ("10.0.0.0/8", "10.255.1.2", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("192.0.2.128/25", "192.0.2.127", false),
        ("192.0.2.128/25", "192.0.2.128", true),
        ("192.0.2.1/32", "192.0.2.1", true),
        ("192.0.2.1/32", "192.0.2.2", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("0.0.0.0/0", "::1", false),
        ("127.0.0.0/8", "::ffff:127.0.0.1", true),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("2001:db8::/32", "10.0.0.1", false),
        ("::/0", "::ffff:10.0.0.1", true),
        ("10.0.0.0/8", "not-an-ip", false),
        ("10.0.0.0/8", "[10.0.0.1]", true),
    ])
    func contains(_ row: (String, String, Bool)) throws {
        #expect(try CIDR(row.0).contains(row.1) == row.2)
    }
}
