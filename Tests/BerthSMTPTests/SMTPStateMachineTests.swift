import BerthCore
import BerthNet
import Foundation
import Testing

@testable import BerthSMTP

struct SMTPStateMachineTests {
    static func classify(_ address: String) -> RecipientClass {
        switch address.lowercased() {
        case "alice@example.com": return .local(domain: "example.com", user: "alice")
        case "full@example.com": return .mailboxFull
        case let a where a.hasSuffix("@example.com"): return .unknownLocalUser
        default: return .remote
        }
    }

    static func machine(
        tls: Bool = false, startTLS: Bool = true, tlsRequired: Bool = false, submission: Bool = false, maxErrors: Int = 10
    ) -> SMTPStateMachine {
        var configuration = SMTPStateMachine.Configuration(hostname: "mx.example.com")
        configuration.startTLSAvailable = startTLS
        configuration.tlsRequired = tlsRequired
        configuration.authRequired = submission
        configuration.maxErrors = maxErrors
        var machine = SMTPStateMachine(configuration: configuration, isTLS: tls)
        _ = machine.connected()
        return machine
    }

    static func send(_ machine: inout SMTPStateMachine, _ line: String) -> SMTPStateMachine.Action {
        machine.command(SMTPCommandParser.parse(Array(line.utf8)), classify: classify)
    }

    static func code(_ action: SMTPStateMachine.Action) -> Int? {
        switch action {
        case .reply(let r), .replyAndClose(let r), .startTLS(let r), .beginData(let r), .authChallenge(let r): return r.code
        case .verifyCredentials, .deliver, .none: return nil
        }
    }

    @Test func greetingNamesTheHost() {
        var configuration = SMTPStateMachine.Configuration(hostname: "mx2.example.com")
        configuration.startTLSAvailable = false
        var machine = SMTPStateMachine(configuration: configuration, isTLS: false)
        #expect(machine.connected() == .reply(SMTPReply(220, nil, "mx2.example.com ESMTP Berth")))
    }

    @Test func fullTransaction() {
        var m = Self.machine()
        guard case .reply(let ehlo) = Self.send(&m, "EHLO client") else { Issue.record("no EHLO reply"); return }
        #expect(ehlo.lines.contains("STARTTLS"))
        #expect(ehlo.lines.contains("PIPELINING"))
        #expect(ehlo.lines.contains("8BITMIME"))
        #expect(ehlo.lines.contains("ENHANCEDSTATUSCODES"))
        #expect(ehlo.lines.contains("SIZE 26214400"))
        #expect(!ehlo.lines.contains { $0.hasPrefix("AUTH") }, "AUTH must not be offered before TLS")
        #expect(Self.code(Self.send(&m, "MAIL FROM:<bob@elsewhere.org>")) == 250)
        #expect(Self.code(Self.send(&m, "RCPT TO:<alice@example.com>")) == 250)
        #expect(Self.code(Self.send(&m, "DATA")) == 354)
        guard case .deliver(let envelope) = m.dataFinished(problem: nil) else { Issue.record("no deliver"); return }
        #expect(envelope.sender == "bob@elsewhere.org")
        #expect(envelope.recipients.map(\.address) == ["alice@example.com"])
        #expect(m.deliveryFinished(queueID: "Q1") == .reply(SMTPReply(250, "2.0.0", "Ok: queued as Q1")))
        #expect(m.deliveryFinished(queueID: "Q1") == .none)
        #expect(Self.code(Self.send(&m, "MAIL FROM:<bob@elsewhere.org>")) == 250)
        #expect(Self.code(Self.send(&m, "RCPT TO:<alice@example.com>")) == 250)
        #expect(Self.code(Self.send(&m, "DATA")) == 354)
        _ = m.dataFinished(problem: nil)
        let full = SMTPReply(552, "5.2.2", "Mailbox full")
        #expect(m.deliveryFinished(queueID: nil, refusal: full) == .reply(full), "the store's refusal is the reply")
        #expect(Self.send(&m, "QUIT") == .replyAndClose(.bye))
    }

    /// (commands, expected code of the last one).
    static let sequences: [([String], Int)] = [
        (["MAIL FROM:<a@b.c>"], 503),                                        // no EHLO
        (["EHLO c", "RCPT TO:<alice@example.com>"], 503),                      // no MAIL
        (["EHLO c", "DATA"], 503),
        (["EHLO c", "MAIL FROM:<a@b.c>", "DATA"], 554),                        // no recipients
        (["EHLO c", "MAIL FROM:<a@b.c>", "MAIL FROM:<a@b.c>"], 503),
        (["EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<nobody@example.com>"], 550),
        (["EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<full@example.com>"], 452),       // over quota: try later
        (["EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<full@example.com>", "DATA"], 554),
        (["EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<someone@elsewhere.org>"], 554),  // no open relay
        (["EHLO c", "MAIL FROM:<a@b.c> SIZE=999999999"], 552),
        (["EHLO c", "MAIL FROM:<a@b.c> SMTPUTF8"], 555),
        (["EHLO c", "MAIL FROM:<a@b.c>", "RSET", "RCPT TO:<alice@example.com>"], 503),
        (["EHLO c", "VRFY alice"], 252),
        (["EHLO c", "EXPN list"], 502),
        (["HELP"], 214),
        (["NOOP"], 250),
        (["EHLO c", "AUTH PLAIN AGFsaWNlAHB3"], 538),                         // AUTH needs TLS
        (["EHLO c", "BDAT 10 LAST"], 502),
        (["XYZZY"], 500),
    ]

