/// A command as the framer assembled it, ready for `IMAPCommandParser`.
public struct IMAPCommandBytes: Sendable, Hashable {
    /// The command as the client sent it, the final CRLF removed: each line segment, the
    /// CRLF after every `{n}` marker, and each literal's bytes inline — except the
    /// streamed APPEND message, whose bytes are absent (the caller spooled them).
    public var bytes: [UInt8]
    /// The APPEND message literal the framer streamed out instead of keeping.
    public var streamedLiteral: StreamedLiteral?

    public struct StreamedLiteral: Sendable, Hashable {
        /// Where the literal's bytes would start in `bytes` (just after its `{n}` CRLF).
        public var offset: Int
        public var size: Int

        public init(offset: Int, size: Int) {
            self.offset = offset
            self.size = size
        }
    }

    public init(_ bytes: [UInt8], streamedLiteral: StreamedLiteral? = nil) {
        self.bytes = bytes
        self.streamedLiteral = streamedLiteral
    }

    public init(_ text: String) {
        self.init(Array(text.utf8))
    }
}

/// What the framer hands out, in order.
public enum IMAPFrame: Sendable, Hashable {
    /// A complete command (line segments and literals).
    case command(IMAPCommandBytes)
    /// The client announced a synchronizing literal `{n}` and waits: send a continuation
    /// request (`+ Ready`) now (RFC 3501 §7.5).
    case continuationRequest
    /// An APPEND message literal of `size` octets begins; its bytes follow as
    /// `.appendMessageBytes` and end with `.appendMessageEnd`, then the rest of the command
    /// arrives as `.command`. An `.error` before that `.command` means the message is to
    /// be thrown away. For a synchronizing literal `.continuationRequest` comes next.
    case appendMessageBegin(tag: String?, size: Int)
    /// The next piece of the APPEND message, as it arrived.
    case appendMessageBytes([UInt8])
    case appendMessageEnd
    /// The command was refused while framing; answer `tag BAD reason` (or `* BAD`). The
    /// session continues: the framer has skipped, or will skip, the rest of the command.
    case error(IMAPFramingError)
}

/// Why a command could not be framed. Never holds the command's bytes (they may be a
/// password).
public struct IMAPFramingError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// A line segment longer than `IMAPLimits.maxLineLength`.
        case lineTooLong(limit: Int)
        /// The command's lines and literals together exceed `IMAPLimits.maxCommandSize`.
        case commandTooLarge(limit: Int)
        /// A literal over its limit. A synchronizing one was never sent by the client; a
        /// non-synchronizing one is being read and dropped (RFC 7888 §4).
        case literalTooLarge(size: Int, limit: Int, synchronizing: Bool)
        case tooManyLiterals(limit: Int)
        /// A line ended in a bare LF or held a bare CR (RFC 3501 §2.2: lines end in CRLF).
        case bareLineEnding
    }

    public var kind: Kind
    /// The command's tag, when its start was readable.
    public var tag: String?

    public init(_ kind: Kind, tag: String?) {
        self.kind = kind
        self.tag = tag
    }

    /// Worth a `[TOOBIG]` response code (RFC 7888 §4, RFC 4469).
    public var isTooBig: Bool {
        switch kind {
        case .lineTooLong, .commandTooLarge, .literalTooLarge, .tooManyLiterals: true
        case .bareLineEnding: false
        }
    }

    public var description: String {
        switch kind {
        case .lineTooLong(let limit): "command line too long (\(limit) octets at most)"
        case .commandTooLarge(let limit): "command too large (\(limit) octets at most with its literals)"
        case .literalTooLarge(_, let limit, _): "literal too large (\(limit) octets at most)"
        case .tooManyLiterals(let limit): "too many literals in one command (\(limit) at most)"
        case .bareLineEnding: "bare CR or LF; end lines with CRLF"
        }
    }
}

/// Splits the inbound byte stream into IMAP commands: CRLF-ended lines and the literals
/// `{n}` (RFC 3501 §4.3) and `{n+}` (RFC 7888) they announce. The APPEND message literal
/// is streamed out as it arrives so the caller can spool it; everything else of a command
/// is kept until the command is complete, within `IMAPLimits`. No allocation is sized by
/// a length the client announced: literal bytes are copied only as they arrive. Pure: no
/// channel, no I/O.
public struct IMAPFramer: Sendable {
    public let limits: IMAPLimits

    /// Bytes received and not yet framed.
    private var input: [UInt8] = []
    private var inputIndex = 0
    /// The command being assembled.
    private var command: [UInt8] = []
    /// Where the current line segment starts in `command`.
    private var segmentStart = 0
    private var literalCount = 0
    private var streamed: IMAPCommandBytes.StreamedLiteral?
    private var state: State = .line
    /// Frames produced together (an APPEND begin and its continuation request).
    private var pending: [IMAPFrame] = []

