import NIOCore

/// Splits a byte stream into lines ended strictly by CRLF, with a hard length cap: the
/// line discipline SMTP commands, POP3 and IMAP commands share. A bare CR or bare LF is
/// never a line end (RFC 5321 §2.3.8; accepting one is what SMTP smuggling exploits).
/// Only the unfinished line is kept, and nothing at all when idle. Pure: no channel, no I/O.
/// Protocols with other modes (SMTP DATA, IMAP literals) take the unread bytes out with
/// `takeBuffer()` and put the rest back.
public struct LineFramer: BufferedInput, Sendable {
    public enum Frame: Equatable, Sendable {
        /// A complete line, CRLF removed.
        case line(ByteBuffer)
        /// The line was longer than allowed; its bytes up to the next LF are discarded.
        case tooLong
        /// The line ended in a bare LF or held a bare CR.
        case bareLineEnding
    }

    private var buffer: ByteBuffer?
    /// Discarding the rest of an over-long line.
    private var discardingLine = false

    public init() {}

    public var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    public mutating func append(_ bytes: ByteBuffer) {
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = bytes
        } else {
            // Drop what was consumed before appending, or the buffer would grow by every
            // read whose last line is unfinished.
            buffer!.discardReadBytes()
            var incoming = bytes
            buffer!.writeBuffer(&incoming)
        }
    }

    public mutating func discardBuffered() -> Int {
        let count = bufferedBytes
        buffer = nil
        discardingLine = false
        return count
    }

    /// The unread bytes, for a mode that frames them itself; `putBack` returns the rest.
    public mutating func takeBuffer() -> ByteBuffer? {
        defer { buffer = nil }
        return buffer
    }

    public mutating func putBack(_ rest: ByteBuffer?) {
        buffer = rest
        releaseIfEmpty()
    }

    /// Frees the buffer when it is empty, so an idle session holds no read buffer.
    private mutating func releaseIfEmpty() {
        if let b = buffer, b.readableBytes == 0 { buffer = nil }
    }

    /// The next line of at most `maxLength` octets including CRLF, or nil if more bytes
    /// are needed.
    public mutating func nextLine(maxLength: Int) -> Frame? {
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
            return nextLine(maxLength: maxLength)
        }
        guard lineLength >= 2, line.getInteger(at: line.readerIndex + lineLength - 2, as: UInt8.self) == UInt8(ascii: "\r")
        else { return .bareLineEnding }
        line = line.getSlice(at: line.readerIndex, length: lineLength - 2)!
        if line.readableBytesView.contains(UInt8(ascii: "\r")) { return .bareLineEnding }
        if lineLength > maxLength { return .tooLong }
        return .line(line)
    }
}
