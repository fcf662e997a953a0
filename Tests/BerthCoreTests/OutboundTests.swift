import Foundation
import Testing
@testable import BerthCore

@Suite("Outbound rules")
struct OutboundTests {
    @Test("retries double from the initial delay up to the maximum")
    func retrySchedule() {
        let schedule = RetrySchedule(initial: 300, maximum: 14_400)
        #expect((1...8).map { schedule.delay(afterAttempts: $0) } == [300, 600, 1200, 2400, 4800, 9600, 14_400, 14_400])
        #expect(schedule.delay(afterAttempts: 10_000) == 14_400, "no overflow after many attempts")
        #expect(RetrySchedule(initial: 60, maximum: 10).delay(afterAttempts: 3) == 60, "a maximum below the initial is the initial")
    }

    static let family4 = AddressFamily.ipv4

    @Test("each outbound mode picks its source addresses")
    func sourceChoice() {
        func choice(_ mode: OutboundFamilySetting.Mode, _ addresses: [String] = [], domainIP: String? = nil) -> SourceChoice {
            SourceChoice(OutboundFamilySetting(mode: mode, addresses: addresses), domainAddress: domainIP, family: .ipv4)
        }
        #expect(choice(.system) == .system)
        #expect(choice(.disabled) == .disabled)
        #expect(choice(.address, ["192.0.2.1", "192.0.2.2"]) == .addresses(["192.0.2.1"]))
        #expect(choice(.rotate, ["192.0.2.1", "192.0.2.2"]) == .addresses(["192.0.2.1", "192.0.2.2"]))
        #expect(choice(.domain, domainIP: "192.0.2.9") == .addresses(["192.0.2.9"]))
        #expect(choice(.domain, domainIP: "2001:db8::9") == .system, "the domain's IP of the other family is not used")
    }

    @Test("rotate tries addresses that failed recently last, never none")
    func rotateMemory() {
        let rotate = SourceChoice.addresses(["a", "b", "c"])
        #expect(rotate.ordered(skipping: ["a"]) == .addresses(["b", "c", "a"]))
        #expect(rotate.ordered(skipping: ["a", "b", "c"]) == .addresses(["a", "b", "c"]))
        #expect(SourceChoice.system.ordered(skipping: ["a"]) == .system)
    }

    static func body(_ json: String) throws -> OutboundRoute.Body {
        try JSONDecoder().decode(OutboundRoute.Body.self, from: Data(json.utf8))
    }

    @Test("a route is validated and canonical; verifyCertificate implies requireTLS")
    func routes() throws {
        let route = try OutboundRoute.validated(domain: "Partner.Example", try Self.body(#"{"host": "10.0.0.5", "verifyCertificate": true}"#))
        #expect(route == OutboundRoute(domain: "partner.example", host: "10.0.0.5", port: 25, requireTLS: true, verifyCertificate: true))
        #expect(try OutboundRoute.validated(domain: "x.example", try Self.body(#"{"host": "[2001:DB8::1]", "port": 2525}"#)).host == "2001:db8::1")
        for (domain, json) in [
            ("bad domain!", #"{"host": "10.0.0.5"}"#),
            ("x.example", #"{"host": "not a host"}"#),
            ("x.example", #"{"host": "10.0.0.5", "port": 0}"#),
            ("x.example", #"{"host": "10.0.0.5", "port": 70000}"#),
        ] {
            #expect(throws: BindingsError.self, "\(domain) \(json)") { try OutboundRoute.validated(domain: domain, try Self.body(json)) }
        }
        #expect(throws: DecodingError.self, "unknown fields are refused") { try Self.body(#"{"host": "a.example", "hots": 1}"#) }
    }

    @Test("the outbound settings have defaults, ranges and a partial patch")
    func settings() throws {
        var settings = ServerSettings()
        #expect(settings.queueRetryInitialSeconds == 300 && settings.queueLifetimeSeconds == 432_000)
        let patch = try JSONDecoder().decode(ServerSettingsPatch.self, from: Data(#"{"queueRetryInitialSeconds": 1, "outboundMaxConnections": 5}"#.utf8))
        patch.apply(to: &settings)
        #expect(settings.queueRetryInitialSeconds == 1 && settings.outboundMaxConnections == 5)
        #expect(settings.queueRetryMaxSeconds == 14_400, "absent keys stay")
        #expect(try Validation.validated(settings) == settings)
        settings.queueRetryInitialSeconds = 0
        #expect(throws: BindingsError.self) { try Validation.validated(settings) }
        let stored = try JSONDecoder().decode(ServerSettings.self, from: Data(#"{"authBanSeconds": 60}"#.utf8))
        #expect(stored.outboundMaxConnectionsPerDestination == 20, "settings stored by an older version get the defaults")
    }
}
