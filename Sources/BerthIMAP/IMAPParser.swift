/// A cursor over one framed command, with one function per ABNF rule of RFC 3501 §9 (and
/// the extensions'), each quoting its rule. Rules consume what they match or throw; the
/// command rules are in `IMAPCommandParser`, SEARCH and FETCH in their own files.
struct IMAPParser {
    let bytes: [UInt8]
    var index = 0
    let streamed: IMAPCommandBytes.StreamedLiteral?
    /// Nesting of search keys, bounded by `IMAPLimits.maxSearchDepth`.
    var depth = 0

    init(_ command: IMAPCommandBytes) {
        bytes = command.bytes
        streamed = command.streamedLiteral
    }

    var atEnd: Bool { index >= bytes.count }

    func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    func peek(_ byte: UInt8) -> Bool { peek() == byte }

    func failure(_ reason: String) -> ParseFailure {
        ParseFailure("\(reason) at octet \(index + 1)")
    }

    mutating func expect(_ byte: UInt8, _ name: String) throws(ParseFailure) {
        guard peek(byte) else { throw failure("expected \(name)") }
        index += 1
    }

    /// `SP = %x20`. One space exactly: a second one is an error where the grammar has one.
    mutating func sp() throws(ParseFailure) {
        guard peek(ASCII.space) else { throw failure(atEnd ? "unexpected end of command" : "expected SP") }
        index += 1
        if peek(ASCII.space) { throw failure("extra space") }
    }

    /// Nothing left of the command (its CRLF was removed by the framer).
    func end() throws(ParseFailure) {
        guard atEnd else {
            throw failure(peek(ASCII.space) ? "extra space or unexpected argument" : "unexpected characters after the command")
        }
    }

    /// Consumes `word` when the input continues with it, in any case.
    mutating func keyword(_ word: String) -> Bool {
        let utf8 = word.utf8
        guard bytes.count - index >= utf8.count,
              zip(bytes[index...], utf8).allSatisfy({ ASCII.uppercased($0) == ASCII.uppercased($1) })
        else { return false }
        index += utf8.count
        return true
    }

    /// A run of letters, digits, "." and "-", upper-cased: the keywords of FETCH, SEARCH
    /// and the options (none of them holds other characters).
    mutating func word() -> String {
        let start = index
        while let byte = peek(), Self.isWordChar(byte) { index += 1 }
        return String(decoding: bytes[start..<index].map(ASCII.uppercased), as: UTF8.self)
    }

