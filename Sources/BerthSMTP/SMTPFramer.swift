import BerthNet
import NIOCore

/// Splits the inbound byte stream into command lines, or the DATA body, strictly on CRLF.
/// RFC 5321 §2.3.8: a bare CR or bare LF is never a line end — accepting one is what SMTP
/// smuggling exploits, so "\n.\r\n" never ends DATA here. Pure: no channel, no I/O.
public struct SMTPFramer: BufferedInput {
    /// Command lines are the session kit's CRLF lines with a hard cap.
    public typealias CommandFrame = LineFramer.Frame

    public enum DataProblem: Equatable, Sendable {
        case tooLarge
        case lineTooLong
        case bareLineEnding
    }

    public enum DataFrame: Equatable, Sendable {
        /// The next piece of the body, in order: whole lines, dot-unstuffed, CRLF line ends.
        /// Handed out every `chunkSize` bytes, so a body never piles up in memory.
        case content(ByteBuffer)
        /// The terminating "." arrived. With a problem, the message must be refused and
        /// the pieces handed out so far thrown away.
        case complete(problem: DataProblem?)
    }

    /// How much body the framer collects before handing it out.
    public static let chunkSize = 16 * 1024

    private var lines = LineFramer()
    /// DATA state.
    private var content = ByteBuffer()
    private var problem: DataProblem?
    /// Body bytes so far (for the size limit).
    private var received = 0
    /// The "." was seen but the last piece of content goes out first.
    private var completionPending = false
    /// A "." line ends DATA only right after a CRLF (or at its very start).
    private var atLineStartAfterCRLF = true
    private var inLongDataLine = false
    public let maxMessageSize: Int

    public init(maxMessageSize: Int = SMTPLimits.defaultMessageSize) {
        self.maxMessageSize = maxMessageSize
    }

    public var bufferedBytes: Int { lines.bufferedBytes }

    public mutating func append(_ bytes: ByteBuffer) { lines.append(bytes) }

    /// Drops everything buffered (bytes pipelined after STARTTLS). Returns how many.
    public mutating func discardBuffered() -> Int { lines.discardBuffered() }

    /// The next command line, or nil if more bytes are needed.
    public mutating func nextCommand(maxLength: Int = SMTPLimits.commandLineLength) -> CommandFrame? {
        lines.nextLine(maxLength: maxLength)
    }

    /// Starts collecting a message body (after the 354 reply).
    public mutating func beginData() {
        content = ByteBuffer()
        problem = nil
        received = 0
        completionPending = false
        atLineStartAfterCRLF = true
        inLongDataLine = false
    }

    /// Consumes body lines; returns a piece of content when one is ready, `.complete` at
    /// the terminating ".", nil if more is needed.
    public mutating func nextData() -> DataFrame? {
        if completionPending {
            completionPending = false
            let result = DataFrame.complete(problem: problem)
            problem = nil
            return result
        }
        if content.readableBytes >= Self.chunkSize { return takeContent() }
        guard var current = lines.takeBuffer() else { return nil }
        defer { lines.putBack(current) }
        return nextData(from: &current)
    }

    private mutating func nextData(from current: inout ByteBuffer) -> DataFrame? {
        while current.readableBytes > 0 {
            let view = current.readableBytesView
            guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if current.readableBytes > SMTPLimits.textLineLength || inLongDataLine {
                    flag(.lineTooLong)
                    inLongDataLine = true
                    atLineStartAfterCRLF = false
                    let keep = view.last == UInt8(ascii: "\r") ? 1 : 0
                    current.moveReaderIndex(forwardBy: current.readableBytes - keep)
                }
                return nil
            }
            let lineLength = lf - view.startIndex + 1
            let line = current.readSlice(length: lineLength)!
            let lineView = line.readableBytesView
            let endsWithCRLF = lineLength >= 2 && lineView[lineView.endIndex - 2] == UInt8(ascii: "\r")
            let wasLong = inLongDataLine
            inLongDataLine = false
            let startedAfterCRLF = atLineStartAfterCRLF
            atLineStartAfterCRLF = endsWithCRLF
            if !endsWithCRLF || lineView.dropLast(2).contains(UInt8(ascii: "\r")) {
                flag(.bareLineEnding)
                continue
            }
            if wasLong { continue }
            // RFC 5321 §4.1.1.4: "." alone ends the data; §4.5.2: a leading dot is removed.
            if lineLength == 3 && lineView.first == UInt8(ascii: ".") && startedAfterCRLF {
                if problem == nil && content.readableBytes > 0 {
                    completionPending = true
                    return takeContent()
                }
                content = ByteBuffer()
                let result = DataFrame.complete(problem: problem)
                problem = nil
                return result
            }
            if lineLength > SMTPLimits.textLineLength {
                flag(.lineTooLong)
                continue
            }
            guard problem == nil else { continue }
            var payload = line
            if lineView.first == UInt8(ascii: ".") { payload.moveReaderIndex(forwardBy: 1) }
            received += payload.readableBytes
            if received > maxMessageSize {
                flag(.tooLarge)
                continue
            }
            content.writeBuffer(&payload)
            if content.readableBytes >= Self.chunkSize {
                return takeContent()
            }
        }
        return nil
    }

    private mutating func takeContent() -> DataFrame {
        let piece = content
        content = ByteBuffer()
        return .content(piece)
    }

    private mutating func flag(_ newProblem: DataProblem) {
        if problem == nil { problem = newProblem }
        content = ByteBuffer()
    }
}
