import BerthIMAP

/// Address lists (RFC 5322 §3.4) as ENVELOPE wants them (RFC 3501 §7.4.2): display names,
/// local parts and domains raw (encoded-words stay encoded), groups as start and end
/// markers. Lenient with real mail's junk: a missing `>` or `;`, an unbalanced quote,
/// `Name user@host` without brackets. What cannot be read gets Dovecot's placeholders
/// `MISSING_MAILBOX` / `MISSING_DOMAIN` (a NIL host would read as a group marker).
public enum MIMEAddressParser {
    public static let missingMailbox = "MISSING_MAILBOX"
    public static let missingDomain = "MISSING_DOMAIN"

    /// Addresses and group markers in one header value; empty for an empty value.
    public static func parse(_ value: String) -> [IMAPAddress] {
        var parser = Parser(tokens: tokenize(Array(value.utf8)))
        return parser.parseList()
    }

    enum Token: Equatable {
        /// An atom, or a quoted string unquoted.
        case word([UInt8], quoted: Bool)
        case domainLiteral([UInt8])
        case comment([UInt8])
        case special(UInt8)
    }

    struct Spaced: Equatable {
        var token: Token
        /// Whitespace or a comment came before it.
        var spaceBefore: Bool
    }

    static let specials: Set<UInt8> = Set("()<>@,;:\\\".[]".utf8)

    /// RFC 5322 §3.2 lexical tokens. Unterminated comments run to the end; an unbalanced
    /// quote is read as an ordinary character.
    static func tokenize(_ bytes: [UInt8]) -> [Spaced] {
        var tokens: [Spaced] = []
        var index = 0
        var space = false
        var quotesBalanced = true
        while index < bytes.count {
            let byte = bytes[index]
            if Byte.isWhitespace(byte) || Byte.isLineBreak(byte) {
                space = true
                index += 1
                continue
            }
            switch byte {
            case Byte.openParen:
                var depth = 0
                var text: [UInt8] = []
                while index < bytes.count {
                    let byte = bytes[index]
                    index += 1
                    if byte == Byte.backslash, index < bytes.count {
                        text.append(bytes[index])
                        index += 1
                        continue
                    }
                    if byte == Byte.openParen {
                        depth += 1
                        if depth == 1 { continue }
                    } else if byte == Byte.closeParen {
                        depth -= 1
                        if depth == 0 { break }
                    }
                    text.append(byte)
                }
                tokens.append(Spaced(token: .comment(text), spaceBefore: space))
                space = true
                continue
            case Byte.quote where quotesBalanced:
                var scan = index + 1
                var text: [UInt8] = []
                while scan < bytes.count, bytes[scan] != Byte.quote {
                    if bytes[scan] == Byte.backslash, scan + 1 < bytes.count { scan += 1 }
                    if !Byte.isLineBreak(bytes[scan]) { text.append(bytes[scan]) }
                    scan += 1
                }
                if scan < bytes.count {
                    tokens.append(Spaced(token: .word(text, quoted: true), spaceBefore: space))
                    index = scan + 1
                    space = false
                    continue
                }
                // No closing quote: from here on quotes are ordinary characters.
                quotesBalanced = false
            case UInt8(ascii: "["):
                var scan = index + 1
                while scan < bytes.count, bytes[scan] != UInt8(ascii: "]") { scan += 1 }
                tokens.append(Spaced(token: .domainLiteral(Array(bytes[index..<min(scan + 1, bytes.count)])), spaceBefore: space))
                index = scan + 1
                space = false
                continue
            default:
                break
            }
            if specials.contains(byte), byte != Byte.quote, byte != Byte.backslash {
                tokens.append(Spaced(token: .special(byte), spaceBefore: space))
                index += 1
                space = false
                continue
            }
            // An atom: anything else, 8-bit included.
            let start = index
            while index < bytes.count, !Byte.isWhitespace(bytes[index]), !Byte.isLineBreak(bytes[index]) {
                let byte = bytes[index]
                if specials.contains(byte), !(byte == Byte.backslash || (byte == Byte.quote && !quotesBalanced)) { break }
                index += 1
            }
            if index == start { index += 1 }
            tokens.append(Spaced(token: .word(Array(bytes[start..<index]), quoted: false), spaceBefore: space))
            space = false
        }
        return tokens
    }

    struct Parser {
        var tokens: [Spaced]
        var index = 0
        var result: [IMAPAddress] = []
        var inGroup = false

        init(tokens: [Spaced]) { self.tokens = tokens }

        func special(at position: Int) -> UInt8? {
            guard position >= 0, position < tokens.count, case .special(let byte) = tokens[position].token else { return nil }
            return byte
        }

        /// `address-list = (address *("," address))`, `address = mailbox / group`
        mutating func parseList() -> [IMAPAddress] {
            while index < tokens.count {
                // The run of words, dots and comments before the next delimiter.
                let start = index
                while index < tokens.count {
                    if let byte = special(at: index), byte != UInt8(ascii: ".") { break }
                    index += 1
                }
                let run = start..<index
                switch special(at: index) {
                case UInt8(ascii: "<"):
                    index += 1
                    angleAddress(name: phrase(run), comment: lastComment(run))
                case Byte.colon where !inGroup:
                    // `group = display-name ":" [group-list] ";"`
                    index += 1
                    result.append(.groupStart(phrase(run) ?? ""))
                    inGroup = true
                    continue
                case UInt8(ascii: "@"):
                    index += 1
                    addrSpec(run)
                default:
                    // `,`, `;`, the end, or junk: a bare word is a mailbox without domain.
                    if let local = phrase(run) {
                        result.append(IMAPAddress(name: nil, mailbox: local, host: missingDomain))
                    }
                }
                skipToDelimiter()
            }
            if inGroup { result.append(.groupEnd) }
            return result
        }

