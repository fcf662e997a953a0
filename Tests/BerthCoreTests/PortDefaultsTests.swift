import Testing
@testable import BerthCore

@Suite("Port defaults")
struct PortDefaultsTests {
    static func make() -> [Port] {
        var next = 0
        return Port.defaults { next += 1; return "p\(next)" }
    }

    @Test("nine ports, as BINDINGS.md lists them")
    func table() {
        let rows = Self.make().map { "\($0.name)|\($0.protocol.rawValue)|\($0.encryption.rawValue)|\($0.port)|\($0.tlsRequired)" }
        #expect(rows == [
            "SMTP|smtp|tls|25|false",
            "SMTP SSL|smtp|ssl|465|false",
            "Submission|submission|tls|587|true",
            "IMAP|imap|tls|143|false",
            "IMAP SSL|imap|ssl|993|false",
            "POP|pop|tls|110|false",
            "POP SSL|pop|ssl|995|false",
            "LDAP|ldap|tls|389|false",
            "LDAP SSL|ldap|ssl|636|false",
        ])
    }

    @Test("ids come from makeID, distinct; no certificate set")
    func ids() {
        let ports = Self.make()
        #expect(ports.map(\.id) == (1...9).map { "p\($0)" })
        #expect(ports.allSatisfy { $0.certificatePath == nil && $0.certificateSource == nil && $0.description.isEmpty })
    }

    @Test("only Submission requires TLS")
    func tlsRequired() {
        #expect(Self.make().filter(\.tlsRequired).map(\.name) == ["Submission"])
    }

    @Test("the defaults, assigned to every address, pass validation")
    func validates() throws {
        let ports = Self.make()
        let ids = ports.map(\.id)
        let bindings = Bindings(ports: ports, ipAddresses: [
            Fixture.ip("127.0.0.1", ids), Fixture.ip("192.0.2.1", ids), Fixture.ip("::1", ids),
        ])
        try Validation.validate(bindings, changedPortIDs: Set(ids))
    }

    @Test("defaultTLSRequired", arguments: [MailProtocol.smtp, .submission, .imap, .pop, .ldap])
    func defaultTLSRequired(proto: MailProtocol) {
        for encryption in Encryption.allCases {
            #expect(Port.defaultTLSRequired(protocol: proto, encryption: encryption) == (proto == .submission && encryption == .tls))
        }
    }
}
