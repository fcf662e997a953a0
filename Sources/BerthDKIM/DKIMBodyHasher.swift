import Crypto

/// The `bh=` digest: SHA-256 over the body in relaxed canonical form (RFC 6376 §3.4.4,
/// with errata 1384: an empty body canonicalises to nothing), computed as chunks arrive.
///
/// Messages are kept with LF line ends and sent with CRLF, so both "\r\n" and a bare "\n"
/// end a line here; a CR not followed by LF is an ordinary character. Chunks may split the
/// body anywhere (between CR and LF, inside a whitespace run or a run of trailing blank
/// lines): what is still undecided at a chunk's end is kept as state, never re-read.
///
/// `@unchecked Sendable`: the only non-`Sendable` part is swift-crypto's `SHA256`, a
/// copy-on-write value type (its context is copied before a shared copy is written).
public struct DKIMBodyHasher: @unchecked Sendable {
    /// Canonical bytes are staged and handed to SHA-256 in blocks of this size, so that
    /// the many short writes (CRLFs, single spaces) cost no call into the digest each.
    static let stagingCapacity = 64 * 1024

    private var hash = SHA256()
    private var staged: [UInt8] = []
    /// Line ends read but not yet written: they are written only once a later line turns
    /// out to have content, which is how trailing empty lines disappear (§3.4.4 b).
    private var pendingLineEnds = 0
    /// A run of WSP read inside a line: written as one SP only if content follows on the
    /// same line (§3.4.4 a: WSP runs become one SP, WSP at a line's end is dropped).
    private var pendingSpace = false
    /// The chunk ended on a CR whose meaning (line end or ordinary byte) the next byte decides.
    private var pendingCR = false
    /// Whether any content was written: a non-empty body gets exactly one final CRLF.
    private var hasContent = false

    public init() {
        staged.reserveCapacity(Self.stagingCapacity)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        var index = 0
        while index < count {
            let byte = bytes[index]
            if pendingCR {
                pendingCR = false
                if byte == .lf {
                    endLine()
                    index += 1
                    continue
                }
                writeContent(byte: .cr)
            }
            switch byte {
            case .lf:
                endLine()
                index += 1
            case .cr:
                pendingCR = true
                index += 1
            case .sp, .htab:
                pendingSpace = true
                index += 1
            default:
                // A run of ordinary bytes goes to the staging buffer in one copy.
                var end = index + 1
                while end < count, !bytes[end].isSpecialInBody { end += 1 }
                writeContent(UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                index = end
            }
        }
    }

    public mutating func update(_ bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            update(UnsafeRawBufferPointer(buffer))
        }
        if done == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The `bh=` digest (32 bytes) of everything fed so far. Does not end the hasher:
    /// it works on a copy, so more bytes may still be fed and the digest asked again.
    public func finalize() -> [UInt8] {
        var copy = self
        if copy.pendingCR {
            copy.pendingCR = false
            copy.writeContent(byte: .cr)
        }
        if copy.hasContent {
            // The last line's own line end, or the one that stays of its trailing empty
            // lines; a last line without a line end gets one (§3.4.4 b).
            copy.staged.append(.cr)
            copy.staged.append(.lf)
        }
        copy.flush()
        return Array(copy.hash.finalize())
    }

    private mutating func endLine() {
        pendingSpace = false
        pendingLineEnds += 1
    }

    /// Writes what content makes definite (held line ends, a held space), then the content.
    private mutating func beginContent() {
        while pendingLineEnds > 0 {
            staged.append(.cr)
            staged.append(.lf)
            pendingLineEnds -= 1
            if staged.count >= Self.stagingCapacity { flush() }
        }
        if pendingSpace {
            staged.append(.sp)
            pendingSpace = false
        }
        hasContent = true
    }

    private mutating func writeContent(byte: UInt8) {
        beginContent()
        staged.append(byte)
        if staged.count >= Self.stagingCapacity { flush() }
    }

    private mutating func writeContent(_ bytes: UnsafeRawBufferPointer) {
        beginContent()
        if staged.count + bytes.count > Self.stagingCapacity {
            flush()
            if bytes.count >= Self.stagingCapacity {
                hash.update(bufferPointer: bytes)
                return
            }
        }
        staged.append(contentsOf: bytes)
    }

    private mutating func flush() {
        guard !staged.isEmpty else { return }
        staged.withUnsafeBytes { hash.update(bufferPointer: $0) }
        staged.removeAll(keepingCapacity: true)
    }
}

extension UInt8 {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let sp = UInt8(ascii: " ")
    static let htab = UInt8(ascii: "\t")

    /// WSP (RFC 5234) or a line-end byte.
    var isWSP: Bool { self == .sp || self == .htab }

    fileprivate var isSpecialInBody: Bool { self == .cr || self == .lf || self == .sp || self == .htab }
}
