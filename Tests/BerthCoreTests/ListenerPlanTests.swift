import Testing
@testable import BerthCore

@Suite("ListenerPlan")
struct ListenerPlanTests {
    static let bindings = Bindings(
        ports: [
            Fixture.port("1", "SMTP", .smtp, .tls, number: 25),
            Fixture.port("2", "Submission", .submission, .tls, number: 587),
            Fixture.port("3", "IMAP SSL", .imap, .ssl, number: 993, certificatePath: "/etc/imap.pem"),
            Fixture.port("4", "Unassigned", .pop, .none, number: 110),
        ],
        ipAddresses: [
            Fixture.ip("0.0.0.0", ["3"]),
            Fixture.ip("192.0.2.1", ["1", "2"], hostname: "greeting.example.net"),
            Fixture.ip("192.0.2.2", ["1"], hostname: "own.example.net"),
            Fixture.ip("192.0.2.3", ["1"]),
            Fixture.ip("::1", ["1", "2"]),
        ])

    static let domains = [
        Domain(name: "example.com", ipAddress: "192.0.2.1"),
        Domain(name: "example.org", ipAddress: "192.0.2.2"),
        Domain(name: "example.net", ipAddress: "192.0.2.3"),
    ]

    @Test("one spec per (IP, port) assignment")
    func onePerAssignment() {
        let specs = ListenerPlan.make(bindings: Self.bindings, domains: Self.domains, serverHostname: "mx.example.com").specs
        let keys = specs.map { "\($0.key)/\($0.portID)" }
        #expect(keys == [
            "0.0.0.0:993/3", "192.0.2.1:25/1", "192.0.2.1:587/2", "192.0.2.2:25/1", "192.0.2.3:25/1",
            "[::1]:25/1", "[::1]:587/2",
        ])
        #expect(Set(specs.map(\.key)).count == specs.count)
        #expect(!specs.contains { $0.portID == "4" })
    }

    @Test("greeting name: IP hostname, else the domain on that IP, else the server's", arguments: [
        ("192.0.2.1", "greeting.example.net"),
        ("192.0.2.2", "own.example.net"),
        ("192.0.2.3", "example.net"),
        ("::1", "mx.example.com"),
        ("0.0.0.0", "mx.example.com"),
    ])
    func hostnamePrecedence(address: String, hostname: String) {
        let specs = ListenerPlan.make(bindings: Self.bindings, domains: Self.domains, serverHostname: "mx.example.com").specs
        let matching = specs.filter { $0.address == address }
        #expect(!matching.isEmpty)
        #expect(matching.allSatisfy { $0.hostname == hostname })
    }

    @Test("specs carry the port's fields")
    func fields() throws {
        let specs = ListenerPlan.make(bindings: Self.bindings, domains: [], serverHostname: "mx.example.com").specs
        let imap = try #require(specs.first { $0.portID == "3" })
        #expect(imap.address == "0.0.0.0")
        #expect(imap.family == .ipv4)
        #expect(imap.source == .wildcard)
        #expect(imap.port == 993)
        #expect(imap.portName == "IMAP SSL")
        #expect(imap.protocol == .imap)
        #expect(imap.encryption == .ssl)
        #expect(imap.tlsRequired == false)
        #expect(imap.certificate == CertificateSource(certificatePath: "/etc/imap.pem"))
        let submission = try #require(specs.first { $0.portID == "2" && $0.address == "::1" })
        #expect(submission.family == .ipv6)
        #expect(submission.tlsRequired)
        #expect(submission.certificate == nil)
        #expect(submission.key.description == "[::1]:587")
    }

    @Test("unknown port ids in an entry are skipped, not crashed on")
    func unknownIDs() {
        let bindings = Bindings(ports: [Fixture.port("1", "SMTP", number: 25)], ipAddresses: [Fixture.ip("192.0.2.1", ["9", "1"])])
        let specs = ListenerPlan.make(bindings: bindings, domains: [], serverHostname: "h").specs
        #expect(specs.map(\.portID) == ["1"])
    }

    @Test("socket identity is protocol and encryption only")
    func socketIdentity() {
        let a = ListenerPlan.make(bindings: Self.bindings, domains: [], serverHostname: "a.example").specs
        let b = ListenerPlan.make(bindings: Self.bindings, domains: Self.domains, serverHostname: "b.example").specs
        #expect(a.map(\.socketIdentity) == b.map(\.socketIdentity))
        #expect(a != b)
    }
}
