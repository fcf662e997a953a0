import BerthTestSupport
import Testing

@testable import BerthSMTP

struct SMTPCommandParserTests {
    /// (line, expected) — RFC 5321 §4.1 grammar, with the leniencies real clients need.
    static let fixtures: [(String, Result<SMTPCommand, SMTPCommandError>)] = [
        ("EHLO client.example", .success(.ehlo("client.example"))),
        ("ehlo [127.0.0.1]", .success(.ehlo("[127.0.0.1]"))),
        ("HELO x", .success(.helo("x"))),
        ("EHLO", .failure(.syntax("EHLO hostname"))),
        ("EHLO a b", .failure(.syntax("EHLO hostname"))),
        ("MAIL FROM:<a@b.example>", .success(.mail(from: "a@b.example", parameters: [:]))),
        ("mail from: <a@b.example>", .success(.mail(from: "a@b.example", parameters: [:]))),
        ("MAIL FROM:<>", .success(.mail(from: "", parameters: [:]))),
        ("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", .success(.mail(from: "a@b.example", parameters: ["SIZE": "1000", "BODY": "8BITMIME"]))),
        ("MAIL FROM:<@relay.example:a@b.example>", .success(.mail(from: "a@b.example", parameters: [:]))),
        ("MAIL FROM:a@b.example", .failure(.syntax("MAIL FROM:<address>"))),
        ("MAIL TO:<a@b.example>", .failure(.syntax("MAIL FROM:<address>"))),
        ("RCPT TO:<alice@example.com>", .success(.rcpt(to: "alice@example.com", parameters: [:]))),
        ("RCPT TO:<Postmaster>", .success(.rcpt(to: "Postmaster", parameters: [:]))),
        ("RCPT TO:<>", .failure(.syntax("RCPT TO:<address>"))),
        ("RCPT TO:<no-at-sign>", .failure(.syntax("RCPT TO:<address> (bad address <no-at-sign>)"))),
        ("RCPT TO:<a b@example.com>", .failure(.syntax("RCPT TO:<address> (bad address <a b@example.com>)"))),
        ("DATA", .success(.data)),
        ("DATA now", .failure(.syntax("DATA"))),
        ("RSET", .success(.rset)),
        ("NOOP", .success(.noop)),
        ("NOOP anything", .success(.noop)),
        ("QUIT", .success(.quit)),
        ("VRFY alice", .success(.vrfy("alice"))),
        ("VRFY", .failure(.syntax("VRFY address"))),
        ("HELP", .success(.help(""))),
        ("STARTTLS", .success(.startTLS)),
        ("starttls", .success(.startTLS)),
        ("AUTH PLAIN", .success(.auth(mechanism: "PLAIN", initialResponse: nil))),
        ("AUTH login dXNlcg==", .success(.auth(mechanism: "LOGIN", initialResponse: "dXNlcg=="))),
        ("AUTH", .failure(.syntax("AUTH mechanism [initial-response]"))),
        ("BDAT 100 LAST", .success(.unsupported("BDAT"))),
        ("XYZZY", .failure(.unrecognized)),
        ("", .failure(.unrecognized)),
        ("MAIL FROM:<a@b.example>\u{0}", .failure(.syntax("command contains control characters"))),
    ]

    @Test(arguments: fixtures.indices)
    func parses(_ index: Int) {
        let (line, expected) = Self.fixtures[index]
        #expect(SMTPCommandParser.parse(Array(line.utf8)) == expected, "line: \(line)")
    }

    @Test func pathLongerThan256IsRefused() {
        let long = String(repeating: "a", count: 60) + "@" + String(repeating: "b.", count: 100) + "example"
        guard case .failure = SMTPCommandParser.parse(Array("RCPT TO:<\(long)>".utf8)) else {
            Issue.record("a 260-octet path was accepted")
            return
        }
    }

    /// Random bytes never crash the parser (fuzz-style, bounded and seeded).
    @Test func randomLinesNeverCrash() {
        var generator = SeededGenerator(seed: 0x5EED)
        let verbs = ["MAIL FROM:", "RCPT TO:", "EHLO ", "AUTH ", "", "HELO "]
        for _ in 0..<5_000 {
            let length = Int.random(in: 0..<120, using: &generator)
            var bytes = Array(verbs.randomElement(using: &generator)!.utf8)
            bytes += (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = SMTPCommandParser.parse(bytes)
        }
    }
}

