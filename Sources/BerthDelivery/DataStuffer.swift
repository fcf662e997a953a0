import NIOCore

/// Turns a stored message (LF line ends, the Maildir convention) into SMTP DATA: every
/// line end CRLF, a leading "." doubled (RFC 5321 §4.5.2), and the closing ".". Chunks
/// may split anywhere. Pure.
public struct DataStuffer: Sendable {
    private var atLineStart = true
    private var afterCR = false

    public init() {}

    /// Appends `bytes`, transformed, to `out`. Works on spans between line ends, so a
    /// large body costs one scan and a few copies, not a call per byte.
    public mutating func encode(_ bytes: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
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
                afterCR = bytes[count - 1] == UInt8(ascii: "\r")
                break
            }
            let lf = index + offset
            // The byte before this LF: in this chunk, or (at the chunk's first byte) the
            // previous chunk's last; at any other line start it is the previous LF.
            let crBefore = lf > index ? bytes[lf - 1] == UInt8(ascii: "\r") : (index == 0 && afterCR)
            if !crBefore {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<lf]))
                out.writeInteger(UInt8(ascii: "\r"))
                start = lf
            }
            index = lf + 1
            atLineStart = true
            afterCR = false
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
    }

    public mutating func encode(_ bytes: [UInt8], into out: inout ByteBuffer) {
        bytes.withUnsafeBytes { encode($0, into: &out) }
    }

    /// Ends the last line if it was open, then the terminating ".".
    public mutating func finish(into out: inout ByteBuffer) {
        if !atLineStart { out.writeString("\r\n") }
        out.writeString(".\r\n")
        atLineStart = true
        afterCR = false
    }
}
