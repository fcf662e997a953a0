import BerthTestSupport
import Testing

@testable import BerthIMAP

/// What the framer produced, in a form that does not depend on how the input was split:
/// consecutive APPEND pieces are joined.
enum FrameEvent: Equatable, Sendable, CustomStringConvertible {
    case command(String, streamed: Int? = nil)
    case continuation
    case appendBegin(tag: String?, size: Int)
    case appendBytes(String)
    case appendEnd
    case error(IMAPFramingError.Kind, tag: String?)

    var description: String {
        switch self {
        case .command(let text, let streamed): "command(\(text.debugDescription), streamed: \(streamed.map(String.init) ?? "nil"))"
        case .continuation: "continuation"
        case .appendBegin(let tag, let size): "appendBegin(\(tag ?? "nil"), \(size))"
        case .appendBytes(let text): "appendBytes(\(text.count) octets)"
        case .appendEnd: "appendEnd"
        case .error(let kind, let tag): "error(\(kind), \(tag ?? "nil"))"
        }
    }
}

struct FramerFixture: CustomTestStringConvertible, Sendable {
    let input: String
    let limits: IMAPLimits
    let expected: [FrameEvent]
    var testDescription: String { input.count > 80 ? String(input.prefix(80)).debugDescription + "…" : input.debugDescription }

    init(_ input: String, limits: IMAPLimits = .default, _ expected: [FrameEvent]) {
        self.input = input
        self.limits = limits
        self.expected = expected
    }
}


struct IMAPFramerTests {
    /// Feeds `chunks` and collects every frame, checking the buffering bound after each chunk.
    static func frames(_ chunks: [[UInt8]], limits: IMAPLimits = .default) -> [FrameEvent] {
        var framer = IMAPFramer(limits: limits)
        var events: [FrameEvent] = []
        for chunk in chunks {
            framer.append(chunk)
            while let frame = framer.next() {
                switch frame {
                case .command(let command):
                    events.append(.command(String(decoding: command.bytes, as: UTF8.self), streamed: command.streamedLiteral?.size))
                case .continuationRequest: events.append(.continuation)
                case .appendMessageBegin(let tag, let size): events.append(.appendBegin(tag: tag, size: size))
                case .appendMessageBytes(let piece):
                    #expect(piece.count <= limits.appendChunkSize)
                    if case .appendBytes(let previous)? = events.last {
                        events[events.count - 1] = .appendBytes(previous + String(decoding: piece, as: UTF8.self))
                    } else {
                        events.append(.appendBytes(String(decoding: piece, as: UTF8.self)))
                    }
                case .appendMessageEnd: events.append(.appendEnd)
                case .error(let error): events.append(.error(error.kind, tag: error.tag))
                }
            }
            #expect(framer.bufferedBytes <= limits.maxCommandSize)
        }
        return events
    }

    static let small = IMAPLimits(maxLineLength: 64, maxLiteralSize: 10, maxAppendLiteralSize: 20, maxLiteralsPerCommand: 2,
                                  maxCommandSize: 100, appendChunkSize: 4)
    static let x100 = String(repeating: "x", count: 100)
    static let y20 = String(repeating: "y", count: 20)