    static func isWordChar(_ byte: UInt8) -> Bool {
        ASCII.isDigit(byte) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "-")
    }

    // MARK: - Tag, atoms

    /// `tag = 1*<any ASTRING-CHAR except "+">`
    mutating func tag() throws(ParseFailure) -> String {
        let start = index
        while let byte = peek(), IMAPGrammar.isTagChar(byte) { index += 1 }
        if let next = peek(), next != ASCII.space {
            throw ParseFailure(next >= 0x80 ? "8-bit character in tag" : "invalid character in tag")
        }
        guard index > start else { throw ParseFailure("missing tag") }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// `atom = 1*ATOM-CHAR`
    mutating func atom(_ name: String = "atom") throws(ParseFailure) -> String {
        let start = index
        while let byte = peek(), IMAPGrammar.isAtomChar(byte) { index += 1 }
        guard index > start else {
            if let byte = peek(), byte >= 0x80 { throw failure("8-bit character in \(name)") }
            throw failure("expected \(name)")
        }
        if let byte = peek(), byte >= 0x80 { throw failure("8-bit character in \(name)") }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    // MARK: - Numbers

    /// `number = 1*DIGIT` — unsigned 32-bit (RFC 3501 §4.2).
    mutating func number() throws(ParseFailure) -> UInt32 {
        UInt32(try digits(max: UInt64(UInt32.max), name: "number"))
    }

    /// `nz-number = digit-nz *DIGIT` — non-zero unsigned 32-bit.
    mutating func nzNumber() throws(ParseFailure) -> UInt32 {
        let value = try number()
        guard value > 0 else { throw failure("zero is not allowed here (nz-number)") }
        return value
    }

    /// `number64 = 1*DIGIT` — unsigned 63-bit (RFC 9051 §9).
    mutating func number64() throws(ParseFailure) -> UInt64 {
        try digits(max: UInt64(Int64.max), name: "number")
    }

    /// `mod-sequence-value = 1*DIGIT` — 1 <= n <= 2^63-1 (RFC 7162 §7).
    mutating func modSequenceValue() throws(ParseFailure) -> UInt64 {
        let value = try modSequenceValzer()
        guard value > 0 else { throw failure("zero is not a mod-sequence") }
        return value
    }

    /// `mod-sequence-valzer = "0" / mod-sequence-value` (RFC 7162 §7).
    mutating func modSequenceValzer() throws(ParseFailure) -> UInt64 {
        try digits(max: UInt64(Int64.max), name: "mod-sequence")
    }

    private mutating func digits(max: UInt64, name: String) throws(ParseFailure) -> UInt64 {
        let start = index
        var value: UInt64 = 0
        while let byte = peek(), ASCII.isDigit(byte) {
            let digit = UInt64(byte - ASCII.zero)
            // Checked before multiplying, so no value of any length can overflow.
            guard value <= (max - digit) / 10 else { throw ParseFailure("\(name) too large at octet \(start + 1)") }
            value = value * 10 + digit
            index += 1
        }
        guard index > start else { throw failure("expected \(name)") }
        return value
    }

    // MARK: - Strings

    /// `astring = 1*ASTRING-CHAR / string`
    mutating func astring(_ name: String = "string") throws(ParseFailure) -> [UInt8] {
        switch peek() {
        case ASCII.quote, UInt8(ascii: "{"):
            return try string(name)
        default:
            let start = index
            while let byte = peek(), IMAPGrammar.isAStringChar(byte) { index += 1 }
            if let byte = peek(), byte >= 0x80 { throw failure("8-bit character in \(name) (send it as a literal)") }
            guard index > start else { throw failure(atEnd ? "missing \(name)" : "expected \(name)") }
            return Array(bytes[start..<index])
        }
    }

    /// An astring read as UTF-8 text.
    mutating func astringText(_ name: String = "string") throws(ParseFailure) -> String {
        let start = index
        let value = try astring(name)
        guard let text = String(validating: value, as: UTF8.self) else {
            throw ParseFailure("\(name) is not valid UTF-8 at octet \(start + 1)")
        }
        return text
    }

    /// `string = quoted / literal`
    mutating func string(_ name: String = "string") throws(ParseFailure) -> [UInt8] {
        switch peek() {
        case ASCII.quote:
            return try quoted()
        case UInt8(ascii: "{"):
            let start = index
            switch try literal() {
            case .bytes(let value): return value
            case .streamed: throw ParseFailure("a message literal is not allowed here at octet \(start + 1)")
            }
        default:
            throw failure(atEnd ? "missing \(name)" : "expected \(name)")
        }
    }

    mutating func stringText(_ name: String = "string") throws(ParseFailure) -> String {
        let start = index
        let value = try string(name)
        guard let text = String(validating: value, as: UTF8.self) else {
            throw ParseFailure("\(name) is not valid UTF-8 at octet \(start + 1)")
        }
        return text
    }

    /// `nstring = string / nil`
    mutating func nstringText() throws(ParseFailure) -> String? {
        if try nilKeyword() { return nil }
        return try stringText()
    }

    /// `nil = "NIL"`
    mutating func nilKeyword() throws(ParseFailure) -> Bool {
        let start = index
        guard keyword("NIL") else { return false }
        if let byte = peek(), IMAPGrammar.isAtomChar(byte) {
            index = start
            return false
        }
        return true
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`
    /// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials`
    /// UTF-8 is accepted too (RFC 9051 §9 `QUOTED-CHAR =/ UTF8-2 / UTF8-3 / UTF8-4`), as
    /// clients send it in SEARCH strings.
    mutating func quoted() throws(ParseFailure) -> [UInt8] {
        let start = index
        try expect(ASCII.quote, "DQUOTE")
        var value: [UInt8] = []
        while true {
            guard let byte = peek() else { throw ParseFailure("unterminated quoted string at octet \(start + 1)") }
            index += 1
            switch byte {
            case ASCII.quote:
                guard value.allSatisfy({ $0 < 0x80 }) || String(validating: value, as: UTF8.self) != nil else {
                    throw ParseFailure("quoted string is not valid UTF-8 at octet \(start + 1)")
                }
                return value
            case ASCII.backslash:
                guard let escaped = peek(), escaped == ASCII.quote || escaped == ASCII.backslash else {
                    throw failure("invalid escape in quoted string")
                }
                value.append(escaped)
                index += 1
            case 0x00, ASCII.cr, ASCII.lf:
                throw failure("control character in quoted string")
            default:
                value.append(byte)
            }
        }
    }

    enum Literal {
        case bytes([UInt8])
        /// The streamed APPEND message: its bytes are not in the command.
        case streamed(size: Int)
    }

    /// `literal = "{" number ["+"] "}" CRLF *CHAR8` (RFC 3501 §9, RFC 7888 §8);
    /// `CHAR8 = %x01-ff`
    mutating func literal() throws(ParseFailure) -> Literal {
        let start = index
        try expect(UInt8(ascii: "{"), "{")
        let size = Int(try number())
        _ = keyword("+")
        try expect(UInt8(ascii: "}"), "}")
        guard keyword("\r\n") else { throw failure("expected CRLF after literal length") }
        if let streamed, streamed.offset == index {
            guard streamed.size == size else { throw ParseFailure("literal length mismatch at octet \(start + 1)") }
            return .streamed(size: size)
        }
        guard bytes.count - index >= size else {
            throw ParseFailure("literal length mismatch: {\(size)} announced, \(bytes.count - index) octets present")
        }
        let value = Array(bytes[index..<(index + size)])
        guard !value.contains(0) else { throw ParseFailure("NUL octet in literal at octet \(start + 1)") }
        index += size
        return .bytes(value)
    }

    // MARK: - Mailboxes

    /// `mailbox = "INBOX" / astring` — "INBOX" in any case is INBOX; the name is decoded
    /// from modified UTF-7 (RFC 3501 §5.1.3), or taken as UTF-8 when 8-bit (RFC 6855).
    mutating func mailbox() throws(ParseFailure) -> IMAPMailboxName {
        let start = index
        let raw = try astring("mailbox name")
        return IMAPMailboxName(try Self.decodeMailboxName(raw, at: start))
    }

    static func decodeMailboxName(_ raw: [UInt8], at start: Int) throws(ParseFailure) -> String {
        if raw.allSatisfy({ $0 < 0x80 }) {
            guard let name = ModifiedUTF7.decode(raw) else {
                throw ParseFailure("mailbox name is not valid modified UTF-7 at octet \(start + 1)")
            }
            return name
        }
        guard let name = String(validating: raw, as: UTF8.self) else {
            throw ParseFailure("mailbox name is not valid UTF-8 at octet \(start + 1)")
        }
        return name
    }

    /// `list-mailbox = 1*list-char / string`
    mutating func listMailbox() throws(ParseFailure) -> String {
        let start = index
        let raw: [UInt8]
        if peek(ASCII.quote) || peek(UInt8(ascii: "{")) {
            raw = try string("mailbox pattern")
        } else {
            while let byte = peek(), IMAPGrammar.isListChar(byte) { index += 1 }
            if let byte = peek(), byte >= 0x80 { throw failure("8-bit character in mailbox pattern") }
            guard index > start else { throw failure("expected mailbox pattern") }
            raw = Array(bytes[start..<index])
        }
        return try Self.decodeMailboxName(raw, at: start)
    }

    // MARK: - Sequence sets

    /// `sequence-set = (seq-number / seq-range) *("," sequence-set)`, or
    /// `seq-last-command = "$"` (RFC 5182 §5)
    mutating func sequenceSet() throws(ParseFailure) -> IMAPSequenceSet {
        if peek(UInt8(ascii: "$")) {
            index += 1
            return .lastSearchResult
        }
        var ranges: [IMAPSequenceRange] = []
        repeat {
            ranges.append(try seqRange())
        } while keyword(",")
        if let byte = peek(), byte != ASCII.space && byte != UInt8(ascii: ")") {
            throw failure("bad sequence set")
        }
        return .ranges(ranges)
    }

    /// `seq-range = seq-number ":" seq-number`
    mutating func seqRange() throws(ParseFailure) -> IMAPSequenceRange {
        let first = try seqNumber()
        guard keyword(":") else { return IMAPSequenceRange(first) }
        return IMAPSequenceRange(first, try seqNumber())
    }

    /// `seq-number = nz-number / "*"`
    mutating func seqNumber() throws(ParseFailure) -> IMAPSequenceNumber {
        if keyword("*") { return .last }
        guard let byte = peek(), ASCII.isDigit(byte) else { throw failure("bad sequence set") }
        let start = index
        let value = try number()
        guard value > 0 else { throw ParseFailure("bad sequence set: 0 is not a message number at octet \(start + 1)") }
        return .number(value)
    }

    // MARK: - Flags

    /// `flag-list = "(" [flag *(SP flag)] ")"`
    mutating func flagList() throws(ParseFailure) -> [IMAPFlag] {
        try expect(UInt8(ascii: "("), "(")
        var flags: [IMAPFlag] = []
        if keyword(")") { return flags }
        while true {
            flags.append(try flag())
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ")")
        return flags
    }

    /// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
    /// flag-extension`; `flag-extension = "\" atom`; `flag-keyword = atom`
    mutating func flag() throws(ParseFailure) -> IMAPFlag {
        if keyword("\\") {
            return IMAPFlag("\\" + (try atom("flag")))
        }
        return IMAPFlag(try atom("flag"))
    }

    /// `flag-keyword = atom`
    mutating func flagKeyword() throws(ParseFailure) -> IMAPFlag {
        IMAPFlag(try atom("keyword"))
    }

    // MARK: - Dates

    /// `date = date-text / DQUOTE date-text DQUOTE`
    mutating func date() throws(ParseFailure) -> IMAPDate {
        if keyword("\"") {
            let value = try dateText()
            try expect(ASCII.quote, "DQUOTE after date")
            return value
        }
        return try dateText()
    }

    /// `date-text = date-day "-" date-month "-" date-year`
    /// `date-day = 1*2DIGIT`; `date-year = 4DIGIT`
    mutating func dateText() throws(ParseFailure) -> IMAPDate {
        let start = index
        let day = try fixedDigits(min: 1, max: 2)
        try expect(UInt8(ascii: "-"), "- in date")
        let month = try dateMonth()
        try expect(UInt8(ascii: "-"), "- in date")
        let year = try fixedDigits(min: 4, max: 4)
        guard let date = IMAPDate(year: year, month: month, day: day) else {
            throw ParseFailure("bad date: no such day at octet \(start + 1)")
        }
        return date
    }

    /// `date-month = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" / "Jul" / "Aug" /
    /// "Sep" / "Oct" / "Nov" / "Dec"`
    mutating func dateMonth() throws(ParseFailure) -> Int {
        for (offset, name) in IMAPDate.monthNames.enumerated() where keyword(name) {
            return offset + 1
        }
        throw failure("bad date: expected month name")
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`
    /// `date-day-fixed = (SP DIGIT) / 2DIGIT` (one digit without the space is accepted)
    mutating func dateTime() throws(ParseFailure) -> IMAPDateTime {
        let start = index
        try expect(ASCII.quote, "DQUOTE before date-time")
        _ = keyword(" ")
        let day = try fixedDigits(min: 1, max: 2)
        try expect(UInt8(ascii: "-"), "- in date-time")
        let month = try dateMonth()
        try expect(UInt8(ascii: "-"), "- in date-time")
        let year = try fixedDigits(min: 4, max: 4)
        try expect(ASCII.space, "SP in date-time")
        let (hour, minute, second) = try time()
        try expect(ASCII.space, "SP in date-time")
        let zone = try zone()
        try expect(ASCII.quote, "DQUOTE after date-time")
        guard let date = IMAPDate(year: year, month: month, day: day),
              let dateTime = IMAPDateTime(date: date, hour: hour, minute: minute, second: second, zoneMinutes: zone)
        else { throw ParseFailure("bad date-time at octet \(start + 1)") }
        return dateTime
    }

    /// `time = 2DIGIT ":" 2DIGIT ":" 2DIGIT`
    mutating func time() throws(ParseFailure) -> (Int, Int, Int) {
        let hour = try fixedDigits(min: 2, max: 2)
        try expect(UInt8(ascii: ":"), ": in time")
        let minute = try fixedDigits(min: 2, max: 2)
        try expect(UInt8(ascii: ":"), ": in time")
        let second = try fixedDigits(min: 2, max: 2)
        return (hour, minute, second)
    }

    /// `zone = ("+" / "-") 4DIGIT`
    mutating func zone() throws(ParseFailure) -> Int {
        let negative: Bool
        if keyword("+") {
            negative = false
        } else if keyword("-") {
            negative = true
        } else {
            throw failure("bad date-time: expected zone")
        }
        let value = try fixedDigits(min: 4, max: 4)
        guard value % 100 < 60 else { throw failure("bad date-time: zone minutes") }
        let minutes = value / 100 * 60 + value % 100
        return negative ? -minutes : minutes
    }

    private mutating func fixedDigits(min: Int, max: Int) throws(ParseFailure) -> Int {
        let start = index
        var value = 0
        while index - start < max, let byte = peek(), ASCII.isDigit(byte) {
            value = value * 10 + Int(byte - ASCII.zero)
            index += 1
        }
        guard index - start >= min, !(peek().map(ASCII.isDigit) ?? false) else {
            throw ParseFailure("bad date at octet \(start + 1)")
        }
        return value
    }
}
