import BerthTestSupport
import Testing

@testable import BerthPOP3

struct POP3CommandParserTests {
    /// (line, command) — RFC 1939 / 2449 / 2595 / 5034 grammar, with the leniencies real
    /// clients need. The label is the input.
    static let valid: [(input: String, command: POP3Command)] = [
        ("USER alice@example.com", .user("alice@example.com")),
        ("user alice", .user("alice")),
        ("USER alice  ", .user("alice")),
        ("USER jörg", .user("jörg")),
        ("PASS secret", .pass("secret")),
        ("PASS correct horse battery staple", .pass("correct horse battery staple")),
        ("PASS  leading space", .pass(" leading space")),
        ("pass trailing ", .pass("trailing ")),
        ("APOP mrose c4c9334bac560ecc979e58001b3e22fb", .apop(name: "mrose", digest: "c4c9334bac560ecc979e58001b3e22fb")),
        ("AUTH", .authMechanisms),
        ("AUTH PLAIN", .auth(mechanism: "PLAIN", initialResponse: nil)),
        ("auth plain AGFsaWNlAHB3", .auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHB3")),
        ("AUTH PLAIN =", .auth(mechanism: "PLAIN", initialResponse: "=")),
        ("AUTH LOGIN ", .auth(mechanism: "LOGIN", initialResponse: nil)),
        ("STAT", .stat),
        ("stat", .stat),
        ("StAt ", .stat),
        ("LIST", .list(nil)),
        ("LIST 1", .list(1)),
        ("LIST 007", .list(7)),
        ("LIST 2147483647", .list(2_147_483_647)),
        ("LIST  3  ", .list(3)),
        ("RETR 1", .retr(1)),
        ("DELE 12", .dele(12)),
        ("NOOP", .noop),
        ("RSET", .rset),
        ("QUIT", .quit),
        ("quit", .quit),
        ("TOP 1 0", .top(1, lines: 0)),
        ("top 3 10", .top(3, lines: 10)),
        ("UIDL", .uidl(nil)),
        ("UIDL 5", .uidl(5)),
        ("CAPA", .capa),
        ("STLS", .stls),
        ("stls", .stls),
    ]

    @Test(arguments: valid.indices)
    func parsesValid(_ index: Int) {
        let fixture = Self.valid[index]
        #expect(POP3CommandParser.parse(Array(fixture.input.utf8)) == .success(fixture.command), "input: \(fixture.input)")
    }

    /// (line, kind, fragment of the reason).
    static let invalid: [(input: String, kind: POP3CommandError.Kind, reason: String)] = [
        ("", .unknownCommand, "unknown command"),
        ("XYZZY", .unknownCommand, "unknown command"),
        ("HELO x", .unknownCommand, "unknown command"),
        ("GO", .unknownCommand, "unknown command"),
        (" STAT", .unknownCommand, "unknown command"),
        ("ST4T", .unknownCommand, "unknown command"),
        ("STAT 1", .syntax, "STAT takes no arguments"),
        ("QUIT now", .syntax, "QUIT takes no arguments"),
        ("CAPA x", .syntax, "takes no arguments"),
        ("STLS x", .syntax, "takes no arguments"),
        ("USER", .syntax, "USER takes one argument"),
        ("USER a b", .syntax, "USER takes one argument"),
        ("PASS", .syntax, "PASS needs a password"),
        ("PASS ", .syntax, "PASS needs a password"),
        ("APOP mrose", .syntax, "APOP takes a name and a digest"),
        ("AUTH PLAIN a b", .syntax, "AUTH takes a mechanism"),
        ("LIST 0", .syntax, "message number must be"),
        ("LIST -1", .syntax, "message number must be"),
        ("LIST +1", .syntax, "message number must be"),
        ("LIST x", .syntax, "message number must be"),
        ("LIST 1 2", .syntax, "at most one message number"),
        ("LIST 2147483648", .syntax, "message number must be"),
        ("LIST 99999999999999999999999999", .syntax, "message number must be"),
        ("RETR", .syntax, "RETR takes one message number"),
        ("RETR 1 2", .syntax, "RETR takes one message number"),
        ("RETR 1.5", .syntax, "message number must be"),
        ("DELE", .syntax, "DELE takes one message number"),
        ("TOP 1", .syntax, "TOP takes a message number and a line count"),
        ("TOP 1 2 3", .syntax, "TOP takes a message number and a line count"),
        ("TOP 0 1", .syntax, "message number must be"),
        ("TOP 1 -1", .syntax, "line count must be"),
        ("TOP 1 99999999999", .syntax, "line count must be"),
        ("UIDL 0", .syntax, "message number must be"),
        ("STAT\u{0}", .unknownCommand, "unknown command"),
        ("USER a\u{0}b", .syntax, "control characters"),
        ("PASS pass\tword", .syntax, "control characters"),
        ("USER a\u{7F}", .syntax, "control characters"),
        ("RETR ١", .syntax, "ASCII"),
    ]

    @Test(arguments: invalid.indices)
    func refusesInvalid(_ index: Int) {
        let fixture = Self.invalid[index]
        guard case .failure(let error) = POP3CommandParser.parse(Array(fixture.input.utf8)) else {
            Issue.record("accepted: \(fixture.input)")
            return
        }
        #expect(error.kind == fixture.kind, "input: \(fixture.input)")
        #expect(error.reason.contains(fixture.reason), "input: \(fixture.input), reason: \(error.reason)")
    }

    /// RFC 2449 §4: 255 octets with CRLF; PASS and AUTH get the credential limit.
    @Test func lineLengthLimits() {
        let longest = "USER " + String(repeating: "a", count: 248)  // 253 + CRLF = 255
        #expect(POP3CommandParser.parse(Array(longest.utf8)) == .success(.user(String(repeating: "a", count: 248))))
        guard case .failure(let error) = POP3CommandParser.parse(Array((longest + "a").utf8)) else {
            Issue.record("a 256-octet command was accepted")
            return
        }
        #expect(error.kind == .lineTooLong)

        let password = String(repeating: "p", count: 1000)
        #expect(POP3CommandParser.parse(Array("PASS \(password)".utf8)) == .success(.pass(password)))
        let response = String(repeating: "A", count: 1500)
        #expect(POP3CommandParser.parse(Array("AUTH PLAIN \(response)".utf8))
            == .success(.auth(mechanism: "PLAIN", initialResponse: response)))
        let tooLong = "PASS " + String(repeating: "p", count: POP3Limits.credentialLineLength)
        #expect((try? POP3CommandParser.parse(Array(tooLong.utf8)).get()) == nil)
    }