    static let fixtures: [FramerFixture] = [
        FramerFixture("a NOOP\r\n", [.command("a NOOP")]),
        FramerFixture("a NOOP\r\nb LOGOUT\r\n", [.command("a NOOP"), .command("b LOGOUT")]),
        FramerFixture("a NOOP", []),
        FramerFixture("\r\n", [.command("")]),
        // RFC 3501 §4.3: a synchronizing literal waits for "+".
        FramerFixture("a LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
                      [.continuation, .continuation, .command("a LOGIN {5}\r\nalice {6}\r\nsecret")]),
        // RFC 7888: a non-synchronizing literal does not.
        FramerFixture("a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n", [.command("a LOGIN {5+}\r\nalice {6+}\r\nsecret")]),
        // A literal's bytes are not lines: CRLF inside, then more of the command line.
        FramerFixture("a SEARCH SUBJECT {3}\r\na\r\n BODY x\r\nb NOOP\r\n",
                      [.continuation, .command("a SEARCH SUBJECT {3}\r\na\r\n BODY x"), .command("b NOOP")]),
        FramerFixture("a LOGIN {0}\r\n {0+}\r\n\r\n", [.continuation, .command("a LOGIN {0}\r\n {0+}\r\n")]),
        // Lines end in CRLF only.
        FramerFixture("a NOOP\rb NOOP\r\nc NOOP\r\n", [.error(.bareLineEnding, tag: "a"), .command("c NOOP")]),
        FramerFixture("a NOOP\nc NOOP\r\n", [.error(.bareLineEnding, tag: "a"), .command("c NOOP")]),
        FramerFixture("a NOOP\r", []),
        // Over-long lines are skipped to their end; the session goes on.
        FramerFixture("a " + x100 + "\r\nb NOOP\r\n", limits: small, [.error(.lineTooLong(limit: 64), tag: "a"), .command("b NOOP")]),
        FramerFixture("(((" + x100 + "\r\nb NOOP\r\n", limits: small, [.error(.lineTooLong(limit: 64), tag: nil), .command("b NOOP")]),
        // ... and a non-synchronizing literal announced at the end of one is skipped too.
        FramerFixture("a " + x100 + " {5+}\r\nhello\r\nb NOOP\r\n", limits: small,
                      [.error(.lineTooLong(limit: 64), tag: "a"), .command("b NOOP")]),
        // A line exactly at the limit (CRLF included) passes.
        FramerFixture("a " + String(repeating: "x", count: 60) + "\r\n", limits: small, [.command("a " + String(repeating: "x", count: 60))]),
        FramerFixture("a " + String(repeating: "x", count: 61) + "\r\n", limits: small, [.error(.lineTooLong(limit: 64), tag: "a")]),
        // A synchronizing literal over the limit: refused before the client sends it; nothing
        // after the line is consumed.
        FramerFixture("a LOGIN {11}\r\nb NOOP\r\n", limits: small,
                      [.error(.literalTooLarge(size: 11, limit: 10, synchronizing: true), tag: "a"), .command("b NOOP")]),
        FramerFixture("a LOGIN {99999999999999999999999}\r\nb NOOP\r\n",
                      [.error(.literalTooLarge(size: Int.max, limit: IMAPLimits.defaultLiteralSize, synchronizing: true), tag: "a"),
                       .command("b NOOP")]),
        // A non-synchronizing one arrives anyway: read and dropped (RFC 7888 §4), with the
        // rest of its command, even when it looks like commands.
        FramerFixture("a LOGIN {20+}\r\nb NOOP\r\nc NOOP\r\nd NO x\r\ne NOOP\r\n", limits: small,
                      [.error(.literalTooLarge(size: 20, limit: 10, synchronizing: false), tag: "a"), .command("e NOOP")]),
        FramerFixture("a LOGIN {20+}\r\n" + y20 + " {3+}\r\nabc\r\ne NOOP\r\n", limits: small,
                      [.error(.literalTooLarge(size: 20, limit: 10, synchronizing: false), tag: "a"), .command("e NOOP")]),
        // A refused command's later synchronizing literal is never sent (no "+" comes).
        FramerFixture("a LOGIN {20+}\r\n" + y20 + " {3}\r\ne NOOP\r\n", limits: small,
                      [.error(.literalTooLarge(size: 20, limit: 10, synchronizing: false), tag: "a"), .command("e NOOP")]),
        FramerFixture("a X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\nd NOOP\r\n", limits: small,
                      [.error(.tooManyLiterals(limit: 2), tag: "a"), .command("d NOOP")]),
        FramerFixture("a X {10+}\r\n0123456789 {10+}\r\n0123456789 " + String(repeating: "z", count: 50) + " {10+}\r\n0123456789\r\nd NOOP\r\n",
                      limits: IMAPLimits(maxLineLength: 64, maxLiteralSize: 10, maxLiteralsPerCommand: 5, maxCommandSize: 100),
                      [.error(.commandTooLarge(limit: 100), tag: "a"), .command("d NOOP")]),
        // APPEND: the message literal is streamed out, the rest of the command follows.
        FramerFixture("a APPEND INBOX {5}\r\nhello\r\n",
                      [.appendBegin(tag: "a", size: 5), .continuation, .appendBytes("hello"), .appendEnd,
                       .command("a APPEND INBOX {5}\r\n", streamed: 5)]),
        FramerFixture("a append INBOX (\\Seen) {12+}\r\nhello\r\nworld\r\nb NOOP\r\n",
                      [.appendBegin(tag: "a", size: 12), .appendBytes("hello\r\nworld"), .appendEnd,
                       .command("a append INBOX (\\Seen) {12+}\r\n", streamed: 12), .command("b NOOP")]),
        // The mailbox may itself be a literal: that one is an ordinary literal.
        FramerFixture("a APPEND {5}\r\nINBOX {3+}\r\nabc\r\n",
                      [.continuation, .appendBegin(tag: "a", size: 3), .appendBytes("abc"), .appendEnd,
                       .command("a APPEND {5}\r\nINBOX {3+}\r\n", streamed: 3)]),
        FramerFixture("a APPEND INBOX {0+}\r\n\r\n",
                      [.appendBegin(tag: "a", size: 0), .appendEnd, .command("a APPEND INBOX {0+}\r\n", streamed: 0)]),
        // The APPEND limit is its own (here 20, above the ordinary 10).
        FramerFixture("a APPEND INBOX {15}\r\n", limits: small, [.appendBegin(tag: "a", size: 15), .continuation]),
        FramerFixture("a APPEND INBOX {21}\r\nb NOOP\r\n", limits: small,
                      [.error(.literalTooLarge(size: 21, limit: 20, synchronizing: true), tag: "a"), .command("b NOOP")]),
        FramerFixture("a APPEND INBOX {21+}\r\n" + String(repeating: "m", count: 21) + "\r\nb NOOP\r\n", limits: small,
                      [.error(.literalTooLarge(size: 21, limit: 20, synchronizing: false), tag: "a"), .command("b NOOP")]),
        // Trouble after the message: an error, and the caller throws the message away.
        FramerFixture("a APPEND INBOX {3+}\r\nabc" + x100 + "\r\nb NOOP\r\n", limits: small,
                      [.appendBegin(tag: "a", size: 3), .appendBytes("abc"), .appendEnd, .error(.lineTooLong(limit: 64), tag: "a"),
                       .command("b NOOP")]),
    ]

