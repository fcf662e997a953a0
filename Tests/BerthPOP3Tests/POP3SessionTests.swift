import BerthNet
import Foundation
import Testing

@testable import BerthPOP3

struct POP3SessionTests {
    static let listing = POP3Maildrop(messages: [
        .init(size: 120, uniqueID: "1712345678.1"),
        .init(size: 200, uniqueID: "1712345678.2"),
        .init(size: 55, uniqueID: "1712345678.3"),
    ])

    static func session(
        tls: Bool = false, stls: Bool = true, tlsRequired: Bool = false, plaintext: Bool = true, maxErrors: Int = 10
    ) -> POP3Session {
        var configuration = POP3Session.Configuration(hostname: "pop.example.com")
        configuration.stlsAvailable = stls
        configuration.tlsRequired = tlsRequired
        configuration.allowPlaintextAuth = plaintext
        configuration.maxErrors = maxErrors
        var session = POP3Session(configuration: configuration, isTLS: tls)
        _ = session.connected()
        return session
    }

    /// A session logged in as alice with `listing`, in TRANSACTION.
    static func loggedIn() -> POP3Session {
        var s = session(tls: true, stls: false)
        _ = s.line(Array("USER alice@example.com".utf8))
        _ = s.line(Array("PASS pw".utf8))
        _ = s.passwordChecked(.accepted)
        _ = s.maildropOpened(.opened(listing))
        return s
    }

    static func send(_ s: inout POP3Session, _ line: String) -> POP3Session.Action {
        s.line(Array(line.utf8))
    }

    static func isOK(_ action: POP3Session.Action) -> Bool {
        switch action {
        case .reply(let r), .replyAndClose(let r), .startTLS(let r): return r.isPositive
        default: return false
        }
    }

    static func errText(_ action: POP3Session.Action) -> String? {
        switch action {
        case .reply(.err(let text, let code)), .replyAndClose(.err(let text, let code)):
            return (code.map { "[\($0.rawValue)] " } ?? "") + text
        default: return nil
        }
    }

    static func capaLines(_ action: POP3Session.Action) -> [String] {
        guard case .reply(.multiLine(_, let lines)) = action else { return [] }
        return lines
    }

    @Test func greetingNamesTheHost() {
        var s = POP3Session(configuration: .init(hostname: "mail.example.org"), isTLS: false)
        #expect(s.connected() == .reply(.ok("mail.example.org POP3 Berth ready")))
        #expect(s.state == .authorization)
        #expect(s.connected() == .none)
    }

    /// RFC 1939 §10's example session, with deletions committed only at QUIT.
    @Test func fullSession() {
        var s = Self.session(tls: true, stls: false)
        #expect(Self.send(&s, "USER alice@example.com") == .reply(.ok("send PASS")))
        #expect(Self.send(&s, "PASS secret pw") == .verifyPassword(user: "alice@example.com", password: "secret pw", failures: 0))
        #expect(!s.acceptsInput, "nothing is read while the password is checked")
        #expect(s.passwordChecked(.accepted) == .openMaildrop(user: "alice@example.com"))
        #expect(s.state == .authorization, "still AUTHORIZATION until the maildrop is locked")
        #expect(s.maildropOpened(.opened(Self.listing)) == .reply(.ok("maildrop has 3 messages (375 octets)")))
        #expect(s.state == .transaction)
        #expect(s.authenticatedUser == "alice@example.com")

        #expect(Self.send(&s, "STAT") == .reply(.ok("3 375")))
        #expect(Self.send(&s, "LIST") == .reply(.multiLine("3 messages (375 octets)", ["1 120", "2 200", "3 55"])))
        #expect(Self.send(&s, "LIST 2") == .reply(.ok("2 200")))
        #expect(Self.send(&s, "UIDL") == .reply(.multiLine("", ["1 1712345678.1", "2 1712345678.2", "3 1712345678.3"])))
        #expect(Self.send(&s, "UIDL 3") == .reply(.ok("3 1712345678.3")))

        #expect(Self.send(&s, "RETR 1") == .sendMessage(number: 1, topLines: nil, firstLine: .ok("120 octets")))
        #expect(!s.acceptsInput, "pipelined commands wait while a message is sent")
        #expect(Self.send(&s, "NOOP") == .none)
        #expect(s.messageSent() == .none)
        #expect(Self.send(&s, "TOP 2 5") == .sendMessage(number: 2, topLines: 5, firstLine: .ok("top of message follows")))
        #expect(s.messageSent() == .none)

        #expect(Self.send(&s, "DELE 1") == .reply(.ok("message 1 deleted")))
        #expect(Self.send(&s, "DELE 1") == .reply(.err("message 1 already deleted")))
        #expect(Self.send(&s, "STAT") == .reply(.ok("2 255")))
        #expect(Self.send(&s, "RSET") == .reply(.ok("maildrop has 3 messages (375 octets)")))
        #expect(Self.send(&s, "STAT") == .reply(.ok("3 375")))
        #expect(Self.send(&s, "DELE 3") == .reply(.ok("message 3 deleted")))
        #expect(Self.send(&s, "DELE 1") == .reply(.ok("message 1 deleted")))
        #expect(Self.send(&s, "NOOP") == .reply(.ok("")))

        #expect(Self.send(&s, "QUIT") == .commitDeletions([1, 3]))
        #expect(s.state == .update)
        #expect(!s.acceptsInput)
        #expect(s.deletionsCommitted(true) == .replyAndClose(.ok("pop.example.com POP3 server signing off (1 message left)")))
        #expect(s.state == .closed)
        #expect(s.errorCount == 0)
    }

