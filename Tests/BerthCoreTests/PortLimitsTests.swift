import Foundation
import Testing
@testable import BerthCore

/// The contract additions to ports: connection limits and PROXY protocol.
@Suite("Port connection limits and PROXY protocol")
struct PortLimitsTests {
    static func port(
        max: Int = Port.defaultMaxConnections, perClient: Int = Port.defaultMaxConnectionsPerClient
    ) -> Port {
        Port(id: "1", name: "P", protocol: .smtp, encryption: .none, port: 25, maxConnections: max,
             maxConnectionsPerClient: perClient)
    }

    @Test("defaults")
    func defaults() {
        let port = Fixture.port("1", "P", number: 25)
        #expect(port.maxConnections == 10_000)
        #expect(port.maxConnectionsPerClient == 100)
        #expect(port.proxyProtocol == false)
    }

    @Test("connection limits", arguments: [
        (1, 1, nil), (1_000_000, 1_000_000, nil), (10_000, 100, nil),
        (0, 1, "maxConnections"), (1_000_001, 100, "maxConnections"), (-5, 1, "maxConnections"),
        (100, 0, "maxConnectionsPerClient"), (100, 101, "maxConnectionsPerClient"),
        (1_000_000, 1_000_001, "maxConnectionsPerClient"),
    ] as [(Int, Int, String?)])
    func limits(_ row: (Int, Int, String?)) {
        let error = Fixture.refusal { try Validation.validate(Bindings(ports: [Self.port(max: row.0, perClient: row.1)])) }
        #expect(error?.field == row.2)
        if row.2 != nil { #expect(error?.code == .validationFailed) }
    }

    @Test("addPort and updatePort carry the new fields; absent ones stay")
    func patchFields() throws {
        var bindings = Bindings()
        let added = try bindings.addPort(id: "1", PortPatch(
            name: "Edge", protocol: .smtp, port: 25, maxConnections: 500, proxyProtocol: true))
        #expect(added.maxConnections == 500)
        #expect(added.maxConnectionsPerClient == 100)
        #expect(added.proxyProtocol)
        try bindings.updatePort(id: "1", PortPatch(maxConnectionsPerClient: 5))
        let port = try #require(bindings.port("1"))
        #expect((port.maxConnections, port.maxConnectionsPerClient, port.proxyProtocol) == (500, 5, true))
        try bindings.updatePort(id: "1", PortPatch(proxyProtocol: false))
        #expect(bindings.port("1")?.proxyProtocol == false)
        #expect(bindings.port("1")?.maxConnections == 500)
    }

    @Test("the JSON patch reads the new fields and refuses a wrong type")
    func patchJSON() throws {
        let patch = try JSONDecoder().decode(PortPatch.self, from: Data(
            #"{"maxConnections": 20, "maxConnectionsPerClient": 2, "proxyProtocol": true}"#.utf8))
        #expect(patch == PortPatch(maxConnections: 20, maxConnectionsPerClient: 2, proxyProtocol: true))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(PortPatch.self, from: Data(#"{"proxyProtocol": "yes"}"#.utf8))
        }
    }

    @Test("listener specs carry the limits; they are not part of the socket identity")
    func listenerSpec() {
        var port = Self.port(max: 50, perClient: 5)
        port.proxyProtocol = true
        let bindings = Bindings(ports: [port], ipAddresses: [Fixture.ip("192.0.2.1", ["1"])])
        let spec = ListenerPlan.make(bindings: bindings, domains: [], serverHostname: "mx.example.com").specs[0]
        #expect((spec.maxConnections, spec.maxConnectionsPerClient, spec.proxyProtocol) == (50, 5, true))
        var changed = spec
        changed.maxConnections = 7
        changed.maxConnectionsPerClient = 1
        changed.proxyProtocol = false
        #expect(changed.socketIdentity == spec.socketIdentity, "applied in place, no rebind")
        #expect(changed != spec, "but a change the listener manager sees")
        // The old init still compiles and takes the defaults.
        let plain = ListenerSpec(
            address: "192.0.2.1", family: .ipv4, source: .interface, port: 25, portID: "1", portName: "P",
            protocol: .smtp, encryption: .none, tlsRequired: false, certificate: nil, hostname: "mx.example.com")
        #expect((plain.maxConnections, plain.maxConnectionsPerClient, plain.proxyProtocol) == (10_000, 100, false))
    }
}
