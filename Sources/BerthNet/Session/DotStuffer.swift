import NIOCore

/// Turns a stored message, chunk by chunk, into a dot-terminated multi-line body: SMTP
/// DATA (RFC 5321 §4.5.2) and POP3 RETR/TOP (RFC 1939 §3, §7) stuff alike. Every line
/// end becomes CRLF (LF-only storage, the Maildir convention, gets a CR; CRLF is kept), a
/// line starting with "." gets it doubled, and `finish` ends an unfinished last line and
/// writes the terminating ".". Chunks may split anywhere. Pure.
///
/// With `topLines` (TOP msg n) only the header, the blank line that ends it, and at most
/// n body lines are written; after that `isComplete` is true and further input is ignored,
/// so the caller can stop reading the file. A message with no blank line is all header.
public struct DotStuffer: Sendable {
    public let topLines: Int?
    private var atLineStart = true
    /// The last byte taken in was a CR (it may pair with an LF at the next chunk's start).
    private var afterCR = false
    /// Bytes of the current line taken in so far, line end excluded.
    private var lineLength = 0
    private var inHeader = true
    private var bodyLinesWritten = 0
    /// TOP has written all it asked for.
    public private(set) var isComplete = false

    public init(topLines: Int? = nil) {
        self.topLines = topLines.map { max(0, $0) }
    }

    /// Appends `bytes`, transformed, to `out`. Works on spans between line ends, so a large
    /// message costs one scan and a few copies, not a call per byte.
    public mutating func encode(_ bytes: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        guard !isComplete else { return }
        let count = bytes.count
        var start = 0  // first byte not yet copied to `out`
        var index = 0  // always at a line start or at the start of the chunk
        while index < count {
            if atLineStart {
                atLineStart = false
                if bytes[index] == UInt8(ascii: ".") {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                    out.writeInteger(UInt8(ascii: "."))
                    start = index
                }
            }
            guard let offset = UnsafeRawBufferPointer(rebasing: bytes[index..<count]).firstIndex(of: UInt8(ascii: "\n")) else {
                lineLength += count - index
                afterCR = bytes[count - 1] == UInt8(ascii: "\r")
                break
            }
            let lf = index + offset
            // The byte before this LF: in this chunk, or (at the chunk's first byte) the
            // previous chunk's last; at any other line start it is the previous LF.
            let crBefore = lf > index ? bytes[lf - 1] == UInt8(ascii: "\r") : (index == 0 && afterCR)
            let contentLength = lineLength + (lf - index) - (crBefore ? 1 : 0)
            if !crBefore {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<lf]))
                out.writeInteger(UInt8(ascii: "\r"))
                start = lf
            }
            index = lf + 1
            atLineStart = true
            afterCR = false
            lineLength = 0
            if lineEnded(empty: contentLength == 0) {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                isComplete = true
                return
            }
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
    }

    public mutating func encode(_ bytes: [UInt8], into out: inout ByteBuffer) {
        bytes.withUnsafeBytes { encode($0, into: &out) }
    }

    public mutating func encode(_ buffer: ByteBuffer, into out: inout ByteBuffer) {
        buffer.withUnsafeReadableBytes { encode($0, into: &out) }
    }

    /// Ends the last line if it was open (a lone trailing CR becomes its CRLF), then the
    /// terminating ".".
    public mutating func finish(into out: inout ByteBuffer) {
        if !atLineStart && !isComplete {
            if afterCR {
                out.writeInteger(UInt8(ascii: "\n"))
            } else {
                out.writeStaticString("\r\n")
            }
        }
        out.writeStaticString(".\r\n")
        atLineStart = true
        afterCR = false
        lineLength = 0
        isComplete = true
    }

    /// A whole message at once (small messages, tests).
    public static func stuff(_ message: [UInt8], topLines: Int? = nil) -> [UInt8] {
        var stuffer = DotStuffer(topLines: topLines)
        var out = ByteBuffer()
        stuffer.encode(message, into: &out)
        stuffer.finish(into: &out)
        return Array(out.readableBytesView)
    }

    /// Counts a finished line for TOP; true when the response has all it needs.
    private mutating func lineEnded(empty: Bool) -> Bool {
        guard let topLines else { return false }
        if inHeader {
            guard empty else { return false }
            inHeader = false
            return topLines == 0
        }
        bodyLinesWritten += 1
        return bodyLinesWritten >= topLines
    }
}