    @Test func failedCommitAnswersErr() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "DELE 2")
        #expect(Self.send(&s, "QUIT") == .commitDeletions([2]))
        #expect(s.deletionsCommitted(false) == .replyAndClose(.err("some deleted messages not removed", code: .sysTemp)))
        #expect(s.state == .closed)
    }

    @Test func quitWithoutDeletionsCommitsNothing() {
        var s = Self.loggedIn()
        #expect(Self.send(&s, "QUIT") == .replyAndClose(.ok("pop.example.com POP3 server signing off (3 messages left)")))
        #expect(s.state == .closed)
    }

    @Test func quitDeletingEverythingSaysMaildropEmpty() {
        var s = Self.loggedIn()
        for n in 1...3 { _ = Self.send(&s, "DELE \(n)") }
        #expect(Self.send(&s, "QUIT") == .commitDeletions([1, 2, 3]))
        #expect(s.deletionsCommitted(true) == .replyAndClose(.ok("pop.example.com POP3 server signing off (maildrop empty)")))
    }

    @Test func quitInAuthorizationCommitsNothing() {
        var s = Self.session()
        _ = Self.send(&s, "USER alice")
        #expect(Self.send(&s, "QUIT") == .replyAndClose(.ok("pop.example.com POP3 server signing off")))
        #expect(s.state == .closed)
    }

    /// RFC 1939 §6: a session that ends without QUIT never enters UPDATE.
    @Test func connectionDropInTransactionCommitsNothing() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "DELE 1")
        s.connectionClosed()
        #expect(s.state == .closed)
        #expect(Self.send(&s, "QUIT") == .none)
        #expect(s.deletionsCommitted(true) == .none)
    }

    @Test func idleTimeoutClosesSilentlyWithoutUpdate() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "DELE 1")
        #expect(s.idleTimedOut() == .close)
        #expect(s.state == .closed)
        #expect(Self.send(&s, "QUIT") == .none)
    }

    @Test func deletedMessagesAreUnreachable() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "DELE 2")
        for command in ["RETR 2", "LIST 2", "TOP 2 0", "UIDL 2"] {
            #expect(Self.send(&s, command) == .reply(.err("no such message")), "\(command)")
        }
        #expect(Self.send(&s, "LIST") == .reply(.multiLine("2 messages (175 octets)", ["1 120", "3 55"])))
        #expect(Self.send(&s, "UIDL") == .reply(.multiLine("", ["1 1712345678.1", "3 1712345678.3"])))
        #expect(Self.send(&s, "RETR 9") == .reply(.err("no such message, only 3 messages in maildrop")))
        #expect(Self.send(&s, "DELE 9") == .reply(.err("no such message, only 3 messages in maildrop")))
        _ = Self.send(&s, "RSET")
        #expect(Self.send(&s, "UIDL 2") == .reply(.ok("2 1712345678.2")))
        #expect(s.errorCount == 0, "asking for a missing message is not a protocol error")
    }

    @Test func vanishedMessageAnswersErr() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "RETR 3")
        #expect(s.messageUnavailable() == .reply(.err("message 3 is no longer available", code: .sysTemp)))
        #expect(s.state == .transaction)
        #expect(s.acceptsInput)
    }

    @Test func emptyMaildrop() {
        var s = Self.session(tls: true)
        _ = Self.send(&s, "USER bob")
        _ = Self.send(&s, "PASS pw")
        _ = s.passwordChecked(.accepted)
        #expect(s.maildropOpened(.opened(POP3Maildrop(messages: []))) == .reply(.ok("maildrop has 0 messages (0 octets)")))
        #expect(Self.send(&s, "STAT") == .reply(.ok("0 0")))
        #expect(Self.send(&s, "LIST") == .reply(.multiLine("0 messages (0 octets)", [])))
        #expect(Self.send(&s, "RETR 1") == .reply(.err("no such message, only 0 messages in maildrop")))
    }

    /// BINDINGS.md `tlsRequired`: before TLS only CAPA, STLS and QUIT.
    @Test func tlsRequiredAllowsOnlyCapaStlsQuit() {
        var s = Self.session(tlsRequired: true)
        let capa = Self.capaLines(Self.send(&s, "CAPA"))
        #expect(capa.contains("STLS"))
        #expect(!capa.contains("USER"))
        #expect(!capa.contains { $0.hasPrefix("SASL") })
        for command in ["USER alice", "PASS pw", "AUTH PLAIN AGFsaWNlAHB3", "AUTH", "APOP a b", "NOOP", "STAT"] {
            #expect(Self.errText(Self.send(&s, command)) == "[SYS/PERM] encryption required: issue STLS first", "\(command)")
        }
        #expect(Self.send(&s, "STLS") == .startTLS(.ok("Begin TLS negotiation")))
        #expect(!s.acceptsInput)
        s.tlsEstablished()
        #expect(s.isTLS)
        let capaAfter = Self.capaLines(Self.send(&s, "CAPA"))
        #expect(capaAfter.contains("USER"))
        #expect(capaAfter.contains("SASL PLAIN LOGIN"))
        #expect(!capaAfter.contains("STLS"))
        #expect(Self.send(&s, "USER alice") == .reply(.ok("send PASS")))
        #expect(Self.send(&s, "PASS pw") == .verifyPassword(user: "alice", password: "pw", failures: 0))
    }

    @Test func tlsRequiredAllowsQuit() {
        var s = Self.session(tlsRequired: true)
        #expect(Self.send(&s, "QUIT") == .replyAndClose(.ok("pop.example.com POP3 server signing off")))
    }

    @Test func plaintextLoginDisabledPointsAtSTLS() {
        var s = Self.session(plaintext: false)
        #expect(Self.errText(Self.send(&s, "USER alice")) == "[SYS/PERM] plain-text login is disabled; issue STLS first")
        #expect(Self.errText(Self.send(&s, "AUTH PLAIN")) == "[SYS/PERM] plain-text login is disabled; issue STLS first")
        #expect(!Self.capaLines(Self.send(&s, "CAPA")).contains("USER"))
        #expect(Self.isOK(Self.send(&s, "STLS")))
        s.tlsEstablished()
        #expect(Self.send(&s, "USER alice") == .reply(.ok("send PASS")))
    }

    @Test func plaintextLoginDisabledOnAPlainPort() {
        var s = Self.session(stls: false, plaintext: false)
        #expect(Self.errText(Self.send(&s, "USER alice")) == "[SYS/PERM] plain-text login is disabled on this port")
        #expect(Self.errText(Self.send(&s, "STLS")) == "STLS is not offered on this port")
        #expect(!Self.capaLines(Self.send(&s, "CAPA")).contains("STLS"))
    }

    @Test func stlsRefusals() {
        var implicit = Self.session(tls: true, stls: true)
        #expect(Self.errText(Self.send(&implicit, "STLS")) == "TLS already active")
        var s = Self.session(stls: true)
        _ = Self.send(&s, "STLS")
        s.tlsEstablished()
        #expect(Self.errText(Self.send(&s, "STLS")) == "TLS already active")
        var t = Self.loggedIn()
        #expect(Self.errText(Self.send(&t, "STLS")) == "STLS is only valid before authentication")
    }

    /// RFC 2595 §4: the USER sent before STLS is forgotten.
    @Test func stlsForgetsThePendingUser() {
        var s = Self.session()
        _ = Self.send(&s, "USER alice")
        _ = Self.send(&s, "STLS")
        s.tlsEstablished()
        #expect(Self.errText(Self.send(&s, "PASS pw")) == "send USER first")
    }

    @Test func capaListsWhatIsAvailable() {
        var s = Self.session(tls: false, stls: true, plaintext: true)
        #expect(Self.send(&s, "CAPA") == .reply(.multiLine("Capability list follows", [
            "CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN LOGIN", "STLS",
            "IMPLEMENTATION Berth",
        ])))
        var t = Self.loggedIn()
        let lines = Self.capaLines(Self.send(&t, "CAPA"))
        #expect(lines.contains("USER"), "RFC 2449 §6: AUTHORIZATION capabilities are listed in both states")
        #expect(!lines.contains("STLS"))
    }

    @Test func passNeedsUserImmediatelyBefore() {
        var s = Self.session(tls: true)
        #expect(Self.errText(Self.send(&s, "PASS pw")) == "send USER first")
        _ = Self.send(&s, "USER alice")
        _ = Self.send(&s, "CAPA")
        #expect(Self.errText(Self.send(&s, "PASS pw")) == "send USER first")
        _ = Self.send(&s, "USER alice")
        _ = Self.send(&s, "USER bob")
        #expect(Self.send(&s, "PASS pw") == .verifyPassword(user: "bob", password: "pw", failures: 0))
    }

    @Test func failedPasswordsAreCounted() {
        var s = Self.session(tls: true)
        for attempt in 0..<3 {
            _ = Self.send(&s, "USER alice")
            #expect(Self.send(&s, "PASS wrong") == .verifyPassword(user: "alice", password: "wrong", failures: attempt))
            #expect(s.passwordChecked(.rejected(delay: .seconds(1))) == .reply(.err("authentication failed", code: .auth)))
            #expect(s.state == .authorization)
        }
        #expect(s.authFailures == 3)
        #expect(Self.errText(Self.send(&s, "PASS again")) == "send USER first", "a failed PASS needs a new USER")
        #expect(s.authenticatedUser == nil)
    }

    @Test func banClosesAndBusyIsTemporary() {
        var s = Self.session(tls: true)
        _ = Self.send(&s, "USER alice")
        _ = Self.send(&s, "PASS pw")
        #expect(s.passwordChecked(.busy) == .reply(.err("temporary authentication failure; try again later", code: .sysTemp)))
        _ = Self.send(&s, "USER alice")
        _ = Self.send(&s, "PASS pw")
        #expect(s.passwordChecked(.banned) == .replyAndClose(.err(Refusal.banned.reason, code: .auth)))
        #expect(s.state == .closed)
    }

    @Test func lockedMaildropGivesInUse() {
        var s = Self.session(tls: true)
        _ = Self.send(&s, "USER alice")
        _ = Self.send(&s, "PASS pw")
        _ = s.passwordChecked(.accepted)
        #expect(s.maildropOpened(.locked) == .reply(.err("maildrop already locked by another session", code: .inUse)))
        #expect(s.state == .authorization)
        #expect(s.authenticatedUser == nil)
        #expect(Self.errText(Self.send(&s, "STAT")) == "STAT is not valid before authentication")
        _ = Self.send(&s, "USER alice")
        _ = Self.send(&s, "PASS pw")
        _ = s.passwordChecked(.accepted)
        #expect(s.maildropOpened(.failed) == .reply(.err("unable to open the maildrop; try again later", code: .sysTemp)))
    }

    @Test func authPlainWithInitialResponse() {
        var s = Self.session(tls: true)
        let credentials = Data("\0alice@example.com\0secret pw".utf8).base64EncodedString()
        #expect(Self.send(&s, "AUTH PLAIN \(credentials)")
            == .verifyPassword(user: "alice@example.com", password: "secret pw", failures: 0))
        #expect(s.passwordChecked(.accepted) == .openMaildrop(user: "alice@example.com"))
        #expect(Self.isOK(s.maildropOpened(.opened(Self.listing))))
        #expect(s.state == .transaction)
    }

    @Test func authPlainWithContinuation() {
        var s = Self.session(tls: true)
        #expect(Self.send(&s, "AUTH PLAIN") == .reply(.continuation("")))
        #expect(s.awaitsSASLResponse)
        let credentials = Data("alice\0alice\0pw".utf8).base64EncodedString()
        // The line goes to SASL, not to the command parser (it would be an unknown command).
        #expect(Self.send(&s, credentials) == .verifyPassword(user: "alice", password: "pw", failures: 0))
        #expect(!s.awaitsSASLResponse)
    }

    @Test func authLoginChallenges() {
        var s = Self.session(tls: true)
        #expect(Self.send(&s, "AUTH LOGIN") == .reply(.continuation(SASLServer.loginUserPrompt)))
        #expect(Self.send(&s, Data("alice".utf8).base64EncodedString()) == .reply(.continuation(SASLServer.loginPasswordPrompt)))
        #expect(Self.send(&s, Data("pw".utf8).base64EncodedString()) == .verifyPassword(user: "alice", password: "pw", failures: 0))
    }

    @Test func authCancelAndFailures() {
        var s = Self.session(tls: true)
        _ = Self.send(&s, "AUTH PLAIN")
        #expect(Self.send(&s, "*") == .reply(.err("authentication cancelled")))
        #expect(s.state == .authorization)
        #expect(!s.awaitsSASLResponse)
        #expect(Self.send(&s, "AUTH PLAIN !!!") == .reply(.err("cannot decode the authentication response")))
        #expect(Self.send(&s, "AUTH CRAM-MD5") == .reply(.err("unsupported authentication mechanism")))
        let someoneElse = Data("carol\0alice\0pw".utf8).base64EncodedString()
        #expect(Self.send(&s, "AUTH PLAIN \(someoneElse)") == .reply(.err("authentication failed", code: .auth)))
        #expect(s.authFailures == 1)
        #expect(Self.send(&s, "AUTH") == .reply(.multiLine("", ["PLAIN", "LOGIN"])))
    }

    @Test func apopIsRefused() {
        var s = Self.session(tls: true)
        #expect(Self.send(&s, "APOP mrose c4c9334bac560ecc979e58001b3e22fb")
            == .reply(.err("APOP is not offered; use USER and PASS, or AUTH")))
    }

    @Test func loginCommandsInTransactionAreRefused() {
        var s = Self.loggedIn()
        for command in ["USER bob", "PASS pw", "AUTH PLAIN", "AUTH"] {
            #expect(Self.errText(Self.send(&s, command)) == "already authenticated", "\(command)")
        }
    }

    @Test func tooManyErrorsClose() {
        var s = Self.session(maxErrors: 3)
        #expect(Self.send(&s, "XYZZY") == .reply(.err("unknown command")))
        #expect(Self.send(&s, "STAT 1") == .reply(.err("STAT takes no arguments")))
        #expect(Self.send(&s, "XYZZY") == .replyAndClose(.err("too many errors; closing")))
        #expect(s.state == .closed)
        #expect(Self.send(&s, "CAPA") == .none)
    }

    @Test func tooManyErrorsInTransactionCommitNothing() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "DELE 1")
        for _ in 0..<9 { _ = Self.send(&s, "XYZZY") }
        #expect(Self.send(&s, "XYZZY") == .replyAndClose(.err("too many errors; closing")))
        #expect(Self.send(&s, "QUIT") == .none)
    }

    @Test func badLinesAndLongLines() {
        var s = Self.session(tls: true)
        _ = Self.send(&s, "AUTH PLAIN")
        #expect(s.badLine() == .reply(.err("lines must end with CRLF")))
        #expect(!s.awaitsSASLResponse)
        #expect(s.lineTooLong() == .replyAndClose(.err("line too long")))
        #expect(s.state == .closed)
    }

    @Test func drainTellsAnIdleSessionAndSkipsUpdate() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "DELE 1")
        #expect(s.drain() == .replyAndClose(.shuttingDown))
        #expect(s.state == .closed)
    }

    @Test func drainWaitsForAMessageInProgress() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "RETR 1")
        #expect(s.drain() == .none)
        #expect(s.messageSent() == .replyAndClose(.shuttingDown))
    }

    @Test func drainDuringCommitLetsItFinish() {
        var s = Self.loggedIn()
        _ = Self.send(&s, "DELE 1")
        _ = Self.send(&s, "QUIT")
        #expect(s.drain() == .none)
        #expect(Self.isOK(s.deletionsCommitted(true)))
    }

    @Test func lateEventsChangeNothing() {
        var s = Self.session(tls: true)
        #expect(s.passwordChecked(.accepted) == .none)
        #expect(s.maildropOpened(.locked) == .none)
        #expect(s.messageSent() == .none)
        #expect(s.messageUnavailable() == .none)
        #expect(s.deletionsCommitted(true) == .none)
        #expect(s.saslResponse("x") == .none)
        s.tlsEstablished()
        #expect(s.state == .authorization)
    }
}
