import Testing
@testable import BerthCore

/// The pure changes the API applies to a copy of the bindings before validating it.
@Suite("Bindings mutations")
struct BindingsMutationTests {
    static let base = Bindings(
        ports: [
            Fixture.port("1", "SMTP", .smtp, .tls, number: 25),
            Fixture.port("2", "Submission", .submission, .tls, number: 587),
            Fixture.port("3", "IMAP SSL", .imap, .ssl, number: 993, certificatePath: "/etc/imap.pem", privateKeyPath: "/etc/imap.key"),
        ],
        ipAddresses: [
            Fixture.ip("0.0.0.0", ["3"]),
            Fixture.ip("192.0.2.1", ["1", "2"], interface: "eth0"),
            Fixture.ip("::1", ["1", "2", "3"], interface: "lo"),
            Fixture.ip("198.51.100.9", ["1"], source: .manual, present: false),
        ])

    // MARK: addPort

    @Test("addPort builds a port from the patch, with defaults")
    func addPort() throws {
        var bindings = Self.base
        let port = try bindings.addPort(
            id: "9", PortPatch(name: "  Alt Submission ", protocol: .submission, encryption: .tls, port: 2587,
                               assignedTo: ["192.0.2.1", "0:0::1"]))
        #expect(port.name == "Alt Submission")
        #expect(port.tlsRequired)
        #expect(port.description == "")
        #expect(bindings.port("9") == port)
        #expect(bindings.assignedTo("9") == ["192.0.2.1", "::1"])
        try Validation.validate(bindings)
    }

    @Test("addPort: tlsRequired defaults per protocol and encryption", arguments: [
        (MailProtocol.submission, Encryption.tls, true), (.submission, .ssl, false), (.submission, .none, false),
        (.smtp, .tls, false), (.imap, .tls, false), (.pop, .tls, false), (.ldap, .tls, false),
    ] as [(MailProtocol, Encryption, Bool)])
    func addPortTLSDefault(_ row: (MailProtocol, Encryption, Bool)) throws {
        var bindings = Bindings()
        let port = try bindings.addPort(id: "1", PortPatch(name: "P", protocol: row.0, encryption: row.1, port: 1000))
        #expect(port.tlsRequired == row.2)
    }

    @Test("addPort refuses a patch without its required fields", arguments: [
        (PortPatch(protocol: .smtp, port: 25), "name"),
        (PortPatch(name: "X", port: 25), "protocol"),
        (PortPatch(name: "X", protocol: .smtp), "port"),
    ])
    func addPortRequired(patch: PortPatch, field: String) {
        var bindings = Bindings()
        let error = Fixture.refusal { try bindings.addPort(id: "1", patch) }
        #expect(error?.code == .validationFailed)
        #expect(error?.field == field)
    }

    @Test("addPort refuses assignment to an unlisted address")
    func addPortUnlisted() {
        var bindings = Self.base
        let error = Fixture.refusal {
            try bindings.addPort(id: "9", PortPatch(name: "X", protocol: .smtp, port: 26, assignedTo: ["203.0.113.5"]))
        }
        #expect(error?.field == "assignedTo")
    }

    // MARK: updatePort

    @Test("updatePort: a partial patch changes only what it names")
    func partialPatch() throws {
        var bindings = Self.base
        try bindings.updatePort(id: "1", PortPatch(description: "inbound MX"))
        var expected = Self.base.port("1")!
        expected.description = "inbound MX"
        #expect(bindings.port("1") == expected)
        #expect(bindings.ipAddresses == Self.base.ipAddresses)

        try bindings.updatePort(id: "1", PortPatch(name: " Inbound ", port: 2525))
        #expect(bindings.port("1")?.name == "Inbound")
        #expect(bindings.port("1")?.port == 2525)
        #expect(bindings.port("1")?.protocol == .smtp)
        #expect(bindings.port("1")?.encryption == .tls)
        #expect(bindings.port("1")?.description == "inbound MX")
    }

    struct TLSCase: Sendable, CustomTestStringConvertible {
        var label: String
        var start: Port
        var patch: PortPatch
        var tlsRequired: Bool
        var testDescription: String { label }
    }

