import Foundation
import Testing
@testable import BerthCore

/// Issue 5, section 6, in the pure core: certificate fields that go together (3), warnings
/// that tell the truth (4), a loopback address that leaves lo (5), one IP per domain (9).
@Suite("Issue 5 findings")
struct IssueFiveFindingsTests {
    // MARK: Finding 3: certificate, key and password go together

    static let withKeyAndPassword = Bindings(ports: [
        Port(id: "1", name: "TLS", protocol: .smtp, encryption: .ssl, port: 465, certificatePath: "/etc/old.pem",
             privateKeyPath: "/etc/old.key", certificatePassword: "old-secret"),
    ])

    @Test("a new certificatePath holding its own key drops the old privateKeyPath")
    func newCertificateWithOwnKey() throws {
        var bindings = Self.withKeyAndPassword
        try bindings.updatePort(id: "1", PortPatch(certificatePath: "/etc/combined.pem"), holdsOwnKey: { $0 == "/etc/combined.pem" })
        let port = try #require(bindings.port("1"))
        #expect(port.certificatePath == "/etc/combined.pem")
        #expect(port.privateKeyPath == nil)
        #expect(port.certificateSource?.privateKeyPath == nil, "the old key is not checked any more")
    }

    @Test("a new certificatePath without a key keeps the key file (a renewed certificate for the same key)")
    func newCertificateWithoutKey() throws {
        var bindings = Self.withKeyAndPassword
        try bindings.updatePort(id: "1", PortPatch(certificatePath: "/etc/renewed.pem"), holdsOwnKey: { _ in false })
        #expect(bindings.port("1")?.privateKeyPath == "/etc/old.key")
        // A patch naming the key wins over the rule.
        try bindings.updatePort(
            id: "1", PortPatch(certificatePath: "/etc/other.pem", privateKeyPath: "/etc/other.key"), holdsOwnKey: { _ in true })
        #expect(bindings.port("1")?.privateKeyPath == "/etc/other.key")
    }

    @Test("certificatePath \"\" alone returns to the default certificate, key and password with it")
    func clearCertificateAlone() throws {
        var bindings = Self.withKeyAndPassword
        try bindings.updatePort(id: "1", PortPatch(certificatePath: ""))
        let port = try #require(bindings.port("1"))
        #expect(port.certificatePath == nil)
        #expect(port.privateKeyPath == nil)
        #expect(port.certificatePassword == nil)
        #expect(port.certificateSource == nil, "the server's default certificate")
        try Validation.validate(bindings)
    }

    @Test("switching to none and back keeps nothing stale")
    func noneAndBack() throws {
        var bindings = Self.withKeyAndPassword
        try bindings.updatePort(id: "1", PortPatch(encryption: Encryption.none))
        try bindings.updatePort(id: "1", PortPatch(encryption: .ssl))
        let port = try #require(bindings.port("1"))
        #expect(port.certificatePath == nil)
        #expect(port.privateKeyPath == nil)
        #expect(port.certificatePassword == nil)
        #expect(port.certificateSource == nil)
        try Validation.validate(bindings)
    }

    @Test("relative paths are made absolute against a directory", arguments: [
        ("cert.pem", "/srv/berth/cert.pem"),
        ("./certs/../certs/cert.pem", "/srv/berth/certs/cert.pem"),
        ("../etc/cert.pem", "/srv/etc/cert.pem"),
        ("/etc//ssl/./cert.pem", "/etc/ssl/cert.pem"),
        ("", ""),
        ("../../../../x.pem", "/x.pem"),
    ])
    func absolutePaths(_ row: (String, String)) {
        #expect(FilePath.absolute(row.0, against: "/srv/berth") == row.1)
        let patch = PortPatch(certificatePath: row.0, privateKeyPath: row.0).resolvingPaths(against: "/srv/berth")
        #expect(patch.certificatePath == row.1)
        #expect(patch.privateKeyPath == row.1)
        #expect(PortPatch().resolvingPaths(against: "/srv").certificatePath == nil, "absent stays absent")
    }

    // MARK: Finding 4: warnings that tell the truth

    @Test("submission without TLS: the warning follows --allow-plaintext-auth")
    func plaintextWarning() {
        let port = Port(id: "1", name: "Sub", protocol: .submission, encryption: .none, port: 587)
        let bindings = Bindings(ports: [port], ipAddresses: [Fixture.ip("192.0.2.1", ["1"])])
        #expect(bindings.warnings(for: port).contains { $0.contains("clients cannot send through this port") })
        let allowed = bindings.warnings(for: port, allowPlaintextAuth: true)
        #expect(!allowed.contains { $0.contains("cannot send") })
        #expect(allowed.contains { $0.contains("in clear") })
    }

    // MARK: Finding 5: a 127.x address that left lo

    @Test("a 127.x address discovered on lo and then removed from it is absent and deletable")
    func loopbackAddressRemoved() throws {
        var bindings = Bindings()
        let lo = DiscoveredAddress(address: "127.0.0.1", family: .ipv4, interface: "lo")
        bindings.mergeDiscovered([lo, DiscoveredAddress(address: "127.0.0.5", family: .ipv4, interface: "lo")])
        #expect(bindings.entry("127.0.0.5")?.source == .interface)
        #expect(bindings.entry("127.0.0.5")?.present == true)
        #expect(Fixture.refusal { var copy = bindings; try copy.deleteAddress("127.0.0.5") }?.code == .conflict)

        bindings.mergeDiscovered([lo])
        #expect(bindings.entry("127.0.0.5")?.present == false, "gone from lo")
        try bindings.deleteAddress("127.0.0.5")
        #expect(bindings.entry("127.0.0.5") == nil)
        #expect(bindings.entry("127.0.0.1")?.present == true)
    }

    @Test("a manual 127.x address is present while lo holds 127.0.0.1, and always deletable")
    func manualLoopback() throws {
        var bindings = Bindings()
        let lo = DiscoveredAddress(address: "127.0.0.1", family: .ipv4, interface: "lo")
        bindings.mergeDiscovered([lo])
        try bindings.addManualAddress("127.0.0.9", AddressPatch(), present: true)
        bindings.mergeDiscovered([lo])
        #expect(bindings.entry("127.0.0.9")?.present == true)
        bindings.mergeDiscovered([])
        #expect(bindings.entry("127.0.0.9")?.present == false)
        try bindings.deleteAddress("127.0.0.9")
    }

    // MARK: Finding 9: one IP, one domain

    @Test("two domains cannot claim one ipAddress")
    func domainIPUnique() {
        let domains = [Domain(name: "example.com", ipAddress: "192.0.2.1"), Domain(name: "example.org")]
        let error = Fixture.refusal {
            try DomainRules.validateIPAddressUnique(Domain(name: "example.org", ipAddress: "192.0.2.1"), among: domains)
        }
        #expect(error?.code == .conflict)
        #expect(error?.field == "ipAddress")
        #expect(error?.message.contains("example.com") == true)
        #expect(Fixture.refusal {
            try DomainRules.validateIPAddressUnique(Domain(name: "example.com", ipAddress: "192.0.2.1"), among: domains)
        } == nil, "a domain does not conflict with itself")
        #expect(Fixture.refusal {
            try DomainRules.validateIPAddressUnique(Domain(name: "example.org"), among: domains)
        } == nil)
    }
}
