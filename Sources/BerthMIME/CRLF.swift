/// The message with every bare LF turned into CRLF; CRLF and bare CR stay as they are.
/// Maildir files may use LF line ends, but IMAP serves and counts octets of the CRLF form
/// (RFC 3501 §2.3.1.2 size, §6.4.5 sections), so the parser works on this form.
public func crlfNormalized<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
    // Contiguous input (arrays, Data): one pass over raw memory, copying whole lines. Every
    // fetched body and every parsed message goes through here.
    if let fast = bytes.withContiguousStorageIfAvailable(crlfNormalized(contiguous:)) { return fast }
    var output: [UInt8] = []
    output.reserveCapacity(crlfNormalizedCount(bytes))
    var previous: UInt8 = 0
    for byte in bytes {
        if byte == Byte.lf, previous != Byte.cr { output.append(Byte.cr) }
        output.append(byte)
        previous = byte
    }
    return output
}

/// `crlfNormalized(bytes).count` without building it (RFC822.SIZE of a stored message).
public func crlfNormalizedCount<Bytes: Collection>(_ bytes: Bytes) -> Int where Bytes.Element == UInt8 {
    var count = 0
    var previous: UInt8 = 0
    for byte in bytes {
        if byte == Byte.lf, previous != Byte.cr { count += 1 }
        count += 1
        previous = byte
    }
    return count
}

/// Line feeds in `bytes[range]`: IMAP's `body-fld-lines` (RFC 3501 §7.4.2), counted as
/// Dovecot does on the CRLF form, so a last line without CRLF is not counted.
func lineCount(_ bytes: [UInt8], _ range: Range<Int>) -> Int {
    var count = 0
    for index in range where bytes[index] == Byte.lf { count += 1 }
    return count
}

private func crlfNormalized(contiguous bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(bytes.count + bytes.count / 16 + 16)
    var start = 0
    var index = 0
    while index < bytes.count {
        if bytes[index] == Byte.lf && (index == 0 || bytes[index - 1] != Byte.cr) {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
            output.append(Byte.cr)
            start = index
        }
        index += 1
    }
    output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
    return output
}