    @Test(arguments: sequences.indices)
    func sequencing(_ index: Int) {
        let (commands, expected) = Self.sequences[index]
        var m = Self.machine()
        var last: SMTPStateMachine.Action = .none
        for command in commands { last = Self.send(&m, command) }
        #expect(Self.code(last) == expected, "\(commands)")
    }

    @Test func unknownUserCarriesEnhancedCode() {
        var m = Self.machine()
        _ = Self.send(&m, "EHLO c")
        _ = Self.send(&m, "MAIL FROM:<a@b.c>")
        #expect(Self.send(&m, "RCPT TO:<nobody@example.com>") == .reply(SMTPReply(
            550, "5.1.1", "<nobody@example.com>: Recipient address rejected: User unknown in local recipient table")))
    }

    @Test func recipientLimit() {
        var m = Self.machine()
        _ = Self.send(&m, "EHLO c")
        _ = Self.send(&m, "MAIL FROM:<a@b.c>")
        let everyoneLocal: (String) -> RecipientClass = { .local(domain: "example.com", user: String($0.prefix { $0 != "@" })) }
        for n in 0..<SMTPLimits.recipients {
            #expect(Self.code(m.command(SMTPCommandParser.parse(Array("RCPT TO:<u\(n)@example.com>".utf8)), classify: everyoneLocal)) == 250)
        }
        #expect(m.command(SMTPCommandParser.parse(Array("RCPT TO:<u999@example.com>".utf8)), classify: everyoneLocal)
            == .reply(SMTPReply(452, "4.5.3", "Error: too many recipients")))
    }

    @Test func duplicateRecipientsGetOneCopy() {
        var m = Self.machine()
        _ = Self.send(&m, "EHLO c")
        _ = Self.send(&m, "MAIL FROM:<a@b.c>")
        for address in ["alice@example.com", "ALICE@example.com", "alice@EXAMPLE.COM", "@relay.example:alice@example.com"] {
            #expect(Self.code(Self.send(&m, "RCPT TO:<\(address)>")) == 250)
        }
        _ = Self.send(&m, "DATA")
        guard case .deliver(let envelope) = m.dataFinished(problem: nil) else { Issue.record("no deliver"); return }
        #expect(envelope.recipients.count == 1)
    }

    @Test func authPlainAsSomeoneElseFails() {
        var m = Self.machine(tls: true, startTLS: false)
        _ = Self.send(&m, "EHLO c")
        let credentials = Data("carol@example.com\0alice@example.com\0right-password".utf8).base64EncodedString()
        #expect(Self.code(Self.send(&m, "AUTH PLAIN \(credentials)")) == 535)
        #expect(m.authenticatedUser == nil)
    }

    @Test func tlsRequiredRefusesAllButPreTLSCommands() {
        var m = Self.machine(tlsRequired: true)
        #expect(Self.code(Self.send(&m, "EHLO c")) == 250)
        #expect(Self.code(Self.send(&m, "NOOP")) == 250)
        #expect(Self.code(Self.send(&m, "RSET")) == 250)
        #expect(Self.send(&m, "MAIL FROM:<a@b.c>") == .reply(.tlsFirst))
        #expect(Self.send(&m, "HELP") == .reply(.tlsFirst))
        #expect(Self.code(Self.send(&m, "STARTTLS")) == 220)
        m.tlsEstablished()
        #expect(Self.send(&m, "MAIL FROM:<a@b.c>") == .reply(.badSequence("send HELO/EHLO first")))
    }

    @Test func startTLSResetsTheSession() {
        var m = Self.machine()
        _ = Self.send(&m, "EHLO c")
        #expect(Self.send(&m, "STARTTLS") == .startTLS(SMTPReply(220, "2.0.0", "Ready to start TLS")))
        m.tlsEstablished()
        #expect(m.greeted == false)
        guard case .reply(let ehlo) = Self.send(&m, "EHLO c") else { Issue.record("no EHLO"); return }
        #expect(!ehlo.lines.contains("STARTTLS"))
        #expect(ehlo.lines.contains("AUTH PLAIN LOGIN"))
        #expect(Self.code(Self.send(&m, "STARTTLS")) == 503)
    }

    @Test func startTLSNotOfferedOnPlainPorts() {
        var m = Self.machine(startTLS: false)
        #expect(Self.code(Self.send(&m, "STARTTLS")) == 502)
    }

    @Test func authPlainOverTLS() {
        var m = Self.machine(tls: true, startTLS: false, submission: true)
        _ = Self.send(&m, "EHLO c")
        #expect(Self.send(&m, "MAIL FROM:<a@b.c>") == .reply(.authFirst))
        let credentials = Data("\0alice@example.com\0secret-pw".utf8).base64EncodedString()
        #expect(Self.send(&m, "AUTH PLAIN \(credentials)") == .verifyCredentials(user: "alice@example.com", password: "secret-pw", failures: 0))
        #expect(m.credentialsChecked(.accepted) == .reply(SMTPReply(235, "2.7.0", "Authentication successful")))
        #expect(m.authenticatedUser == "alice@example.com")
        #expect(Self.code(Self.send(&m, "MAIL FROM:<alice@example.com>")) == 250)
        #expect(Self.code(Self.send(&m, "RCPT TO:<someone@elsewhere.org>")) == 451, "no outbound delivery yet: 451, not a black hole")
    }

    @Test func authLoginChallenges() {
        var m = Self.machine(tls: true, startTLS: false)
        _ = Self.send(&m, "EHLO c")
        #expect(Self.send(&m, "AUTH LOGIN") == .authChallenge(SMTPReply(334, nil, SASLServer.loginUserPrompt)))
        #expect(m.saslResponse(Data("alice@example.com".utf8).base64EncodedString()) == .authChallenge(SMTPReply(334, nil, SASLServer.loginPasswordPrompt)))
        #expect(m.saslResponse(Data("wrong".utf8).base64EncodedString()) == .verifyCredentials(user: "alice@example.com", password: "wrong", failures: 0))
        #expect(Self.code(m.credentialsChecked(.rejected(delay: .seconds(1)))) == 535)
        #expect(m.authenticatedUser == nil)
    }

    @Test func authCancelAndGarbage() {
        var m = Self.machine(tls: true, startTLS: false)
        _ = Self.send(&m, "EHLO c")
        _ = Self.send(&m, "AUTH PLAIN")
        #expect(Self.code(m.saslResponse("*")) == 501)
        #expect(Self.code(Self.send(&m, "AUTH PLAIN !!!notbase64")) == 501)
        #expect(Self.code(Self.send(&m, "AUTH CRAM-MD5")) == 504)
    }

    @Test func tooManyErrorsCloses() {
        var m = Self.machine(maxErrors: 3)
        _ = Self.send(&m, "XYZZY")
        _ = Self.send(&m, "XYZZY")
        guard case .replyAndClose(let reply) = Self.send(&m, "XYZZY") else { Issue.record("did not close"); return }
        #expect(reply.code == 421)
    }

    @Test func drainAnswersTheNextCommandWith421() {
        var m = Self.machine()
        _ = Self.send(&m, "EHLO c")
        #expect(m.drain() == .replyAndClose(.shuttingDown("mx.example.com")), "an idle session is told at once")
        #expect(Self.send(&m, "NOOP") == .replyAndClose(.shuttingDown("mx.example.com")))
    }

    @Test func drainLetsAMessageInProgressFinish() {
        var m = Self.machine()
        _ = Self.send(&m, "EHLO c")
        _ = Self.send(&m, "MAIL FROM:<a@b.c>")
        _ = Self.send(&m, "RCPT TO:<alice@example.com>")
        _ = Self.send(&m, "DATA")
        #expect(m.drain() == .none)
        guard case .deliver = m.dataFinished(problem: nil) else { Issue.record("the message was not delivered"); return }
        #expect(m.deliveryFinished(queueID: "Q9") == .reply(SMTPReply(250, "2.0.0", "Ok: queued as Q9")))
        #expect(Self.send(&m, "NOOP") == .replyAndClose(.shuttingDown("mx.example.com")))
    }

    @Test func dataProblemsAreRefused() {
        for (problem, code) in [(SMTPFramer.DataProblem.bareLineEnding, 554), (.lineTooLong, 554), (.tooLarge, 552)] {
            var m = Self.machine()
            _ = Self.send(&m, "EHLO c")
            _ = Self.send(&m, "MAIL FROM:<a@b.c>")
            _ = Self.send(&m, "RCPT TO:<alice@example.com>")
            _ = Self.send(&m, "DATA")
            #expect(Self.code(m.dataFinished(problem: problem)) == code)
            #expect(Self.code(Self.send(&m, "MAIL FROM:<a@b.c>")) == 250, "session goes on after a refused message")
        }
    }

    @Test func failedDeliveryIsTemporary() {
        var m = Self.machine()
        _ = Self.send(&m, "EHLO c")
        _ = Self.send(&m, "MAIL FROM:<a@b.c>")
        _ = Self.send(&m, "RCPT TO:<alice@example.com>")
        _ = Self.send(&m, "DATA")
        _ = m.dataFinished(problem: nil)
        #expect(Self.code(m.deliveryFinished(queueID: nil)) == 451)
    }
}