    static let tlsCases: [TLSCase] = [
        .init(label: "submission tls→ssl drops tlsRequired",
              start: Fixture.port("1", "S", .submission, .tls, number: 587), patch: PortPatch(encryption: .ssl), tlsRequired: false),
        .init(label: "submission ssl→tls defaults it on",
              start: Fixture.port("1", "S", .submission, .ssl, number: 587), patch: PortPatch(encryption: .tls), tlsRequired: true),
        .init(label: "smtp none→tls defaults it off",
              start: Fixture.port("1", "S", .smtp, .none, number: 25), patch: PortPatch(encryption: .tls), tlsRequired: false),
        .init(label: "smtp tls (required)→submission takes the default",
              start: Fixture.port("1", "S", .smtp, .tls, number: 25, tlsRequired: true), patch: PortPatch(protocol: .submission), tlsRequired: true),
        .init(label: "submission tls→smtp takes the default",
              start: Fixture.port("1", "S", .submission, .tls, number: 587), patch: PortPatch(protocol: .smtp), tlsRequired: false),
        .init(label: "explicit tlsRequired wins over the default",
              start: Fixture.port("1", "S", .submission, .ssl, number: 587), patch: PortPatch(encryption: .tls, tlsRequired: false), tlsRequired: false),
        .init(label: "unrelated change keeps an explicit choice",
              start: Fixture.port("1", "S", .smtp, .tls, number: 25, tlsRequired: true), patch: PortPatch(port: 2525), tlsRequired: true),
        .init(label: "unrelated change keeps submission's opt-out",
              start: Fixture.port("1", "S", .submission, .tls, number: 587, tlsRequired: false), patch: PortPatch(name: "T"), tlsRequired: false),
    ]

    @Test("updatePort: tlsRequired follows encryption and protocol changes", arguments: tlsCases)
    func tlsRequiredDefaulting(_ row: TLSCase) throws {
        var bindings = Bindings(ports: [row.start])
        try bindings.updatePort(id: "1", row.patch)
        #expect(bindings.port("1")?.tlsRequired == row.tlsRequired)
        try Validation.validateFields(bindings.port("1")!)
    }

    @Test("updatePort: switching to no encryption drops the certificate fields")
    func switchToPlain() throws {
        var bindings = Self.base
        let changed = try bindings.updatePort(id: "3", PortPatch(encryption: Encryption.none, port: 143))
        let port = try #require(bindings.port("3"))
        #expect(changed)
        #expect(port.certificatePath == nil)
        #expect(port.privateKeyPath == nil)
        #expect(port.certificatePassword == nil)
        try Validation.validate(bindings)
    }

    @Test("updatePort reports whether the certificate inputs changed", arguments: [
        (PortPatch(description: "x"), false),
        (PortPatch(certificatePath: "/etc/other.pem"), true),
        (PortPatch(privateKeyPath: ""), true),
        (PortPatch(certificatePassword: "secret"), true),
        (PortPatch(encryption: .tls), true),
    ])
    func certificateChange(patch: PortPatch, changed: Bool) throws {
        var bindings = Self.base
        let reported = try bindings.updatePort(id: "3", patch)
        #expect(reported == changed)
    }

    @Test("updatePort: empty strings clear optional paths")
    func clearPaths() throws {
        var bindings = Self.base
        try bindings.updatePort(id: "3", PortPatch(certificatePath: "", privateKeyPath: ""))
        #expect(bindings.port("3")?.certificatePath == nil)
        #expect(bindings.port("3")?.privateKeyPath == nil)
    }

    @Test("updatePort: unknown id is not_found")
    func updateUnknown() {
        var bindings = Self.base
        #expect(Fixture.refusal { try bindings.updatePort(id: "42", PortPatch(name: "X")) }?.code == .notFound)
        #expect(bindings == Self.base)
    }

    @Test("updatePort with assignedTo replaces the port's addresses")
    func updateAssigns() throws {
        var bindings = Self.base
        try bindings.updatePort(id: "1", PortPatch(assignedTo: ["::1"]))
        #expect(bindings.assignedTo("1") == ["::1"])
        #expect(bindings.entry("192.0.2.1")?.ports == ["2"])
    }

    // MARK: deletePorts

