import Foundation
import Testing
@testable import BerthCore

@Suite("Server settings")
struct ServerSettingsTests {
    @Test("defaults")
    func defaults() {
        let settings = ServerSettings()
        #expect(settings.proxyTrustedNetworks == [])
        #expect(settings.authFailureDelayMs == 1000)
        #expect(settings.authBanThreshold == 10)
        #expect(settings.authBanWindowSeconds == 600)
        #expect(settings.authBanSeconds == 900)
        #expect(throws: Never.self) { try Validation.validated(settings) }
    }

    struct RangeCase: Sendable, CustomTestStringConvertible {
        var label: String
        var change: @Sendable (inout ServerSettings) -> Void
        var refusedField: String?
        var testDescription: String { label }
    }

    static let rangeCases: [RangeCase] = [
        .init(label: "delay 0", change: { $0.authFailureDelayMs = 0 }, refusedField: nil),
        .init(label: "delay 60000", change: { $0.authFailureDelayMs = 60_000 }, refusedField: nil),
        .init(label: "delay 60001", change: { $0.authFailureDelayMs = 60_001 }, refusedField: "authFailureDelayMs"),
        .init(label: "delay -1", change: { $0.authFailureDelayMs = -1 }, refusedField: "authFailureDelayMs"),
        .init(label: "threshold 0", change: { $0.authBanThreshold = 0 }, refusedField: "authBanThreshold"),
        .init(label: "threshold 1", change: { $0.authBanThreshold = 1 }, refusedField: nil),
        .init(label: "threshold 10000", change: { $0.authBanThreshold = 10_000 }, refusedField: nil),
        .init(label: "threshold 10001", change: { $0.authBanThreshold = 10_001 }, refusedField: "authBanThreshold"),
        .init(label: "window 0", change: { $0.authBanWindowSeconds = 0 }, refusedField: "authBanWindowSeconds"),
        .init(label: "window a week", change: { $0.authBanWindowSeconds = 604_800 }, refusedField: nil),
        .init(label: "window a week and 1 s", change: { $0.authBanWindowSeconds = 604_801 }, refusedField: "authBanWindowSeconds"),
        .init(label: "ban 0", change: { $0.authBanSeconds = 0 }, refusedField: "authBanSeconds"),
        .init(label: "ban a week and 1 s", change: { $0.authBanSeconds = 604_801 }, refusedField: "authBanSeconds"),
        .init(label: "networks fine", change: { $0.proxyTrustedNetworks = ["10.0.0.0/8", "::1"] }, refusedField: nil),
        .init(label: "second network bad", change: { $0.proxyTrustedNetworks = ["10.0.0.0/8", "10.0.0.0/40"] },
              refusedField: "proxyTrustedNetworks[1]"),
        .init(label: "too many networks",
              change: { $0.proxyTrustedNetworks = (0..<257).map { "10.0.\($0 / 256).\($0 % 256)" } },
              refusedField: "proxyTrustedNetworks"),
    ]

    @Test("ranges and networks", arguments: rangeCases)
    func ranges(_ row: RangeCase) {
        var settings = ServerSettings()
        row.change(&settings)
        let error = Fixture.refusal { _ = try Validation.validated(settings) }
        if let field = row.refusedField {
            #expect(error?.code == .validationFailed)
            #expect(error?.field == field)
        } else {
            #expect(error == nil)
        }
    }

    @Test("networks are stored canonical, without duplicates")
    func canonicalNetworks() throws {
        var settings = ServerSettings()
        settings.proxyTrustedNetworks = ["10.9.9.9/8", "10.0.0.0/8", "2001:DB8::/32", "192.0.2.1"]
        let validated = try Validation.validated(settings)
        #expect(validated.proxyTrustedNetworks == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"])
        #expect(validated.isTrustedProxy("10.3.4.5"))
        #expect(validated.isTrustedProxy("::ffff:192.0.2.1"))
        #expect(!validated.isTrustedProxy("192.0.2.2"))
    }

    @Test("a patch changes only what it names, and refuses unknown keys")
    func patch() throws {
        let patch = try JSONDecoder().decode(ServerSettingsPatch.self, from: Data(#"{"authBanSeconds": 60}"#.utf8))
        var settings = ServerSettings()
        patch.apply(to: &settings)
        var expected = ServerSettings()
        expected.authBanSeconds = 60
        #expect(settings == expected)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ServerSettingsPatch.self, from: Data(#"{"authBanSecond": 60}"#.utf8))
        }
    }

    @Test("stored JSON without newer keys reads with defaults")
    func lenientStoredJSON() throws {
        let settings = try JSONDecoder().decode(ServerSettings.self, from: Data(#"{"authFailureDelayMs": 5}"#.utf8))
        var expected = ServerSettings()
        expected.authFailureDelayMs = 5
        #expect(settings == expected)
    }
}