        /// Past any junk up to the next `,` (consumed) or `;` (ends a group).
        mutating func skipToDelimiter() {
            while index < tokens.count {
                switch special(at: index) {
                case Byte.comma:
                    index += 1
                    return
                case Byte.semicolon:
                    index += 1
                    if inGroup {
                        result.append(.groupEnd)
                        inGroup = false
                    }
                    return
                default:
                    index += 1
                }
            }
        }

        /// `angle-addr = "<" [obs-route] addr-spec ">"`, `obs-route = obs-domain-list ":"`.
        /// A missing `>` ends at `,` / `;` / the end.
        mutating func angleAddress(name: String?, comment: String?) {
            var route: String?
            if special(at: index) == UInt8(ascii: "@") {
                // Up to the ":" that ends the route, if there is one before ">".
                var scan = index
                while scan < tokens.count, special(at: scan) != Byte.colon, special(at: scan) != UInt8(ascii: ">") { scan += 1 }
                if special(at: scan) == Byte.colon {
                    route = text(index..<scan, spaced: false)
                    index = scan + 1
                }
            }
            let start = index
            while index < tokens.count {
                if let byte = special(at: index), byte == UInt8(ascii: ">") || byte == Byte.comma || byte == Byte.semicolon {
                    break
                }
                index += 1
            }
            let inside = start..<index
            if special(at: index) == UInt8(ascii: ">") { index += 1 }
            // Comments after the address name it when there is no display name.
            var after = index
            var trailing: String?
            while after < tokens.count, case .comment(let text) = tokens[after].token {
                trailing = decodeText(text)
                after += 1
            }
            // Words, dots, `@` and domain literals; stray specials (`<<`) and comments dropped.
            let realInside = inside.filter { position in
                switch tokens[position].token {
                case .comment: false
                case .special(let byte): byte == UInt8(ascii: ".") || byte == UInt8(ascii: "@")
                case .word, .domainLiteral: true
                }
            }
            guard !realInside.isEmpty else {
                // `<>`: the null address.
                result.append(IMAPAddress(name: name ?? comment ?? trailing, adl: route, mailbox: missingMailbox, host: missingDomain))
                return
            }
            let at = realInside.first { special(at: $0) == UInt8(ascii: "@") }
            let mailbox: String
            let host: String
            if let at {
                mailbox = text(realInside.filter { $0 < at }, spaced: false) ?? missingMailbox
                host = text(realInside.filter { $0 > at }, spaced: false) ?? missingDomain
            } else {
                mailbox = text(realInside, spaced: false) ?? missingMailbox
                host = missingDomain
            }
            result.append(IMAPAddress(name: name ?? comment ?? trailing, adl: route, mailbox: mailbox, host: host))
        }

        /// `addr-spec = local-part "@" domain` with no brackets. The local part is the last
        /// dot-joined word before `@`; words before it are taken as a display name
        /// (`John Doe john@example.com`).
        mutating func addrSpec(_ run: Range<Int>) {
            var localStart = run.upperBound
            var expectWord = true
            while localStart > run.lowerBound {
                let token = tokens[localStart - 1]
                if case .comment = token.token { break }
                if expectWord {
                    guard case .word = token.token else { break }
                } else {
                    guard special(at: localStart - 1) == UInt8(ascii: ".") else { break }
                }
                localStart -= 1
                expectWord.toggle()
                if token.spaceBefore, !expectWord, special(at: localStart - 1) != UInt8(ascii: ".") { break }
            }
            let local = text(localStart..<run.upperBound, spaced: false) ?? missingMailbox
            // `domain = dot-atom / domain-literal`, up to a delimiter.
            let domainStart = index
            while index < tokens.count {
                if let byte = special(at: index), byte != UInt8(ascii: ".") { break }
                if case .comment = tokens[index].token { break }
                if index > domainStart, tokens[index].spaceBefore, special(at: index) == nil,
                   special(at: index - 1) != UInt8(ascii: ".") { break }
                index += 1
            }
            let host = text(domainStart..<index, spaced: false) ?? missingDomain
            var comment: String?
            while index < tokens.count, case .comment(let text) = tokens[index].token {
                comment = decodeText(text)
                index += 1
            }
            let name = phrase(run.lowerBound..<localStart) ?? comment ?? lastComment(run)
            result.append(IMAPAddress(name: name, mailbox: local, host: host))
        }

        /// `display-name = phrase`: words and dots, single spaces where the message had
        /// whitespace; nil when empty.
        func phrase(_ range: Range<Int>) -> String? { text(Array(range), spaced: true) }

        func lastComment(_ range: Range<Int>) -> String? {
            for position in range.reversed() {
                if case .comment(let text) = tokens[position].token { return decodeText(text) }
            }
            return nil
        }

        func text<Positions: Sequence>(_ positions: Positions, spaced: Bool) -> String? where Positions.Element == Int {
            var bytes: [UInt8] = []
            for position in positions {
                let token = tokens[position]
                let piece: [UInt8]
                switch token.token {
                case .comment: continue
                case .word(let text, _): piece = text
                case .domainLiteral(let text): piece = text
                case .special(let byte): piece = [byte]
                }
                if spaced, token.spaceBefore, !bytes.isEmpty { bytes.append(Byte.space) }
                bytes += piece
            }
            return bytes.isEmpty ? nil : decodeText(bytes)
        }
    }
}
