import Testing
@testable import BerthCore

/// BINDINGS.md "Port" field rules and rules 1 and 5, through `Validation.validate`.
@Suite("Validation")
struct ValidationTests {
    struct FieldCase: Sendable, CustomTestStringConvertible {
        var label: String
        var port: Port
        /// nil: accepted; else the field the refusal must name.
        var refusedField: String?
        var testDescription: String { label }
    }

    static let fieldCases: [FieldCase] = [
        .init(label: "plain smtp", port: Fixture.port("1", "SMTP", number: 25), refusedField: nil),
        .init(label: "empty name", port: Fixture.port("1", "", number: 25), refusedField: "name"),
        .init(label: "blank name", port: Fixture.port("1", "   ", number: 25), refusedField: "name"),
        .init(label: "name of 64", port: Fixture.port("1", String(repeating: "n", count: 64), number: 25), refusedField: nil),
        .init(label: "name of 65", port: Fixture.port("1", String(repeating: "n", count: 65), number: 25), refusedField: "name"),
        .init(label: "control char in name", port: Fixture.port("1", "SM\u{7}TP", number: 25), refusedField: "name"),
        .init(label: "port 0", port: Fixture.port("1", "P", number: 0), refusedField: "port"),
        .init(label: "port -1", port: Fixture.port("1", "P", number: -1), refusedField: "port"),
        .init(label: "port 1", port: Fixture.port("1", "P", number: 1), refusedField: nil),
        .init(label: "port 65535", port: Fixture.port("1", "P", number: 65535), refusedField: nil),
        .init(label: "port 65536", port: Fixture.port("1", "P", number: 65536), refusedField: "port"),
        .init(label: "description 512", port: Fixture.port("1", "P", number: 25, description: String(repeating: "d", count: 512)), refusedField: nil),
        .init(label: "description 513", port: Fixture.port("1", "P", number: 25, description: String(repeating: "d", count: 513)), refusedField: "description"),
        .init(label: "tlsRequired with tls", port: Fixture.port("1", "P", .smtp, .tls, number: 25, tlsRequired: true), refusedField: nil),
        .init(label: "tlsRequired with none", port: Fixture.port("1", "P", .smtp, .none, number: 25, tlsRequired: true), refusedField: "tlsRequired"),
        .init(label: "tlsRequired with ssl", port: Fixture.port("1", "P", .smtp, .ssl, number: 465, tlsRequired: true), refusedField: "tlsRequired"),
        .init(label: "certificate with ssl", port: Fixture.port("1", "P", .imap, .ssl, number: 993, certificatePath: "/c.pem"), refusedField: nil),
        .init(label: "certificate with tls", port: Fixture.port("1", "P", .imap, .tls, number: 143, certificatePath: "/c.pem", privateKeyPath: "/k.pem"), refusedField: nil),
        .init(label: "certificate with none", port: Fixture.port("1", "P", .imap, .none, number: 143, certificatePath: "/c.pem"), refusedField: "certificatePath"),
        .init(label: "key with none", port: Fixture.port("1", "P", .imap, .none, number: 143, privateKeyPath: "/k.pem"), refusedField: "privateKeyPath"),
        .init(label: "key without certificate", port: Fixture.port("1", "P", .imap, .ssl, number: 993, privateKeyPath: "/k.pem"), refusedField: "privateKeyPath"),
    ]

    @Test("port field rules", arguments: fieldCases)
    func fieldRules(_ row: FieldCase) {
        let bindings = Bindings(ports: [row.port])
        let error = Fixture.refusal { try Validation.validate(bindings) }
        if let field = row.refusedField {
            #expect(error?.code == .validationFailed)
            #expect(error?.field == field)
        } else {
            #expect(error == nil)
        }
    }

    @Test("port names are unique, case-insensitively", arguments: [
        ("SMTP", "smtp"), ("Mail", "MAIL"), ("Submission", "sUbMiSsIoN"),
    ])
    func nameTaken(first: String, second: String) {
        let bindings = Bindings(ports: [Fixture.port("1", first, number: 25), Fixture.port("2", second, number: 26)])
        let error = Fixture.refusal { try Validation.validate(bindings) }
        #expect(error?.code == .nameTaken)
        #expect(error?.field == "name")
    }