    @Test("deletePorts removes the ports from every IP")
    func deletePorts() throws {
        var bindings = Self.base
        try bindings.deletePorts(["1", "3"])
        #expect(bindings.ports.map(\.id) == ["2"])
        for entry in bindings.ipAddresses {
            #expect(!entry.ports.contains("1") && !entry.ports.contains("3"), "\(entry.address) still lists a deleted port")
        }
        #expect(bindings.entry("::1")?.ports == ["2"])
        try Validation.validate(bindings)
    }

    @Test("deletePorts refuses unknown ids whole", arguments: [["1", "404"], ["404", "1"], ["404"]])
    func deleteUnknown(ids: [String]) {
        var bindings = Self.base
        #expect(Fixture.refusal { try bindings.deletePorts(ids) }?.code == .notFound)
        #expect(bindings == Self.base)
    }

    @Test("deletePorts refuses an empty list")
    func deleteNone() {
        var bindings = Self.base
        #expect(Fixture.refusal { try bindings.deletePorts([]) }?.code == .validationFailed)
    }

    // MARK: assign

    @Test("assign makes the list exactly the port's addresses")
    func assign() throws {
        var bindings = Self.base
        try bindings.assign(portID: "3", to: ["192.0.2.1", "[::1]"])
        #expect(bindings.assignedTo("3") == ["192.0.2.1", "::1"])
        try bindings.assign(portID: "3", to: [])
        #expect(bindings.assignedTo("3").isEmpty)
        #expect(bindings.assignedTo("1") == Self.base.assignedTo("1"))
    }

    @Test("assign refuses unlisted or invalid addresses", arguments: ["203.0.113.1", "not-an-ip", "::2"])
    func assignRefused(address: String) {
        var bindings = Self.base
        let error = Fixture.refusal { try bindings.assign(portID: "1", to: ["192.0.2.1", address]) }
        #expect(error?.code == .validationFailed)
        #expect(error?.field == "assignedTo")
        #expect(bindings == Self.base)
    }

    // MARK: manual addresses

    @Test("addManualAddress stores the canonical form", arguments: [
        ("2001:db8:0:0::1:2", "2001:db8::1:2", AddressFamily.ipv6), ("2001:DB8:0:0::5", "2001:db8::5", .ipv6),
        ("[2001:db8::6]", "2001:db8::6", .ipv6), ("203.0.113.4", "203.0.113.4", .ipv4),
    ] as [(String, String, AddressFamily)])
    func addManualCanonical(_ row: (String, String, AddressFamily)) throws {
        var bindings = Self.base
        let entry = try bindings.addManualAddress(row.0, AddressPatch(hostname: "MX.Example.COM"), present: false)
        #expect(entry.address == row.1)
        #expect(entry.family == row.2)
        #expect(entry.source == .manual)
        #expect(entry.interface == nil)
        #expect(entry.present == false)
        #expect(entry.hostname == "mx.example.com")
        #expect(bindings.entry(row.1) == entry)
    }

    @Test("\"0:0::1\" is \"::1\"")
    func zeroZeroOne() throws {
        var bindings = Bindings()
        let entry = try bindings.addManualAddress("0:0::1", AddressPatch(), present: true)
        #expect(entry.address == "::1")
    }

    @Test("addManualAddress refuses garbage, duplicates and link-local", arguments: [
        ("mail.example.com", BindingsError.Code.validationFailed), ("", .validationFailed), ("1.2.3", .validationFailed),
        ("192.0.2.1", .conflict), ("0:0:0::1", .conflict), ("0.0.0.0", .conflict),
        ("fe80::1", .validationFailed), ("169.254.10.1", .validationFailed),
    ] as [(String, BindingsError.Code)])
    func addManualRefused(_ row: (String, BindingsError.Code)) {
        var bindings = Self.base
        let error = Fixture.refusal { try bindings.addManualAddress(row.0, AddressPatch(), present: false) }
        #expect(error?.code == row.1)
        #expect(error?.field == "address")
        #expect(bindings == Self.base)
    }

    // MARK: deleteAddress

