#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Line ends between the wire and the disk. Mail protocols send and count CRLF (RFC 5322
/// §2.3; IMAP's sizes and sections, RFC 3501 §2.3.1.2 and §6.4.5); Maildir files keep LF,
/// as SMTP delivery, mutt and Dovecot write them. Every conversion and size between the two
/// forms is made here, so the spool, the Maildir store and IMAP agree on every octet. A CR
/// not followed by LF is content, never a line end, in either direction.
public enum LineEnds {
    // MARK: LF to CRLF

    /// `bytes` with every bare LF turned into CRLF; CRLF and bare CR stay as they are.
    /// IMAP serves, and its parser reads, a Maildir message in this form.
    @inlinable
    public static func toCRLF<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        if let contiguous = bytes.withContiguousStorageIfAvailable({ toCRLF(UnsafeRawBufferPointer($0)) }) {
            return contiguous
        }
        return Array(bytes).withUnsafeBytes { toCRLF($0) }
    }

    /// One pass over raw memory, copying whole lines: every fetched body and every parsed
    /// message goes through here.
    public static func toCRLF(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + bytes.count / 16 + 16)
        var start = 0
        var index = 0
        while index < bytes.count {
            if bytes[index] == lf && (index == 0 || bytes[index - 1] != cr) {
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                output.append(cr)
                start = index
            }
            index += 1
        }
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<bytes.count]))
        return output
    }

    /// `toCRLF(bytes).count` without building it: RFC822.SIZE of a Maildir message, and
    /// the `W=` of its file name.
    @inlinable
    public static func crlfCount<Bytes: Collection>(_ bytes: Bytes) -> Int where Bytes.Element == UInt8 {
        var counter = CRLFCounter()
        counter.add(bytes)
        return counter.count
    }

    /// `crlfCount` over bytes that come in pieces (a file read a buffer at a time): an LF
    /// at the start of a piece is not bare when the piece before ended in CR.
    public struct CRLFCounter: Sendable {
        public private(set) var count = 0
        private var previous: UInt8 = 0

        public init() {}

        @inlinable
        public mutating func add<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
            if bytes.withContiguousStorageIfAvailable({ add(UnsafeRawBufferPointer($0)) }) == nil {
                Array(bytes).withUnsafeBytes { add($0) }
            }
        }

        public mutating func add(_ bytes: UnsafeRawBufferPointer) {
            for byte in bytes {
                if byte == LineEnds.lf && previous != LineEnds.cr { count += 1 }
                previous = byte
            }
            count += bytes.count
        }
    }

    // MARK: CRLF to LF

    /// `bytes` with every CRLF turned into LF; a bare CR or LF stays as it is. What the
    /// Maildir store writes.
    public static func toLF(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        bytes.withUnsafeBytes { appendToLF($0, to: &output) }
        return output
    }

    /// Appends `bytes` to `output` with every CRLF turned into LF, a line at a time (memchr
    /// for the LF, one bulk append per line): the SMTP spool runs every byte of every body
    /// through here, so nothing is done per byte in Swift. A CRLF split between two calls
    /// keeps its CR: callers append whole lines.
    public static func appendToLF(_ bytes: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        guard let base = bytes.baseAddress else { return }
        var start = 0
        while start < bytes.count {
            guard let found = memchr(base + start, Int32(lf), bytes.count - start) else {
                output.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: bytes.count - start))
                break
            }
            let lfIndex = base.distance(to: UnsafeRawPointer(found))
            let end = lfIndex > start && bytes[lfIndex - 1] == cr ? lfIndex - 1 : lfIndex
            output.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: end - start))
            output.append(lf)
            start = lfIndex + 1
        }
    }

    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
}