    private enum State: Sendable {
        case line
        case literal(remaining: Int)
        case appendMessage(remaining: Int)
        /// Skipping to the end of a refused command's line; `tail` keeps its last octets
        /// to see whether the line announced a literal.
        case discardLine(tail: [UInt8])
        /// Skipping a non-synchronizing literal of a refused command.
        case discardLiteral(remaining: Int)
    }

    private enum Step {
        case frame(IMAPFrame)
        case again
        case needInput
    }

    /// Enough of a line's end to hold the largest literal marker `{n+}` and a CR.
    private static let tailLength = 32

    public init(limits: IMAPLimits = .default) {
        self.limits = limits
    }

    /// Bytes held: received and not yet framed, plus the command being assembled.
    public var bufferedBytes: Int { input.count - inputIndex + command.count }

    /// The command being assembled (bounded by `IMAPLimits.maxCommandSize`).
    public var commandBytes: Int { command.count }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if inputIndex >= input.count {
            input = Array(bytes)
        } else {
            input.removeFirst(inputIndex)
            input.append(contentsOf: bytes)
        }
        inputIndex = 0
    }

    /// Drops everything received and not yet framed (bytes pipelined after STARTTLS) and
    /// any half-assembled command. Returns how many bytes were dropped.
    public mutating func discardBuffered() -> Int {
        let count = bufferedBytes
        input = []
        inputIndex = 0
        resetCommand()
        state = .line
        pending = []
        return count
    }

    /// The next frame, or nil when more bytes are needed. Call until nil after each
    /// `append`: then every byte received has been framed, kept or dropped.
    public mutating func next() -> IMAPFrame? {
        if !pending.isEmpty { return pending.removeFirst() }
        while true {
            let step: Step
            switch state {
            case .line: step = readLine()
            case .literal(let remaining): step = readLiteral(remaining)
            case .appendMessage(let remaining): step = readAppendMessage(remaining)
            case .discardLine(let tail): step = discardLine(tail)
            case .discardLiteral(let remaining): step = discardLiteral(remaining)
            }
            switch step {
            case .frame(let frame): return frame
            case .again: continue
            case .needInput:
                if inputIndex >= input.count {
                    input = []
                    inputIndex = 0
                }
                return nil
            }
        }
    }

    // MARK: - States

    private mutating func readLine() -> Step {
        guard inputIndex < input.count else { return .needInput }
        let available = input[inputIndex...]
        let lf = available.firstIndex(of: ASCII.lf)
        let chunk = input[inputIndex..<(lf ?? input.endIndex)]
        let segmentLength = command.count - segmentStart + chunk.count + (lf == nil ? 0 : 1)
        if segmentLength > limits.maxLineLength {
            return refuse(.lineTooLong(limit: limits.maxLineLength))
        }
        if command.count + chunk.count + (lf == nil ? 0 : 1) > limits.maxCommandSize {
            return refuse(.commandTooLarge(limit: limits.maxCommandSize))
        }
        command.append(contentsOf: chunk)
        guard let lf else {
            inputIndex = input.count
            return .needInput
        }
        inputIndex = lf + 1
        let segment = command[segmentStart...]
        guard segment.last == ASCII.cr, !segment.dropLast().contains(ASCII.cr) else {
            let error = IMAPFramingError(.bareLineEnding, tag: IMAPGrammar.readableTag(command))
            resetCommand()
            return .frame(.error(error))
        }
        guard let marker = Self.literalMarker(segment.dropLast()) else {
            command.removeLast()
            let frame = IMAPFrame.command(IMAPCommandBytes(command, streamedLiteral: streamed))
            command = []
            resetCommand()
            return .frame(frame)
        }
        command.append(ASCII.lf)
        return startLiteral(marker)
    }

    private mutating func startLiteral(_ marker: LiteralMarker) -> Step {
        literalCount += 1
        let isMessage = streamed == nil && isAppendMessageLiteral(markerStart: marker.start)
        let limit = isMessage ? limits.maxAppendLiteralSize : limits.maxLiteralSize
        var refusal: IMAPFramingError.Kind?
        if literalCount > limits.maxLiteralsPerCommand {
            refusal = .tooManyLiterals(limit: limits.maxLiteralsPerCommand)
        } else if marker.size > limit {
            refusal = .literalTooLarge(size: marker.size, limit: limit, synchronizing: !marker.nonSynchronizing)
        } else if !isMessage && command.count + marker.size > limits.maxCommandSize {
            refusal = .commandTooLarge(limit: limits.maxCommandSize)
        }
        if let refusal {
            let error = IMAPFramingError(refusal, tag: IMAPGrammar.readableTag(command))
            resetCommand()
            // RFC 7888 §4: a non-synchronizing literal arrives anyway and is read and
            // dropped; a synchronizing one is never sent, so the command ends here.
            state = marker.nonSynchronizing ? .discardLiteral(remaining: marker.size) : .line
            return .frame(.error(error))
        }
        if isMessage {
            streamed = IMAPCommandBytes.StreamedLiteral(offset: command.count, size: marker.size)
            state = .appendMessage(remaining: marker.size)
            if !marker.nonSynchronizing { pending.append(.continuationRequest) }
            return .frame(.appendMessageBegin(tag: IMAPGrammar.readableTag(command), size: marker.size))
        }
        state = .literal(remaining: marker.size)
        return marker.nonSynchronizing ? .again : .frame(.continuationRequest)
    }

    private mutating func readLiteral(_ remaining: Int) -> Step {
        if remaining == 0 {
            state = .line
            segmentStart = command.count
            return .again
        }
        guard inputIndex < input.count else { return .needInput }
        let count = min(remaining, input.count - inputIndex)
        command.append(contentsOf: input[inputIndex..<(inputIndex + count)])
        inputIndex += count
        state = .literal(remaining: remaining - count)
        return .again
    }

    private mutating func readAppendMessage(_ remaining: Int) -> Step {
        if remaining == 0 {
            state = .line
            segmentStart = command.count
            return .frame(.appendMessageEnd)
        }
        guard inputIndex < input.count else { return .needInput }
        let count = min(remaining, input.count - inputIndex, limits.appendChunkSize)
        let piece = Array(input[inputIndex..<(inputIndex + count)])
        inputIndex += count
        state = .appendMessage(remaining: remaining - count)
        return .frame(.appendMessageBytes(piece))
    }

    private mutating func discardLine(_ tail: [UInt8]) -> Step {
        guard inputIndex < input.count else { return .needInput }
        let available = input[inputIndex...]
        guard let lf = available.firstIndex(of: ASCII.lf) else {
            state = .discardLine(tail: Array((tail + available).suffix(Self.tailLength)))
            inputIndex = input.count
            return .needInput
        }
        var line = Array((tail + input[inputIndex..<lf]).suffix(Self.tailLength))
        inputIndex = lf + 1
        if line.last == ASCII.cr { line.removeLast() }
        if let marker = Self.literalMarker(line[...]), marker.nonSynchronizing {
            state = .discardLiteral(remaining: marker.size)
        } else {
            state = .line
        }
        return .again
    }

    private mutating func discardLiteral(_ remaining: Int) -> Step {
        if remaining == 0 {
            state = .discardLine(tail: [])
            return .again
        }
        guard inputIndex < input.count else { return .needInput }
        let count = min(remaining, input.count - inputIndex)
        inputIndex += count
        state = .discardLiteral(remaining: remaining - count)
        return .again
    }

    /// Reports `kind` for the command being assembled and skips the rest of it.
    private mutating func refuse(_ kind: IMAPFramingError.Kind) -> Step {
        // The tag is read from the same octets however the input was split.
        var head = Array(command.prefix(limits.maxLineLength))
        if head.count < limits.maxLineLength {
            head += input[inputIndex...].prefix(limits.maxLineLength - head.count)
        }
        let tag = IMAPGrammar.readableTag(head)
        let tail = Array(command[segmentStart...].suffix(Self.tailLength))
        resetCommand()
        state = .discardLine(tail: tail)
        return .frame(.error(IMAPFramingError(kind, tag: tag)))
    }

    private mutating func resetCommand() {
        command = []
        segmentStart = 0
        literalCount = 0
        streamed = nil
    }

    // MARK: - Literal markers

    struct LiteralMarker: Equatable {
        /// Saturates at `Int.max` for absurd lengths, which no limit allows.
        var size: Int
        var nonSynchronizing: Bool
        /// Index of the "{".
        var start: Int
    }

    /// `"{" number ["+"] "}"` at the very end of a line (RFC 3501 §9 `literal`, RFC 7888).
    static func literalMarker(_ line: ArraySlice<UInt8>) -> LiteralMarker? {
        guard line.last == UInt8(ascii: "}") else { return nil }
        var index = line.endIndex - 1
        var nonSynchronizing = false
        if index > line.startIndex && line[index - 1] == UInt8(ascii: "+") {
            nonSynchronizing = true
            index -= 1
        }
        let digitsEnd = index
        while index > line.startIndex && ASCII.isDigit(line[index - 1]) { index -= 1 }
        guard index < digitsEnd, index > line.startIndex, line[index - 1] == UInt8(ascii: "{") else { return nil }
        var size = 0
        for digit in line[index..<digitsEnd] {
            let (times10, overflow1) = size.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(digit - ASCII.zero))
            if overflow1 || overflow2 {
                size = Int.max
                break
            }
            size = sum
        }
        return LiteralMarker(size: size, nonSynchronizing: nonSynchronizing, start: index - 1)
    }

    /// RFC 3501 §6.3.11 `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP
    /// literal`: a literal in APPEND that is not the mailbox is the message.
    private func isAppendMessageLiteral(markerStart: Int) -> Bool {
        let head = command[..<markerStart]
        guard let firstSpace = head.firstIndex(of: ASCII.space) else { return false }
        let rest = head[(firstSpace + 1)...]
        let name = Array("APPEND ".utf8)
        guard rest.count > name.count else { return false }
        return zip(rest, name).allSatisfy { ASCII.uppercased($0) == $1 }
    }
}
