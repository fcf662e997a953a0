import NIOCore

/// Splits the inbound byte stream into command lines, or the DATA body, strictly on CRLF.
/// RFC 5321 §2.3.8: a bare CR or bare LF is never a line end — accepting one is what SMTP
/// smuggling exploits, so "\n.\r\n" never ends DATA here. Pure: no channel, no I/O.
public struct SMTPFramer {
    public enum CommandFrame: Equatable, Sendable {
        /// A complete line, CRLF removed.
        case line(ByteBuffer)
        /// The line was longer than allowed; its bytes up to the next LF were discarded.
        case tooLong
        /// The line ended in a bare LF or held a bare CR.
        case bareLineEnding
    }

    public enum DataProblem: Equatable, Sendable {
        case tooLarge
        case lineTooLong
        case bareLineEnding
    }

    public enum DataFrame: Equatable, Sendable {
        /// The terminating "." arrived. `content` is dot-unstuffed with CRLF line ends;
        /// with a problem, the content was dropped and the message must be refused.
        case complete(content: ByteBuffer, problem: DataProblem?)
    }

    private var buffer: ByteBuffer?
    /// In command mode: discarding the rest of an over-long line.
    private var discardingLine = false
    /// DATA state.
    private var content = ByteBuffer()
    private var problem: DataProblem?
    /// A "." line ends DATA only right after a CRLF (or at its very start).
    private var atLineStartAfterCRLF = true
    private var inLongDataLine = false
    public let maxMessageSize: Int

    public init(maxMessageSize: Int = SMTPLimits.defaultMessageSize) {
        self.maxMessageSize = maxMessageSize
    }

    public var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    public mutating func append(_ bytes: ByteBuffer) {
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = bytes
        } else {
            var incoming = bytes
            buffer!.writeBuffer(&incoming)
        }
    }

    /// Drops everything buffered (bytes pipelined after STARTTLS). Returns how many.
    public mutating func discardBuffered() -> Int {
        let count = bufferedBytes
        buffer = nil
        discardingLine = false
        return count
    }

    /// Frees the buffer when it is empty, so an idle session holds no read buffer.
    private mutating func releaseIfEmpty() {
        if let b = buffer, b.readableBytes == 0 { buffer = nil }
    }

    /// The next command line, or nil if more bytes are needed.
    public mutating func nextCommand(maxLength: Int = SMTPLimits.commandLineLength) -> CommandFrame? {
        defer { releaseIfEmpty() }
        guard var current = buffer, current.readableBytes > 0 else { return nil }
        let view = current.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if discardingLine || current.readableBytes > maxLength {
                // Keep a trailing CR: it may start the CRLF that ends this line.
                let keep = view.last == UInt8(ascii: "\r") ? 1 : 0
                current.moveReaderIndex(forwardBy: current.readableBytes - keep)
                buffer = current
                let first = !discardingLine
                discardingLine = true
                return first ? .tooLong : nil
            }
            return nil
        }
        let lineLength = lf - view.startIndex + 1  // including LF
        var line = current.readSlice(length: lineLength)!
        buffer = current
        if discardingLine {
            discardingLine = false
            return nextCommand(maxLength: maxLength)
        }
        guard lineLength >= 2, line.getInteger(at: line.readerIndex + lineLength - 2, as: UInt8.self) == UInt8(ascii: "\r")
        else { return .bareLineEnding }
        line = line.getSlice(at: line.readerIndex, length: lineLength - 2)!
        if line.readableBytesView.contains(UInt8(ascii: "\r")) { return .bareLineEnding }
        if lineLength > maxLength { return .tooLong }
        return .line(line)
    }

    /// Starts collecting a message body (after the 354 reply).
    public mutating func beginData() {
        content = ByteBuffer()
        content.reserveCapacity(4096)
        problem = nil
        atLineStartAfterCRLF = true
        inLongDataLine = false
    }

    /// Consumes body lines; returns `.complete` at the terminating ".", nil if more is needed.
    public mutating func nextData() -> DataFrame? {
        defer { releaseIfEmpty() }
        guard var current = buffer else { return nil }
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
                buffer = current
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
                buffer = current
                let result = DataFrame.complete(content: problem == nil ? content : ByteBuffer(), problem: problem)
                content = ByteBuffer()
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
            if content.readableBytes + payload.readableBytes > maxMessageSize {
                flag(.tooLarge)
                continue
            }
            content.writeBuffer(&payload)
        }
        buffer = current
        return nil
    }

    private mutating func flag(_ newProblem: DataProblem) {
        if problem == nil { problem = newProblem }
        content = ByteBuffer()
    }
}