    @Test("distinct names are accepted")
    func distinctNames() {
        let bindings = Bindings(ports: [Fixture.port("1", "SMTP", number: 25), Fixture.port("2", "SMTP SSL", number: 465)])
        #expect(Fixture.refusal { try Validation.validate(bindings) } == nil)
    }

    struct ConflictCase: Sendable, CustomTestStringConvertible {
        var label: String
        var ipAddresses: [IPAddressEntry]
        var conflict: Bool
        var testDescription: String { label }
    }

    /// Ports "1" (A) and "2" (B) both use number 2525; "3" (C) uses 2526.
    static let conflictCases: [ConflictCase] = [
        .init(label: "same number, same IP", ipAddresses: [Fixture.ip("192.0.2.1", ["1", "2"])], conflict: true),
        .init(label: "same number, different IPs", ipAddresses: [Fixture.ip("192.0.2.1", ["1"]), Fixture.ip("192.0.2.2", ["2"])], conflict: false),
        .init(label: "different numbers, same IP", ipAddresses: [Fixture.ip("192.0.2.1", ["1", "3"])], conflict: false),
        .init(label: "0.0.0.0 vs 127.0.0.2", ipAddresses: [Fixture.ip("0.0.0.0", ["1"]), Fixture.ip("127.0.0.2", ["2"], source: .manual)], conflict: true),
        .init(label: "127.0.0.2 vs 0.0.0.0 (wildcard listed last)", ipAddresses: [Fixture.ip("127.0.0.2", ["2"], source: .manual), Fixture.ip("0.0.0.0", ["1"])], conflict: true),
        .init(label: ":: vs ::1", ipAddresses: [Fixture.ip("::", ["1"]), Fixture.ip("::1", ["2"])], conflict: true),
        .init(label: ":: vs 127.0.0.2 (other family)", ipAddresses: [Fixture.ip("::", ["1"]), Fixture.ip("127.0.0.2", ["2"], source: .manual)], conflict: false),
        .init(label: "0.0.0.0 vs ::1 (other family)", ipAddresses: [Fixture.ip("0.0.0.0", ["1"]), Fixture.ip("::1", ["2"])], conflict: false),
        .init(label: "0.0.0.0 and :: same number", ipAddresses: [Fixture.ip("0.0.0.0", ["1"]), Fixture.ip("::", ["2"])], conflict: false),
        .init(label: "0.0.0.0 vs 127.0.0.2 different number", ipAddresses: [Fixture.ip("0.0.0.0", ["1"]), Fixture.ip("127.0.0.2", ["3"], source: .manual)], conflict: false),
    ]

    static let conflictPorts = [
        Fixture.port("1", "Alpha", number: 2525), Fixture.port("2", "Bravo", number: 2525),
        Fixture.port("3", "Charlie", number: 2526),
    ]

    @Test("rule 1: one port per number per IP, wildcards cover their family", arguments: conflictCases)
    func portConflicts(_ row: ConflictCase) {
        let bindings = Bindings(ports: Self.conflictPorts, ipAddresses: row.ipAddresses)
        let error = Fixture.refusal { try Validation.validate(bindings) }
        if row.conflict {
            #expect(error?.code == .portConflict)
            #expect(error?.field == "port")
            let message = error?.message ?? ""
            #expect(message.contains("Alpha"), "message names the first port: \(message)")
            #expect(message.contains("Bravo"), "message names the second port: \(message)")
            let specific = row.ipAddresses.first { !$0.isWildcard }!.address
            #expect(message.contains(specific), "message names the IP: \(message)")
            #expect(message.contains("2525"))
        } else {
            #expect(error == nil)
        }
    }

    @Test("a conflict message names both ports and the IP")
    func conflictMessage() {
        let bindings = Bindings(ports: Self.conflictPorts, ipAddresses: [Fixture.ip("192.0.2.7", ["1", "2"])])
        let error = Fixture.refusal { try Validation.validate(bindings) }
        #expect(error?.message.contains("'Alpha'") == true)
        #expect(error?.message.contains("'Bravo'") == true)
        #expect(error?.message.contains("192.0.2.7") == true)
    }