    /// A refusal never quotes the line (a password may be in it).
    @Test func reasonsNeverEchoArguments() {
        for line in ["PASS \u{1}hunter2", "USER hunter2 hunter2", "hunter2", "TOP hunter2 1", "AUTH PLAIN hunter2 x"] {
            guard case .failure(let error) = POP3CommandParser.parse(Array(line.utf8)) else {
                Issue.record("accepted: \(line)")
                continue
            }
            #expect(!error.reason.contains("hunter2"), "\(line)")
        }
    }

    /// Random bytes never crash the parser (bounded and seeded).
    @Test func randomLinesNeverCrash() {
        var generator = SeededGenerator(seed: 0x9090)
        let prefixes = ["USER ", "PASS ", "LIST ", "TOP ", "AUTH ", "", "UIDL ", "RETR "]
        for _ in 0..<5_000 {
            var bytes = Array(prefixes.randomElement(using: &generator)!.utf8)
            let length = Int.random(in: 0..<300, using: &generator)
            bytes += (0..<length).map { _ in
                Bool.random(using: &generator)
                    ? UInt8.random(in: 0x20...0x7E, using: &generator) : UInt8.random(in: 0...255, using: &generator)
            }
            if case .failure(let error) = POP3CommandParser.parse(bytes) {
                #expect(!error.reason.isEmpty)
            }
        }
    }
}
