import Testing
@testable import BerthCore

@Suite("Reserved endpoint (the admin API's own socket)")
struct ReservedEndpointTests {
    static let cases: [(admin: String, address: String, port: Int, conflicts: Bool)] = [
        ("127.0.0.1", "127.0.0.1", 8080, true),
        ("127.0.0.1", "127.0.0.1", 8081, false),
        ("127.0.0.1", "127.0.0.2", 8080, false),
        ("127.0.0.1", "0.0.0.0", 8080, true),
        ("127.0.0.1", "::", 8080, false),
        ("127.0.0.1", "::1", 8080, false),
        ("0.0.0.0", "192.0.2.7", 8080, true),
        ("0.0.0.0", "::1", 8080, false),
        ("::", "::1", 8080, true),
        ("::1", "0:0:0:0:0:0:0:1", 8080, true),
        ("localhost", "::1", 8080, true),
        ("localhost", "127.0.0.1", 8080, true),
        ("localhost", "127.0.0.2", 8080, false),
    ]

    @Test("same number on the same address or a wildcard of the family conflicts", arguments: cases)
    func conflicts(_ row: (admin: String, address: String, port: Int, conflicts: Bool)) throws {
        let reserved = try #require(ReservedEndpoint(host: row.admin, port: 8080, owner: "the admin API"))
        #expect(reserved.conflicts(address: row.address, port: row.port) == row.conflicts)
    }

    @Test("a host name other than localhost reserves nothing (it is not known what it resolves to)")
    func names() {
        #expect(ReservedEndpoint(host: "admin.example.com", port: 8080, owner: "x") == nil)
    }

    @Test("a change that would listen on it is refused, naming the port, the address and the owner")
    func check() throws {
        let reserved = try #require(ReservedEndpoint(host: "127.0.0.1", port: 8080, owner: "the admin API (--admin 127.0.0.1:8080)"))
        var bindings = Bindings(ports: [], ipAddresses: [
            IPAddressEntry(address: "127.0.0.1", family: .ipv4, interface: "lo", source: .interface, present: true),
        ])
        _ = try bindings.addPort(id: "1", PortPatch(name: "Web", protocol: .smtp, encryption: Encryption.none, port: 8080))
        try reserved.check(bindings)
        try bindings.updateAddress("127.0.0.1", AddressPatch(ports: ["1"]))
        let error = try #require(throws: BindingsError.self) { try reserved.check(bindings) }
        #expect(error.code == .portConflict)
        #expect(error.field == "port")
        #expect(error.message.contains("'Web'") && error.message.contains("127.0.0.1") && error.message.contains("admin API"))
    }
}