    struct AssignmentCase: Sendable, CustomTestStringConvertible {
        var label: String
        var entry: IPAddressEntry
        var field: String
        var testDescription: String { label }
    }

    static let assignmentCases: [AssignmentCase] = [
        .init(label: "unknown port id", entry: Fixture.ip("192.0.2.1", ["1", "99"]), field: "ports"),
        .init(label: "same port twice", entry: Fixture.ip("192.0.2.1", ["1", "1"]), field: "ports"),
        .init(label: "non-canonical IPv6", entry: Fixture.ip("0:0::1", ["1"]), field: "address"),
        .init(label: "upper-case IPv6", entry: Fixture.ip("2001:DB8::1", ["1"]), field: "address"),
        .init(label: "not an address", entry: Fixture.ip("mail.example.com", ["1"]), field: "address"),
        .init(label: "bad hostname", entry: Fixture.ip("192.0.2.1", ["1"], hostname: "-bad-.example"), field: "hostname"),
    ]

    @Test("rule 5 and address fields", arguments: assignmentCases)
    func assignments(_ row: AssignmentCase) {
        let bindings = Bindings(ports: [Fixture.port("1", "SMTP", number: 25)], ipAddresses: [row.entry])
        let error = Fixture.refusal { try Validation.validate(bindings) }
        #expect(error?.code == .validationFailed)
        #expect(error?.field == row.field)
    }

    @Test("the same address listed twice is refused")
    func duplicateAddress() {
        let bindings = Bindings(ipAddresses: [Fixture.ip("192.0.2.1"), Fixture.ip("192.0.2.1")])
        #expect(Fixture.refusal { try Validation.validate(bindings) }?.code == .conflict)
    }

    @Test("a port assigned to no IP is legal and warned about")
    func unassignedWarning() throws {
        let port = Fixture.port("1", "SMTP", number: 25)
        let bindings = Bindings(ports: [port], ipAddresses: [Fixture.ip("192.0.2.1")])
        try Validation.validate(bindings)
        #expect(bindings.warnings(for: port).contains { $0.contains("assigned to no IP address") })
        let assigned = Bindings(ports: [port], ipAddresses: [Fixture.ip("192.0.2.1", ["1"])])
        #expect(assigned.warnings(for: port).isEmpty)
    }

    @Test("submission without TLS is legal and warned about: AUTH needs TLS")
    func plainSubmissionWarning() {
        let port = Port(id: "1", name: "Sub", protocol: .submission, encryption: .none, port: 587)
        let bindings = Bindings(ports: [port], ipAddresses: [Fixture.ip("192.0.2.1", ["1"])])
        #expect(bindings.warnings(for: port).contains { $0.contains("submission without TLS") })
        let tls = Port(id: "1", name: "Sub", protocol: .submission, encryption: .tls, port: 587)
        #expect(Bindings(ports: [tls], ipAddresses: [Fixture.ip("192.0.2.1", ["1"])]).warnings(for: tls).isEmpty)
    }

    @Test("certificates are checked only for changed TLS ports, and failures become bad_certificate")
    func certificateCheck() {
        let bindings = Bindings(ports: [
            Fixture.port("1", "SMTP", .smtp, .tls, number: 25, certificatePath: "/etc/a.pem"),
            Fixture.port("2", "IMAP", .imap, .ssl, number: 993, certificatePath: "/etc/b.pem"),
            Fixture.port("3", "POP", .pop, .ssl, number: 995),
        ])
        struct Unreadable: Error {}
        var checked: [String] = []
        let error = Fixture.refusal {
            try Validation.validate(bindings, changedPortIDs: ["2", "3"]) { source in
                checked.append(source.certificatePath)
                throw Unreadable()
            }
        }
        #expect(checked == ["/etc/b.pem"])
        #expect(error?.code == .badCertificate)
        #expect(error?.field == "certificatePath")
        #expect(error?.message.contains("IMAP") == true)
    }
}