    @Test("deleteAddress: only manual or absent addresses", arguments: [
        ("198.51.100.9", nil), ("192.0.2.1", BindingsError.Code.conflict), ("0.0.0.0", .conflict),
        ("::1", .conflict), ("203.0.113.1", .notFound),
    ] as [(String, BindingsError.Code?)])
    func deleteAddress(_ row: (String, BindingsError.Code?)) {
        var bindings = Self.base
        let error = Fixture.refusal { try bindings.deleteAddress(row.0) }
        #expect(error?.code == row.1)
        #expect((bindings.entry(row.0) == nil) == (row.1 == nil || row.1 == .notFound))
    }

    @Test("deleteAddress removes a discovered address once it is gone from its interface")
    func deleteAbsent() throws {
        var bindings = Self.base
        bindings.mergeDiscovered([DiscoveredAddress(address: "::1", family: .ipv6, interface: "lo")])
        #expect(bindings.entry("192.0.2.1")?.present == false)
        try bindings.deleteAddress("192.0.2.1")
        #expect(bindings.entry("192.0.2.1") == nil)
    }

    // MARK: mergeDiscovered

    @Test("mergeDiscovered adds wildcards and interface addresses, link-local left out")
    func mergeFresh() {
        var bindings = Bindings()
        let changed = bindings.mergeDiscovered([
            DiscoveredAddress(address: "127.0.0.1", family: .ipv4, interface: "lo"),
            DiscoveredAddress(address: "::1", family: .ipv6, interface: "lo"),
            DiscoveredAddress(address: "192.0.2.1", family: .ipv4, interface: "eth0"),
            DiscoveredAddress(address: "fe80::1", family: .ipv6, interface: "eth0"),
            DiscoveredAddress(address: "192.0.2.1", family: .ipv4, interface: "eth0"),
        ])
        #expect(changed)
        #expect(bindings.ipAddresses.map(\.address).sorted() == ["0.0.0.0", "127.0.0.1", "192.0.2.1", "::", "::1"])
        #expect(bindings.entry("0.0.0.0")?.source == .wildcard)
        #expect(bindings.entry("::")?.source == .wildcard)
        #expect(bindings.entry("192.0.2.1")?.source == .interface)
        #expect(bindings.entry("192.0.2.1")?.interface == "eth0")
        #expect(bindings.ipAddresses.allSatisfy { $0.present })
        // Nothing new the second time.
        let again = bindings.mergeDiscovered([
            DiscoveredAddress(address: "127.0.0.1", family: .ipv4, interface: "lo"),
            DiscoveredAddress(address: "::1", family: .ipv6, interface: "lo"),
            DiscoveredAddress(address: "192.0.2.1", family: .ipv4, interface: "eth0"),
        ])
        #expect(!again)
    }

    @Test("mergeDiscovered keeps `present` current")
    func mergePresence() {
        var bindings = Bindings(ipAddresses: [
            Fixture.ip("192.0.2.1", ["p"]),
            Fixture.ip("127.0.0.5", source: .manual, present: false),
            Fixture.ip("198.51.100.9", source: .manual, present: true),
        ])
        bindings.mergeDiscovered([
            DiscoveredAddress(address: "127.0.0.1", family: .ipv4, interface: "lo"),
            DiscoveredAddress(address: "198.51.100.9", family: .ipv4, interface: "eth1"),
        ])
        #expect(bindings.entry("192.0.2.1")?.present == false, "gone from its interface")
        #expect(bindings.entry("192.0.2.1")?.ports == ["p"], "assignments survive")
        #expect(bindings.entry("127.0.0.5")?.present == true, "127/8 is on lo whenever 127.0.0.1 is")
        #expect(bindings.entry("127.0.0.5")?.source == .manual)
        #expect(bindings.entry("198.51.100.9")?.present == true)
        #expect(bindings.entry("198.51.100.9")?.source == .manual, "a manual address stays manual")
        #expect(bindings.entry("198.51.100.9")?.interface == nil)
        #expect(bindings.entry("0.0.0.0")?.present == true)

        bindings.mergeDiscovered([DiscoveredAddress(address: "192.0.2.1", family: .ipv4, interface: "eth0")])
        #expect(bindings.entry("192.0.2.1")?.present == true)
        #expect(bindings.entry("127.0.0.5")?.present == false, "no loopback discovered")
        #expect(bindings.entry("198.51.100.9")?.present == false)
    }
}
