import Foundation
import Testing

@testable import BerthNet

struct SASLServerTests {
    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// One exchange: the AUTH arguments, then each client line, and the steps expected.
    static let fixtures: [(label: String, mechanism: String, initial: String?, lines: [String], steps: [SASLServer.Step])] = [
        ("PLAIN with initial response", "PLAIN", b64("\0alice@example.com\0pw"), [],
         [.verify(user: "alice@example.com", password: "pw")]),
        ("plain, lower case mechanism", "plain", b64("\0alice\0pw"), [], [.verify(user: "alice", password: "pw")]),
        ("PLAIN without initial response", "PLAIN", nil, [b64("\0alice\0pw")],
         [.challenge(""), .verify(user: "alice", password: "pw")]),
        ("PLAIN with the same authzid", "PLAIN", b64("alice\0alice\0pw"), [], [.verify(user: "alice", password: "pw")]),
        ("PLAIN acting as another identity", "PLAIN", b64("root\0alice\0pw"), [], [.failed(.authorizationIdentity)]),
        ("PLAIN empty initial response '='", "PLAIN", "=", [], [.failed(.malformed)]),
        ("PLAIN not base64", "PLAIN", "!!!", [], [.failed(.malformed)]),
        ("PLAIN two fields", "PLAIN", b64("alice\0pw"), [], [.failed(.malformed)]),
        ("PLAIN empty user", "PLAIN", b64("\0\0pw"), [], [.failed(.malformed)]),
        ("PLAIN cancelled", "PLAIN", nil, ["*"], [.challenge(""), .failed(.cancelled)]),
        ("LOGIN", "LOGIN", nil, [b64("alice"), b64("pw")],
         [.challenge(SASLServer.loginUserPrompt), .challenge(SASLServer.loginPasswordPrompt), .verify(user: "alice", password: "pw")]),
        ("LOGIN with initial user", "LOGIN", b64("alice"), [b64("pw")],
         [.challenge(SASLServer.loginPasswordPrompt), .verify(user: "alice", password: "pw")]),
        ("LOGIN cancelled at the password", "LOGIN", nil, [b64("alice"), "*"],
         [.challenge(SASLServer.loginUserPrompt), .challenge(SASLServer.loginPasswordPrompt), .failed(.cancelled)]),
        ("LOGIN empty user", "LOGIN", nil, [""], [.challenge(SASLServer.loginUserPrompt), .failed(.malformed)]),
        ("unknown mechanism", "CRAM-MD5", nil, [], [.failed(.unknownMechanism)]),
    ]

    @Test(arguments: fixtures.indices)
    func exchange(_ index: Int) {
        let fixture = Self.fixtures[index]
        var sasl = SASLServer()
        var steps = [sasl.start(mechanism: fixture.mechanism, initialResponse: fixture.initial)]
        for line in fixture.lines { steps.append(sasl.respond(line)) }
        #expect(steps == fixture.steps, "\(fixture.label)")
        #expect(!sasl.awaitsResponse, "\(fixture.label): the exchange is over")
    }

    @Test func awaitsResponseOnlyMidExchange() {
        var sasl = SASLServer()
        #expect(!sasl.awaitsResponse)
        _ = sasl.start(mechanism: "LOGIN", initialResponse: nil)
        #expect(sasl.awaitsResponse)
        sasl.reset()
        #expect(!sasl.awaitsResponse)
    }

    /// Fuzz-style: random lines never crash and always end the exchange within two steps.
    @Test func randomResponses() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var sasl = SASLServer()
            _ = sasl.start(mechanism: Bool.random(using: &generator) ? "PLAIN" : "LOGIN", initialResponse: nil)
            let bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let line = Bool.random(using: &generator) ? Data(bytes).base64EncodedString() : String(decoding: bytes, as: UTF8.self)
            _ = sasl.respond(line)
            _ = sasl.respond(line)
            _ = sasl.respond(line)
            #expect(!sasl.awaitsResponse)
        }
    }
}
