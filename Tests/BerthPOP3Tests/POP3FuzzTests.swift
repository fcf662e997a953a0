import BerthNet
import BerthTestSupport
import Foundation
import Testing

@testable import BerthPOP3

/// Fuzz-style, bounded and seeded: random and mutated lines through the parser and the
/// session, with the caller's lookups answered at random, never crash, and the session only
/// moves forward through AUTHORIZATION → TRANSACTION → UPDATE → closed.
struct POP3FuzzTests {
    static let seeds: [String] = POP3CommandParserTests.valid.map(\.input) + [
        "USER alice", "PASS pw", "AUTH PLAIN " + Data("\0alice\0pw".utf8).base64EncodedString(), "AUTH LOGIN",
        Data("alice".utf8).base64EncodedString(), "*", "DELE 1", "DELE 2", "RETR 2", "TOP 3 1", "LIST 4",
    ]

    static func randomLine(using generator: inout SeededGenerator) -> [UInt8] {
        var line = Array(seeds.randomElement(using: &generator)!.utf8)
        switch Int.random(in: 0..<6, using: &generator) {
        case 0, 1, 2:
            return line
        case 3:
            // Mutate a few bytes.
            for _ in 0..<Int.random(in: 1...3, using: &generator) where !line.isEmpty {
                line[Int.random(in: 0..<line.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            return line
        case 4:
            // Cut or extend.
            let cut = Int.random(in: 0...line.count, using: &generator)
            return Array(line[..<cut]) + (0..<Int.random(in: 0..<8, using: &generator)).map { _ in
                UInt8.random(in: 0x20...0x7E, using: &generator)
            }
        default:
            return (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func randomSessions(_ seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let listing = POP3Maildrop(messages: (1...3).map { .init(size: 100 * $0, uniqueID: "u\($0)") })
        var reached: Set<POP3Session.State> = []
        for _ in 0..<200 {
            var configuration = POP3Session.Configuration(hostname: "pop.example.com")
            configuration.stlsAvailable = Bool.random(using: &generator)
            configuration.tlsRequired = configuration.stlsAvailable && Bool.random(using: &generator)
            configuration.allowPlaintextAuth = Bool.random(using: &generator)
            configuration.maxErrors = Bool.random(using: &generator) ? 10 : 100
            var session = POP3Session(configuration: configuration, isTLS: Bool.random(using: &generator))
            var action = session.connected()
            // A third of the sessions start by logging in and deleting, so UPDATE is reached too.
            var script = Int.random(in: 0..<3, using: &generator) == 0 ? ["USER alice", "PASS pw", "DELE 1"] : []
            var previous = session.state
            for _ in 0..<60 {
                action = Self.answer(action, session: &session, listing: listing, reached: &reached, using: &generator)
                #expect(session.state >= previous, "went back from \(previous) to \(session.state)")
                previous = session.state
                reached.insert(session.state)
                #expect(session.errorCount <= configuration.maxErrors)
                if session.state == .closed {
                    #expect(session.line(Array("NOOP".utf8)) == .none)
                    break
                }
                guard session.acceptsInput else { continue }
                switch Int.random(in: 0..<200, using: &generator) {
                case 0: action = session.badLine()
                case 1: action = session.lineTooLong()
                case 2: action = session.drain()
                case 3: session.tlsEstablished(); action = .none
                default:
                    let line = script.isEmpty ? Self.randomLine(using: &generator) : Array(script.removeFirst().utf8)
                    action = session.line(line)
                }
                Self.check(action, session: session, listing: listing)
            }
        }
        #expect(reached == [.authorization, .transaction, .update, .closed], "the fuzz reached every state")
    }

    /// Answers the lookup an action asks for, the way a handler would, at random.
    static func answer(
        _ action: POP3Session.Action, session: inout POP3Session, listing: POP3Maildrop,
        reached: inout Set<POP3Session.State>, using generator: inout SeededGenerator
    ) -> POP3Session.Action {
        reached.insert(session.state)
        var next: POP3Session.Action
        switch action {
        case .verifyPassword:
            let verdicts: [AuthVerdict] = [.accepted, .accepted, .rejected(delay: .zero), .busy, .banned]
            next = session.passwordChecked(verdicts.randomElement(using: &generator)!)
        case .openMaildrop:
            let openings: [POP3MaildropOpening] = [.opened(listing), .opened(listing), .locked, .failed]
            next = session.maildropOpened(openings.randomElement(using: &generator)!)
        case .sendMessage:
            next = Bool.random(using: &generator) ? session.messageSent() : session.messageUnavailable()
        case .commitDeletions:
            next = session.deletionsCommitted(Bool.random(using: &generator))
        case .startTLS:
            session.tlsEstablished()
            next = .none
        case .reply, .replyAndClose, .close, .none:
            return action
        }
        check(next, session: session, listing: listing)
        return answer(next, session: &session, listing: listing, reached: &reached, using: &generator)
    }

    static func check(_ action: POP3Session.Action, session: POP3Session, listing: POP3Maildrop) {
        switch action {
        case .verifyPassword, .openMaildrop:
            #expect(session.state == .authorization)
            #expect(!session.acceptsInput)
        case .sendMessage(let number, _, _):
            #expect(session.state == .transaction)
            #expect((1...listing.messages.count).contains(number) && !session.deleted.contains(number))
        case .commitDeletions(let numbers):
            #expect(session.state == .update)
            #expect(!numbers.isEmpty && numbers == session.deleted.sorted())
        case .startTLS:
            #expect(session.state == .authorization && !session.isTLS)
        case .replyAndClose, .close:
            #expect(session.state == .closed)
        case .reply(let reply):
            #expect(!reply.description.isEmpty)
        case .none:
            break
        }
    }
}