    @Test(arguments: fixtures)
    func frames(_ fixture: FramerFixture) {
        #expect(Self.frames([Array(fixture.input.utf8)], limits: fixture.limits) == fixture.expected)
    }

    /// Byte by byte, whole, and in random splits all frame the same
    /// (the idea of NIO's ByteToMessageDecoderVerifier).
    @Test(arguments: fixtures)
    func splitsDoNotMatter(_ fixture: FramerFixture) {
        let input = Array(fixture.input.utf8)
        #expect(Self.frames(input.map { [$0] }, limits: fixture.limits) == fixture.expected)
        var generator = SeededGenerator(seed: UInt64(input.count))
        for _ in 0..<20 {
            var chunks: [[UInt8]] = []
            var rest = input[...]
            while !rest.isEmpty {
                let n = Int.random(in: 1...max(1, min(17, rest.count)), using: &generator)
                chunks.append(Array(rest.prefix(n)))
                rest = rest.dropFirst(n)
            }
            #expect(Self.frames(chunks, limits: fixture.limits) == fixture.expected)
        }
    }

    /// The framed commands parse: a LOGIN with literals and a streamed APPEND.
    @Test func framedCommandsParse() {
        var framer = IMAPFramer()
        framer.append(Array("a LOGIN {5}\r\nalice {6+}\r\nsecret\r\nb APPEND Drafts (\\Draft) {4+}\r\nbody\r\n".utf8))
        var commands: [IMAPCommand] = []
        while let frame = framer.next() {
            if case .command(let bytes) = frame, case .success(let command) = IMAPCommandParser.parse(bytes) {
                commands.append(command)
            }
        }
        #expect(commands == [
            IMAPCommand(tag: "a", .login(user: "alice", password: "secret")),
            IMAPCommand(tag: "b", .append(IMAPAppendCommand(mailbox: IMAPMailboxName("Drafts"), flags: [.draft], message: .streamed(size: 4)))),
        ])
    }

    /// A 10 MiB APPEND goes through in pieces while the framer holds only a line's worth.
    @Test func appendStreamsLargeMessages() {
        let size = 10 * 1024 * 1024
        var framer = IMAPFramer()
        framer.append(Array("A1 APPEND INBOX {\(size)}\r\n".utf8))
        #expect(framer.next() == .appendMessageBegin(tag: "A1", size: size))
        #expect(framer.next() == .continuationRequest)
        #expect(framer.next() == nil)
        var generator = SeededGenerator(seed: 10)
        // Byte i of the message is i % 251, so each piece shows where it sits.
        let pattern = (0..<(251 * 1000)).map { UInt8($0 % 251) }
        var received = 0
        var sent = 0
        var maxBuffered = 0
        var ended = false
        while sent < size {
            let count = min(size - sent, Int.random(in: 1...200_000, using: &generator))
            let start = sent % 251
            framer.append(pattern[start..<(start + count)])
            sent += count
            while let frame = framer.next() {
                switch frame {
                case .appendMessageBytes(let piece):
                    #expect(piece.count <= IMAPLimits.defaultAppendChunkSize)
                    #expect(piece.first == UInt8(received % 251))
                    #expect(piece.last == UInt8((received + piece.count - 1) % 251))
                    received += piece.count
                case .appendMessageEnd:
                    ended = true
                default:
                    Issue.record("unexpected \(frame)")
                }
            }
            maxBuffered = max(maxBuffered, framer.bufferedBytes)
        }
        framer.append(Array("\r\n".utf8))
        var last: IMAPFrame?
        while let frame = framer.next() { last = frame }
        #expect(received == size)
        #expect(ended)
        #expect(maxBuffered < 64)
        guard case .command(let bytes)? = last else {
            Issue.record("no command after the message")
            return
        }
        #expect(IMAPCommandParser.parse(bytes)
            == .success(IMAPCommand(tag: "A1", .append(IMAPAppendCommand(mailbox: .inbox, message: .streamed(size: size))))))
    }

    /// Nothing is allocated from an announced length: a huge `{n}` holds nothing.
    @Test func announcedLengthsAllocateNothing() {
        var framer = IMAPFramer(limits: IMAPLimits(maxLiteralSize: 1 << 30, maxCommandSize: 1 << 31))
        framer.append(Array("a LOGIN {1000000000}\r\n".utf8))
        #expect(framer.next() == .continuationRequest)
        #expect(framer.next() == nil)
        #expect(framer.bufferedBytes < 64)
    }

    @Test func discardBufferedDropsPipelinedBytes() {
        var framer = IMAPFramer()
        framer.append(Array("a STARTTLS\r\nb LOGIN x y\r\n".utf8))
        #expect(framer.next() == .command(IMAPCommandBytes("a STARTTLS")))
        #expect(framer.discardBuffered() == 13)
        #expect(framer.next() == nil)
        framer.append(Array("c NOOP\r\n".utf8))
        #expect(framer.next() == .command(IMAPCommandBytes("c NOOP")))
    }

    @Test func literalMarkers() {
        func marker(_ text: String) -> IMAPFramer.LiteralMarker? { IMAPFramer.literalMarker(Array(text.utf8)[...]) }
        #expect(marker("a {5}") == .init(size: 5, nonSynchronizing: false, start: 2))
        #expect(marker("a {5+}") == .init(size: 5, nonSynchronizing: true, start: 2))
        #expect(marker("{0}") == .init(size: 0, nonSynchronizing: false, start: 0))
        #expect(marker("a {}") == nil)
        #expect(marker("a {+}") == nil)
        #expect(marker("a 5}") == nil)
        #expect(marker("a {5") == nil)
        #expect(marker("a {-5}") == nil)
        #expect(marker("}") == nil)
    }
}
