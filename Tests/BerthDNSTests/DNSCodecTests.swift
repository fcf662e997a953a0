import Testing

@testable import BerthDNS

struct DNSQueryTests {
    @Test func encodesAQueryWithEDNS0() throws {
        let query = try DNSQuery(id: 0xBEEF, name: "Example.NET.", type: .mx)
        #expect(query.question.name == "example.net")
        #expect(query.encoded() == hexBytes("""
            beef 0100 0001 0000 0000 0001
            07 6578616d706c65 03 6e6574 00 000f 0001
            00 0029 04d0 0000 0000 0000
            """))
        #expect(query.encoded(udpPayload: nil).count == 12 + 17)
    }

    @Test func queryParsesBackAsItsOwnQuestion() throws {
        let query = try DNSQuery(id: 7, name: "mx.example.org", type: .aaaa)
        let message = try DNSMessage(parsing: query.encoded())
        #expect(message.header == DNSHeader(id: 7))
        #expect(message.questions == [query.question])
        #expect(message.additionals.map(\.type) == [.opt])
    }

    static let badNames: [(String, String)] = [
        ("", "the name is empty"),
        (".", "the name is empty"),
        ("a..b", "it has an empty label"),
        (String(repeating: "a", count: 64) + ".example", "a label is longer than 63 octets"),
        (Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: "."), "it is longer than 255 octets"),
        ("exämple.net", "only printable ASCII is allowed; convert IDNs to A-labels"),
        ("a b.example", "only printable ASCII is allowed; convert IDNs to A-labels"),
    ]

    @Test(arguments: badNames)
    func refusesBadNames(_ name: String, _ reason: String) {
        #expect(throws: DNSError.invalidName(name: name, reason: reason)) { try DNSQuery(id: 1, name: name, type: .a) }
    }

    @Test func longestNameIsAccepted() throws {
        // 3 × 64 + 62 + 1 = 255 octets on the wire.
        let name = Array(repeating: String(repeating: "a", count: 63), count: 3).joined(separator: ".") + "." + String(repeating: "b", count: 61)
        #expect(try DNSQuery(id: 1, name: name, type: .a).encoded(udpPayload: nil).count == 12 + 255 + 4)
    }
}

struct DNSAddressTextTests {
    static let ipv6: [([UInt16], String)] = [
        ([0, 0, 0, 0, 0, 0, 0, 1], "::1"),
        ([0, 0, 0, 0, 0, 0, 0, 0], "::"),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], "2001:db8::1"),
        ([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1:1:1:1:1"),  // §4.2.2: one zero group stays
        ([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], "2001:db8::1:0:0:1"),  // §4.2.3: the first of equal runs
        ([0x2001, 0, 0, 1, 0, 0, 0, 1], "2001:0:0:1::1"),  // the longest run
        ([0xFE80, 0, 0, 0, 0x0ABC, 0xDEF0, 0, 0], "fe80::abc:def0:0:0"),
        ([0x2001, 0xDB8, 0xAAAA, 0xBBBB, 0xCCCC, 0xDDDD, 0xEEEE, 0], "2001:db8:aaaa:bbbb:cccc:dddd:eeee:0"),
        ([0, 0, 0, 0, 0, 0xFFFF, 0xC000, 0x0201], "::ffff:192.0.2.1"),  // §5
    ]

    @Test(arguments: ipv6)
    func ipv6IsWrittenPerRFC5952(_ groups: [UInt16], _ text: String) {
        #expect(DNSRecordData.IPv6(groups: groups).description == text)
    }

    @Test func ipv4IsADottedQuad() {
        #expect(DNSRecordData.IPv4(0xC000_02FF).description == "192.0.2.255")
    }
}
