/// Finding a stored message's header section and body.
public enum DKIMMessage {
    /// The largest header section read before giving up (1 MiB). RFC 5322 sets no total
    /// limit; this only bounds what a signer holds in memory for one message.
    public static let defaultMaximumHeaderBytes = 1 << 20

    /// Splits a message at its first empty line ("\n\n" or "\r\n\r\n", and mixes of them).
    /// `headerBlock` runs up to and including the last header line's line end, without the
    /// empty line; `bodyStart` is the first byte after the empty line. A message with no
    /// empty line is all header, and its body is empty (`bodyStart == endIndex`).
    /// Throws `DKIMError.headerSectionTooLarge` when the header section is longer than
    /// `maximumHeaderBytes`; it reads no further than that.
    public static func split<Bytes: Collection<UInt8>>(
        _ message: Bytes,
        maximumHeaderBytes: Int = defaultMaximumHeaderBytes
    ) throws -> (headerBlock: Bytes.SubSequence, bodyStart: Bytes.Index) {
        var index = message.startIndex
        var offset = 0
        var atLineStart = true
        while index != message.endIndex {
            let byte = message[index]
            if atLineStart {
                if byte == .lf {
                    return (message[..<index], message.index(after: index))
                }
                if byte == .cr {
                    let next = message.index(after: index)
                    if next != message.endIndex, message[next] == .lf {
                        return (message[..<index], message.index(after: next))
                    }
                }
            }
            guard offset < maximumHeaderBytes else {
                throw DKIMError.headerSectionTooLarge(limit: maximumHeaderBytes)
            }
            atLineStart = byte == .lf
            offset += 1
            index = message.index(after: index)
        }
        return (message[...], message.endIndex)
    }
}
