/// One header field of a message, in relaxed canonical form (RFC 6376 §3.4.2).
struct DKIMHeaderField: Equatable {
    /// The field name, lowercased: how `h=` entries are matched.
    var name: String
    /// "name:value\r\n" with the name lowercased, continuation lines unfolded, WSP runs made
    /// one SP, and WSP removed at the value's ends and around the colon.
    var canonical: [UInt8]

    /// The fields of a header section, top to bottom. Lines end with "\r\n" or "\n"; a line
    /// starting with WSP continues the field above it; an empty line ends the section.
    /// A line with no colon is not a header field and is skipped: it can match no `h=`
    /// entry, and a verifier skips it the same way.
    static func fields(in headerBlock: some Collection<UInt8>) -> [DKIMHeaderField] {
        var fields: [DKIMHeaderField] = []
        var current: [UInt8] = []
        func finish() {
            if let field = DKIMHeaderField(unfolded: current) { fields.append(field) }
            current.removeAll(keepingCapacity: true)
        }
        for line in lines(of: Array(headerBlock)) {
            if line.isEmpty { break }
            if line.first!.isWSP {
                // RFC 5322 §2.2.3: unfolding removes the line break and keeps the WSP.
                if !current.isEmpty { current.append(contentsOf: line) }
            } else {
                finish()
                current.append(contentsOf: line)
            }
        }
        finish()
        return fields
    }

    /// Relaxed canonical form of one unfolded field ("Name : value" without its line end).
    init?(unfolded field: [UInt8]) {
        guard let colon = field.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        var nameBytes = field[..<colon]
        while let last = nameBytes.last, last.isWSP { nameBytes.removeLast() }
        let lowercased = nameBytes.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }
        var canonical = lowercased
        canonical.append(UInt8(ascii: ":"))
        canonical.append(contentsOf: Self.relaxedValue(field[(colon + 1)...]))
        canonical.append(.cr)
        canonical.append(.lf)
        self.name = String(decoding: lowercased, as: UTF8.self)
        self.canonical = canonical
    }

    /// RFC 6376 §3.4.2: WSP runs become one SP; WSP at either end is removed.
    static func relaxedValue(_ value: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var space = false
        for byte in value {
            if byte.isWSP {
                space = true
            } else {
                if space && !out.isEmpty { out.append(.sp) }
                space = false
                out.append(byte)
            }
        }
        return out
    }

    /// Lines of `bytes` without their line ends ("\r\n" or "\n"); a last line without a
    /// line end counts, an empty remainder after the last line end does not.
    static func lines(of bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for index in bytes.indices where bytes[index] == .lf {
            var end = index
            if end > start, bytes[end - 1] == .cr { end -= 1 }
            lines.append(bytes[start..<end])
            start = index + 1
        }
        if start < bytes.count { lines.append(bytes[start...]) }
        return lines
    }
}
